"""Issue 7's benchmark suite: each workload beside its peer in one run (``python -m bench.run``)."""
