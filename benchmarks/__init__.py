"""signalfire's benchmark suite against its peers: ``nox -s bench`` (or ``python -m benchmarks.run``).

Every figure is a ratio measured in the same run, each variant in its own fresh process, the median of several runs.
See ``benchmarks/run.py`` for the orchestration and ``docs/performance.md`` for the latest figures.
"""
