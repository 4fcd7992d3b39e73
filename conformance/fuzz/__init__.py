"""Fuzz targets over untrusted bytes, shared by the hypothesis tests and the atheris runner.

Every target takes one ``bytes`` input and returns normally when the outcome is legal (a value
that round-trips, or the package's own typed error). Anything else escapes: a ``Violation`` for
a broken law, or the untyped exception itself. ``python -m fuzz`` runs them under atheris and
files crashers in ``conformance/regressions/<target>/``, which every default run replays.
"""
