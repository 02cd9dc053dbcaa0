"""Analyses of a run's results: summaries, effective length."""
