"""Reproducible benchmarks of the Manticore order book against two published competitors.

Run ``python -m benchmarks.run`` (or ``make bench``). Every engine runs in its own virtualenv in a
fresh subprocess (see :mod:`benchmarks.envs`), fed the same deterministic workloads
(:mod:`benchmarks.workloads`) through one small adapter per engine (:mod:`benchmarks.adapters`).
"""
