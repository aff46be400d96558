"""Benchmarks: each prints its figures side by side and writes JSON to ``bench/results/``.
Run one from the repository root as a module (``python -m bench.live``)."""
