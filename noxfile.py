"""Project sessions: ``tests`` (unit tests), ``lint`` (ruff, mypy strict), ``conformance``."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "conformance"]
nox.options.error_on_missing_interpreters = True

PACKAGES = ["packages/batpak", "packages/syncbat", "packages/netbat", "packages/hostbat"]
TEST_DEPS = ["pytest>=8", "hypothesis>=6.100", "msgpack>=1.0"]


def _install_workspace(session: nox.Session) -> None:
    session.install(*(arg for path in PACKAGES for arg in ("-e", path)), *TEST_DEPS)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests of every package, plus the runnable examples."""
    _install_workspace(session)
    session.run("pytest", "packages", "examples", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy --strict over sources, tests and examples."""
    _install_workspace(session)
    session.install("ruff>=0.5", "mypy>=1.10")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    for package in PACKAGES:
        session.run("mypy", f"{package}/src")
    session.run(
        "mypy",
        "--explicit-package-bases",
        "packages/batpak/tests",
        "conformance",
        "examples",
        "bench",
        env={"MYPYPATH": "packages/batpak/tests:conformance"},
    )


@nox.session
def conformance(session: nox.Session) -> None:
    """The black-box conformance suite: public API, on-disk bytes and real processes only."""
    _install_workspace(session)
    session.run("pytest", "conformance", *session.posargs)
