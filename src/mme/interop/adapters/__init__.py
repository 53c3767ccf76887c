"""State-dict adapters: other projects' parameter names and configs to mme's."""
