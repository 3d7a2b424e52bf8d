"""Benchmarks of the gateway against bare baselines measured in the same run (see README.md)."""
