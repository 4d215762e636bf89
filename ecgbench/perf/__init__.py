"""Performance measurement of the train/eval core: throughput, FLOPs, the hardware ceiling, the paper-style baseline.

Measures only; it never changes how the engine trains. ``python -m ecgbench.perf --out reports/performance.md``
regenerates the performance report, ``pytest benchmarks/test_throughput.py`` runs the same measurements as
pytest-benchmark cases.
"""
