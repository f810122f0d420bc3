"""Benchmarks for StackFlowPatcher: ``python -m bench.run --all`` or ``--smoke``.

Each benchmark starts its own throwaway PostgreSQL cluster (``tests/pgserver.py``), measures
StackFlowPatcher against a baseline measured in the same run, prints one table and writes JSON
under ``bench/results/``. External tools (dbmate, yoyo) are installed under ``.local/bench/``
by ``bench/tools.py``. Nothing here asserts timings: it reports them.
"""
