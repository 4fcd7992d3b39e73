"""Project sessions.

CI runs ``tests`` (unit tests), ``lint`` (ruff, mypy strict) and ``conformance`` (the
black-box suite, gated on the invariant catalogue). The deep sessions run on demand, each
printing its figures: ``crash`` (1,000 kills and crash images), ``model`` (the stateful
model at depth), ``fuzz`` (atheris and schemathesis), ``load`` (BatenBase over loopback),
``bite`` (planted bugs the suite must catch) and ``bench`` (the peers side by side).
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "conformance"]  # the deep sessions run on demand
nox.options.error_on_missing_interpreters = True

PACKAGES = ["packages/batpak", "packages/syncbat", "packages/netbat", "packages/hostbat"]
WIRING = ["circuits"]
TEST_DEPS = ["pytest>=8", "hypothesis>=6.100", "msgpack>=1.0", "pyyaml>=6", "schemathesis>=4.0"]


def _install_workspace(session: nox.Session) -> None:
    projects = PACKAGES + WIRING
    session.install(*(arg for path in projects for arg in ("-e", path)), *TEST_DEPS)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests of every package and of the circuits, plus the runnable examples."""
    _install_workspace(session)
    session.run(
        "pytest", *PACKAGES, *WIRING, "examples", "bench/test_bench_smoke.py", *session.posargs
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy --strict over sources, tests, examples and benches."""
    _install_workspace(session)
    session.install("ruff==0.17.6", "mypy==2.4.1", "types-PyYAML")  # pinned: no surprise reds
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    for project in PACKAGES + WIRING:
        session.run("mypy", f"{project}/src")
        session.run(
            "mypy",
            "--explicit-package-bases",
            f"{project}/tests",
            env={"MYPYPATH": f"{project}/tests"},
        )
    session.run(
        "mypy",
        "--explicit-package-bases",
        "conformance",
        "examples",
        "bench",
        env={"MYPYPATH": "conformance"},
    )


@nox.session
def conformance(session: nox.Session) -> None:
    """The black-box conformance suite as a gate: public API, on-disk bytes and real processes
    only. Fails when a test fails, when a catalogued invariant has no executed, passing test,
    when a marker names an unknown id, or when no test ran; writes
    ``conformance-receipt.json`` (counts, seeds, versions)."""
    _install_workspace(session)
    session.run(
        "pytest",
        "conformance",
        "--invariants-gate",
        "--receipt",
        "conformance-receipt.json",
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Issue 7's workloads beside their peers in one run; ``-- --quick`` for a short run.

    Writes ``bench-results.json``. Peers and profilers are installed here only, not in CI.
    """
    _install_workspace(session)
    session.install("eventsourcing==9.5.6", "pyinstrument>=5", "py-spy>=0.4")
    session.run("python", "-m", "bench.run", *session.posargs)


@nox.session
def crash(session: nox.Session) -> None:
    """Deep crash run: the kill -9 loop (1000 kills unless BATPAK_CRASH_KILLS says otherwise)
    with its durable-ack oracle, plus every crash-image and torn-tail test over 200
    hypothesis-chosen workloads; prints kills, ack checks and time."""
    _install_workspace(session)
    kills = os.environ.get("BATPAK_CRASH_KILLS") or "1000"
    session.run(
        "pytest",
        "conformance/test_crash_kill9.py",
        "conformance/test_crash_images.py",
        "conformance/test_crash_compaction.py",
        "conformance/test_crash_torn.py",
        "conformance/test_crash_faults.py",
        *session.posargs,
        env={"BATPAK_CRASH_KILLS": kills, "BATPAK_CRASH_EXAMPLES": "200"},
    )


@nox.session
def load(session: nox.Session) -> None:
    """Bounded HTTP load on a real BatenBase server: zero errors, nothing lost, p50/p99 per op.

    ``nox -s load -- --duration 60 --clients 32``; figures in ``batenbase-load.json``.
    """
    _install_workspace(session)
    session.run("python", "conformance/load.py", *session.posargs)


@nox.session
def bite(session: nox.Session) -> None:
    """The conformance tests against planted bugs (lying fsync, no chain check, duplicate
    idempotency key, cross-tenant read): each must be CAUGHT; the unmutated run must pass."""
    _install_workspace(session)
    session.run("python", "-m", "bite", *session.posargs, env={"PYTHONPATH": "conformance"})


@nox.session
def fuzz(session: nox.Session) -> None:
    """atheris over every fuzz target, time-boxed (``FUZZ_SECONDS`` per target, default 60),
    then the REST schemathesis run with more examples and the regression replay. Crashers land
    in ``conformance/regressions/<target>/``: commit them with the fix.

    ``nox -s fuzz -- --seconds 10 --targets netbat_stream,store_segment``.
    """
    _install_workspace(session)
    session.install("atheris>=2.3")
    seconds = os.environ.get("FUZZ_SECONDS") or "60"
    session.run(
        "python",
        "-m",
        "fuzz",
        "--seconds",
        seconds,
        *session.posargs,
        env={"PYTHONPATH": "conformance"},
    )
    session.run(
        "pytest",
        "conformance/test_schemathesis_batenbase.py",
        "conformance/test_fuzz_regressions.py",
        env={"FUZZ_REST_EXAMPLES": os.environ.get("FUZZ_REST_EXAMPLES") or "40"},
    )


@nox.session
def model(session: nox.Session) -> None:
    """The Store state machine, linearizability histories, storms and windows, deep: the
    hypothesis ``deep`` profile (at least BATPAK_HYPOTHESIS_MAX_EXAMPLES, default 300)."""
    _install_workspace(session)
    examples = os.environ.get("BATPAK_HYPOTHESIS_MAX_EXAMPLES") or "300"
    session.run(
        "pytest",
        "conformance/test_store_model.py",
        "conformance/test_linearizability.py",
        "conformance/test_concurrency_storms.py",
        "conformance/test_store_windows.py",
        "--hypothesis-show-statistics",
        *session.posargs,
        env={"BATPAK_HYPOTHESIS_PROFILE": "deep", "BATPAK_HYPOTHESIS_MAX_EXAMPLES": examples},
    )
