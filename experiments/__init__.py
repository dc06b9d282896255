"""Experiment drivers built on digitjax: sweeps, report reproduction, benchmarks."""
