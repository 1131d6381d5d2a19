"""Benchmark suite: fit time, objective evaluations and peak memory per model.

Run ``python benchmarks/run.py`` (see ``benchmarks/README.md``). The model table is
``benchmarks/models.toml``; results go to ``benchmarks/results/``.
"""
