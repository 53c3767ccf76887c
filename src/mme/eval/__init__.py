"""Evaluation apart from training: multi-view testing, probes, predict, embed (no imports: fast help)."""
