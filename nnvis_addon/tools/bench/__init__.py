"""Benchmarks behind `nnvis bench ...`: plain numpy workloads timed on this machine."""
