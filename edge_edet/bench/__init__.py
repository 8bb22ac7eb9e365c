"""Benchmarks: latency of a model alone (any back-end), and the deploy graph against PyTorch eager.

`latency` and `machine` import no torch; `eager` does, and is imported only for --compare-eager.
"""
