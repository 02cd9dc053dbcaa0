"""Tests of the scorers, each against hand-worked cases or the benchmark's own published code."""
