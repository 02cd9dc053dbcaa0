"""Loaders for published long-context benchmarks: one file per benchmark, registered as tasks by name."""
