"""Training machinery: run configs, the Trainer, optimiser groups, checkpoints (no imports: fast help)."""
