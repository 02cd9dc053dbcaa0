"""Analyses of a run's results: summaries, intervals, effective length, weighting, degradation, depth grids,
the difficulty plane, accuracy-cost frontiers, and the analytic cost model with its hardware profiles."""
