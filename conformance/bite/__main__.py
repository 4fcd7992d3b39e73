"""``python -m bite``: run the relevant conformance tests unmutated, then under each variant.

    python -m bite [--variant NAME ...] [--timeout SECONDS] [--seed N] [-- pytest args]

Prints, per variant, CAUGHT (with the tests that failed), MISSED, or NOT RUN (the bug could
not be planted or no test ran). Exits 1 when the unmutated run is not green or when any
variant is not caught.
Run from the repository root with ``conformance`` on ``PYTHONPATH`` (``nox -s bite`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bite import VARIANTS

CONFORMANCE = Path(__file__).resolve().parents[1]


def _run(
    variant: str | None, tmp: Path, timeout: float, seed: int, extra: list[str]
) -> dict[str, Any]:
    report = tmp / f"bite-{variant or 'baseline'}.json"
    cmd = [sys.executable, "-m", "pytest", str(CONFORMANCE), "-p", "bite.plugin", "-q"]
    cmd += ["-p", "no:cacheprovider", "--bite-report", str(report)]
    # One hypothesis seed for every run: a failure under a variant comes from its bug, not
    # from an example the unmutated run never drew.
    cmd += ["--bite-select", variant or "all", f"--hypothesis-seed={seed}"]
    if variant:
        cmd += ["--bite", variant]
    env = dict(os.environ)
    paths = [str(CONFORMANCE), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(tmp / "hypothesis")  # no mutant examples kept
    env.pop("CONFORMANCE_BITE", None)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [*cmd, *extra], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        output, status = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        output, status = f"timed out after {timeout} s: {exc}", -1
    result: dict[str, Any] = {"outcomes": {}, "exitstatus": status}
    if report.exists():
        result = json.loads(report.read_text(encoding="utf-8"))
    result["seconds"] = time.monotonic() - started
    result["output"] = output
    result["returncode"] = status
    return result


def _tail(output: str, lines: int = 40) -> str:
    """The end of a pytest run's output, without the conformance summary's unproved list."""
    kept = [line for line in output.splitlines() if not line.lstrip().startswith("unproved:")]
    return "\n".join(kept[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bite", description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS), default=None)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed of every run")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    names = args.variant or list(VARIANTS)
    failed = False
    with tempfile.TemporaryDirectory(prefix="bite-") as tmp:
        base = _run(None, Path(tmp), args.timeout, args.seed, args.pytest_args)
        passed = {t for t, o in base["outcomes"].items() if o == "passed"}
        bad = {t: o for t, o in base["outcomes"].items() if o != "passed"}
        print(f"unmutated: {len(passed)} passed, {len(bad)} not passing ({base['seconds']:.1f} s)")
        if base["returncode"] != 0 or bad or not passed:
            failed = True
            print("  the unmutated run is not green:")
            for test, outcome in sorted(bad.items()):
                print(f"    {outcome}: {test}")
            print(_tail(base["output"]))
        for name in names:
            run = _run(name, Path(tmp), args.timeout, args.seed, args.pytest_args)
            caught = sorted(t for t, o in run["outcomes"].items() if o == "failed" and t in passed)
            seconds = f"{run['seconds']:.1f} s"
            if caught:
                print(f"CAUGHT  {name} ({len(caught)} of {len(run['outcomes'])} tests, {seconds})")
                for test in caught:
                    print(f"    {test}")
            else:
                failed = True
                verdict = "MISSED" if run["outcomes"] else "NOT RUN"  # e.g. not plantable
                print(f"{verdict:<7} {name} ({len(run['outcomes'])} tests ran, {seconds})")
                print(f"    bug: {VARIANTS[name].bug}")
                print(f"    invariants: {', '.join(VARIANTS[name].invariants)}")
                if not run["outcomes"]:
                    print(_tail(run["output"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
