"""Performance measurement of the train/eval core: throughput, the hardware ceiling, the paper-style baseline.

Measures only; it never changes how the engine trains, and it times through pytest-benchmark alone:
``pytest throughput --benchmark-json reports/throughput.json`` runs the benchmarks, ``ecgbench perf --json
reports/throughput.json --out reports/performance.md`` renders the report from that file (``--measure`` runs
them first), ``ecgbench memory MODEL`` measures one model's peak memory. FLOPs and the cost of a grid come from
the one cost model in ``ecgbench.cost``.
"""
