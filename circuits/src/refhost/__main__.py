"""``refhost serve --store DIR [--port 0] [--host 127.0.0.1] [--allow-remote]``.

Opens a batpak Store, serves the ten ops over NETBAT/1, prints one ready line
``REFHOST_READY {"addr": ..., "port": ..., "protocol": "NETBAT/1"}`` and shuts down cleanly
(store closed) on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from batpak import Store, StoreConfig, StoreError
from refhost.batpak_view import BatpakView
from refhost.dispatch import ReferenceDispatcher
from refhost.server import NonLoopbackRefused, check_bind_host, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refhost", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the ten reference ops over NETBAT/1 TCP")
    run.add_argument("--store", required=True, type=Path, help="batpak store directory")
    run.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    run.add_argument("--port", default=0, type=int, help="TCP port (0 picks a free one)")
    run.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback bind address"
    )
    return parser


async def _run(store: Store, host: str, port: int) -> None:
    dispatcher = ReferenceDispatcher(BatpakView(store))

    def ready(addr: str, bound: int) -> None:
        line = json.dumps({"addr": addr, "port": bound, "protocol": "NETBAT/1"})
        print(f"REFHOST_READY {line}", flush=True)

    async with anyio.create_task_group() as group:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    group.cancel_scope.cancel()
                    return

        group.start_soon(watch_signals)
        group.start_soon(lambda: serve(dispatcher, host=host, port=port, on_ready=ready))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        check_bind_host(args.host, args.allow_remote)
    except NonLoopbackRefused as exc:
        print(f"refhost: {exc}", file=sys.stderr)
        return 2
    if args.allow_remote:
        print(f"refhost: warning: binding {args.host}; reference host only", file=sys.stderr)
    try:
        store = Store.open(StoreConfig(args.store))
    except StoreError as exc:
        print(f"refhost: cannot open store {args.store}: {exc}", file=sys.stderr)
        return 1
    try:
        anyio.run(_run, store, args.host, args.port)
    finally:
        store.close()
    print("refhost: shut down", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
