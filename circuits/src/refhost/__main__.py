"""``refhost serve --store DIR [--port 0] [--subscribe-port 0] [--host 127.0.0.1]
[--allow-remote] [--commit-kind KIND ...] [--read-timeout S]``.

Opens a batpak Store, mounts the ten ops as the hostbat module ``batpak.reference`` on a
Host, serves it with netbat's ``RequestServer`` over NETBAT/1 and the store's event
subscriptions (``refhost.subscriptions``) with netbat's ``SubscriptionServer`` over NETBAT/2,
prints one ready line ``REFHOST_READY {"addr": ..., "port": ..., "protocol": "NETBAT/1",
"subscribe_port": ..., "subscribe_protocol": "NETBAT/2"}`` and shuts down cleanly (store
closed) on SIGINT or SIGTERM.
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
from netbat import SubscriptionServer
from refhost.batpak_view import BatpakView
from refhost.dispatch import ReferenceDispatcher
from refhost.host import DEFAULT_COMMITTABLE_KINDS, build_host, parse_kind
from refhost.hostlock import HostLock
from refhost.server import READ_TIMEOUT_S, NonLoopbackRefused, check_bind_host, serve, server_config
from refhost.subscriptions import StoreSubscriptionSource


def _kind(text: str) -> int:
    try:
        return parse_kind(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _timeout(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("the read timeout must be positive")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refhost", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the ten reference ops over NETBAT/1 TCP")
    run.add_argument("--store", required=True, type=Path, help="batpak store directory")
    run.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    run.add_argument("--port", default=0, type=int, help="TCP port (0 picks a free one)")
    run.add_argument(
        "--subscribe-port",
        default=0,
        type=int,
        help="TCP port for NETBAT/2 subscriptions (0 picks a free one)",
    )
    run.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback bind address"
    )
    run.add_argument(
        "--commit-kind",
        action="append",
        type=_kind,
        metavar="KIND",
        dest="commit_kinds",
        help="an event kind bank.commit may append (0xF101 or F:101); repeatable; replaces "
        "the default set (the op manifest's 21 kinds 0xFA01..0xFA81 and 0xF001..0xF010)",
    )
    run.add_argument(
        "--read-timeout",
        type=_timeout,
        default=READ_TIMEOUT_S,
        metavar="S",
        help=f"seconds a client has to send its request line (default {READ_TIMEOUT_S:g})",
    )
    return parser


async def _run(args: argparse.Namespace, store: Store) -> None:
    kinds = args.commit_kinds or DEFAULT_COMMITTABLE_KINDS
    lock = HostLock()
    refhost = build_host(BatpakView(store), kinds, lock=lock)
    refhost.start()
    dispatcher = ReferenceDispatcher(refhost, lock)
    config = server_config(args.read_timeout)
    host: str = args.host
    port: int = args.port

    subscriptions = SubscriptionServer(StoreSubscriptionSource(store))
    subscribe_port = 0

    def ready(addr: str, bound: int) -> None:
        line = json.dumps(
            {
                "addr": addr,
                "port": bound,
                "protocol": "NETBAT/1",
                "subscribe_port": subscribe_port,
                "subscribe_protocol": "NETBAT/2",
            }
        )
        print(f"REFHOST_READY {line}", flush=True)

    try:
        async with anyio.create_task_group() as group:
            subscribe_port = await group.start(subscriptions.serve, host, args.subscribe_port)

            async def watch_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        group.cancel_scope.cancel()
                        return

            group.start_soon(watch_signals)
            group.start_soon(
                lambda: serve(dispatcher, host=host, port=port, config=config, on_ready=ready)
            )
    finally:
        refhost.shutdown()  # no hooks or jobs today; kept for the lifecycle contract


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
        # Group commit: concurrent bank.commit calls share one fsync (each waits for it).
        store = Store.open(StoreConfig(args.store).with_group_commit(0))
    except StoreError as exc:
        print(f"refhost: cannot open store {args.store}: {exc}", file=sys.stderr)
        return 1
    try:
        anyio.run(_run, args, store)
    finally:
        store.close()
    print("refhost: shut down", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
