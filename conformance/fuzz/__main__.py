"""Coverage-guided fuzzing with atheris: ``python -m fuzz [--seconds N] [--targets a,b]``.

Each target runs in its own child process (libFuzzer owns the process and exits at the end),
time-boxed and memory-limited, starting from a seed corpus (the golden vectors, every file of
the seed store under each mode byte, and the committed regressions). A crash, timeout or
out-of-memory input is written to ``conformance/regressions/<target>/``, where the default
conformance run replays it; the run then exits non-zero so the finding gets looked at.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REGRESSIONS = Path(__file__).resolve().parents[1] / "regressions"


def seed_corpus(target: str, folder: Path) -> int:
    """Write the target's seeds into ``folder``; return how many."""
    # Imported here, as below: a child must instrument batpak before anything imports it.
    from fuzz.seeds import canonical_bodies, netbat_lines, store_seeds  # noqa: PLC0415

    if target.startswith("store_"):
        seeds = [bytes([mode]) + s for s in store_seeds(target) for mode in range(4)]
    elif target.startswith("netbat_"):
        seeds = list(netbat_lines()[target.removeprefix("netbat_")])
    else:
        seeds = list(canonical_bodies())
    regressions = REGRESSIONS / target
    if regressions.is_dir():
        seeds += [p.read_bytes() for p in sorted(regressions.iterdir()) if p.is_file()]
    for i, seed in enumerate(seeds):
        (folder / f"seed-{i:04d}").write_bytes(seed)
    return len(seeds)


def child(target: str, libfuzzer_args: list[str]) -> None:
    """Run one target under atheris; never returns (libFuzzer exits the process)."""
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415

    with atheris.instrument_imports(include=["batpak", "netbat", "fuzz"]):
        from fuzz.targets import TARGETS  # noqa: PLC0415

    one_input = TARGETS[target]

    def test_one_input(data: bytes) -> None:
        one_input(data)

    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input)
    atheris.Fuzz()


def run_target(target: str, seconds: int, rss_mb: int) -> int:
    out = REGRESSIONS / target
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as tmp:
        corpus = Path(tmp)
        count = seed_corpus(target, corpus)
        args = [
            f"-max_total_time={seconds}",
            f"-rss_limit_mb={rss_mb}",
            "-timeout=30",
            "-max_len=262144",
            f"-artifact_prefix={out}/",
            "-print_final_stats=1",
            str(corpus),
        ]
        print(f"== {target}: {seconds} s from {count} seeds", flush=True)
        started = time.monotonic()
        code = subprocess.call(
            [sys.executable, "-m", "fuzz", "--child", target, "--", *args], env=os.environ.copy()
        )
        print(f"== {target}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "30")))
    parser.add_argument("--targets", default="", help="comma-separated (default: all)")
    parser.add_argument("--rss-mb", type=int, default=2048)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        child(args.child, [a for a in rest if a != "--"])
        return 0
    from fuzz.targets import TARGETS  # noqa: PLC0415

    chosen = [t for t in args.targets.split(",") if t] or sorted(TARGETS)
    unknown = set(chosen) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {sorted(unknown)}")
    failed = [t for t in chosen if run_target(t, args.seconds, args.rss_mb) != 0]
    if failed:
        print(f"findings saved under {REGRESSIONS}/<target>/ for: {', '.join(failed)}")
        return 1
    print(f"no findings in {len(chosen)} targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
