"""The ``batpak`` command line: inspect, verify, dump, tail and compact a store directory.

Every command takes the store directory first: ``batpak <command> DIR [options]``.
``inspect``, ``verify`` and ``dump`` open the store read-only (which takes the directory lock,
so they refuse a store another process has open); ``compact`` opens it for writing; ``tail``
takes no lock at all and reads the segment files directly, so it can follow a store that
another process is writing.

Exit status: 0 success, 1 damage found, 2 usage error, missing or locked directory, or any
other refusal. Expected errors print one ``batpak: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from batpak import (
    FailClosedError,
    StoreError,
    StoreLocked,
    __version__,
)
from batpak.cli._common import (
    EXIT_DAMAGE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    SegmentInfo,
    describe,
    segment_infos,
)
from batpak.cli._compact import cmd_compact
from batpak.cli._dump import cmd_dump, decode_payload, frame_record, json_value, stored_record
from batpak.cli._inspect import cmd_inspect
from batpak.cli._tail import Tailer, cmd_tail, follow
from batpak.cli._verify import cmd_verify

__all__ = (
    "EXIT_DAMAGE",
    "EXIT_OK",
    "EXIT_USAGE",
    "SegmentInfo",
    "Tailer",
    "build_parser",
    "decode_payload",
    "describe",
    "follow",
    "frame_record",
    "json_value",
    "main",
    "segment_infos",
    "stored_record",
)


# -- entry point ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CliError as exc:
        _error(str(exc))
        return exc.code
    except StoreLocked:
        _error(f"{args.dir} is locked by another process")
        return EXIT_USAGE
    except FailClosedError as exc:
        _error(describe(exc))
        return EXIT_DAMAGE
    except StoreError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (``batpak dump DIR | head``)
        return EXIT_OK
    except OSError as exc:
        _error(f"{exc.filename or args.dir}: {exc.strerror or exc}")
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batpak",
        description="Inspect, verify, dump, follow and compact a batpak store directory.",
        epilog="Exit status: 0 ok, 1 damage found, 2 usage error or locked/missing store.",
    )
    parser.add_argument("--version", action="version", version=f"batpak {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="segments, counts, frontier and identity")
    _dir_argument(inspect)
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(run=cmd_inspect)

    verify = commands.add_parser("verify", help="check frames, content hashes and chain links")
    _dir_argument(verify)
    verify.add_argument(
        "--progress", action="store_true", help="show progress on stderr even when not a TTY"
    )
    verify.set_defaults(run=cmd_verify)

    dump = commands.add_parser("dump", help="print events as JSON Lines, in commit order")
    _dir_argument(dump)
    dump.add_argument("--entity", metavar="PREFIX", help="the entity or any PREFIX:... entity")
    dump.add_argument("--scope", metavar="NAME", help="exactly this scope")
    dump.add_argument("--kind", metavar="KIND", type=_kind, help="exactly this kind (0xF001)")
    dump.add_argument(
        "--after", metavar="SEQ", type=_natural, help="only global sequences above SEQ"
    )
    dump.add_argument("--limit", metavar="N", type=_natural, help="at most N events")
    dump.set_defaults(run=cmd_dump)

    tail = commands.add_parser(
        "tail", help="print committed events as JSON Lines without taking the lock"
    )
    _dir_argument(tail)
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_interval,
        default=0.25,
        help="poll interval while following (default 0.25)",
    )
    tail.set_defaults(run=cmd_tail)

    compact = commands.add_parser("compact", help="merge sealed segments (opens for writing)")
    _dir_argument(compact)
    compact.add_argument(
        "--min-segments",
        metavar="N",
        type=_positive,
        default=2,
        help="skip unless at least N sealed segments exist (default 2)",
    )
    compact.set_defaults(run=cmd_compact)
    return parser


def _dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the store directory")


def _kind(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        try:
            value = int(text, 16)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid kind {text!r} (try 0xF001)") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"kind {text!r} is outside 0x0000..0xFFFF")
    return value


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _positive(text: str) -> int:
    value = _natural(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 3600] seconds")
    return value


def _error(message: str) -> None:
    print(f"batpak: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        pass
