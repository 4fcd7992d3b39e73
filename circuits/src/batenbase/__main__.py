"""`batenbase`: serve the HTTP face, or administer a data directory.

    batenbase serve [--data DIR] [--host 127.0.0.1] [--port 8080]
                    [--netbat-port PORT --netbat-tenant NAME]
    batenbase admin [--data DIR | --url URL --token TOKEN] <command> ...

`admin` works in one of two modes: on the data directory directly (the server
must be stopped: the directory is owned by one process), or over HTTP against
a running server when --url (or BATENBASE_URL) is given, using an operator
token from --token (or BATENBASE_TOKEN).

With --netbat-port and --netbat-tenant (an existing tenant), `serve` also serves that
tenant's journal read-only over NETBAT/1 on loopback (see batenbase.netbat_front).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import msgspec
import uvicorn

from batenbase.client import ApiError, Client
from batenbase.errors import BatenBaseError
from batenbase.http.app import create_app
from batenbase.http.handlers import switch_read_receipts
from batenbase.netbat_front import NetbatFront, NetbatFrontError
from batenbase.netbat_front import check_host as check_netbat_host
from batenbase.netbat_front import start as start_netbat
from batenbase.service import BatenBase
from batpak import StoreLocked

DEFAULT_DATA = "./batenbase-data"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batenbase", description="BatenBase server and admin CLI")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument(
        "--data", default=DEFAULT_DATA, help=f"data directory (default {DEFAULT_DATA})"
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help="bind address (default loopback)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0 picks a free one)")
    serve.add_argument("--max-body", type=int, default=1 << 20, help="request body cap in bytes")
    serve.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="requests per second per token (or per address without one); 429 beyond it. "
        "Off by default",
    )
    serve.add_argument(
        "--rate-burst", type=float, default=None, help="burst size (default: twice the rate)"
    )
    serve.add_argument("--free-quota", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument(
        "--netbat-port",
        type=int,
        default=None,
        help="also serve --netbat-tenant's journal read-only over NETBAT/1 on this loopback "
        "port (0 picks a free one); off by default",
    )
    serve.add_argument(
        "--netbat-tenant", default=None, help="the existing tenant served over NETBAT/1"
    )

    admin = sub.add_parser("admin", help="administer tenants and tokens")
    admin.add_argument("--data", default=None, help="data directory (server stopped)")
    admin.add_argument("--url", default=os.environ.get("BATENBASE_URL"), help="running server URL")
    admin.add_argument("--token", default=os.environ.get("BATENBASE_TOKEN"), help="operator token")
    cmds = admin.add_subparsers(dest="action", required=True)
    ct = cmds.add_parser("create-tenant", help="create a tenant")
    ct.add_argument("name")
    ct.add_argument("--plan", choices=["free", "unlimited"], default="free")
    sp = cmds.add_parser("set-plan", help="set a tenant's plan")
    sp.add_argument("name")
    sp.add_argument("plan", choices=["free", "unlimited"])
    it = cmds.add_parser("issue-token", help="issue a tenant token")
    it.add_argument("tenant")
    it.add_argument("observer")
    it.add_argument("--role", choices=["admin", "writer", "reader"], default="writer")
    it.add_argument(
        "--scope", type=int, action="append", default=[], help="readable scope (repeat)"
    )
    rt = cmds.add_parser("revoke-token", help="revoke a token by id")
    rt.add_argument("token_id")
    cmds.add_parser("operator-token", help="issue another operator token")
    cmds.add_parser("tenants", help="list tenants with plan and usage")
    cmds.add_parser("host", help="show the host contract (module digest, operations)")
    cp = cmds.add_parser("compact", help="compact a tenant journal")
    cp.add_argument("tenant")
    cp.add_argument("--keep", type=int, default=1, help="revisions to keep per key")
    rr = cmds.add_parser("read-receipts", help="turn a tenant's read receipts on or off")
    rr.add_argument("tenant")
    rr.add_argument("state", choices=["on", "off"])
    return parser


def _print(value: Any) -> None:
    print(json.dumps(msgspec.to_builtins(value), indent=2, sort_keys=True))


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    pass


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # Lines are the message alone: skip collecting thread and process names for each one.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if args.rate_limit is not None and not (
        args.rate_limit > 0 and (args.rate_burst is None or args.rate_burst >= 1)
    ):
        print("error: --rate-limit must be > 0 and --rate-burst >= 1", file=sys.stderr)
        return 2
    if (args.netbat_port is None) != (args.netbat_tenant is None):
        print("error: --netbat-port and --netbat-tenant go together", file=sys.stderr)
        return 2
    if args.netbat_tenant is not None:
        try:
            check_netbat_host(args.host)
        except NetbatFrontError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    data = Path(args.data)
    sock = socket.socket(
        socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it: without it small answers wait on delayed ACKs (~40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    extra = {} if args.free_quota is None else {"free_quota": args.free_quota}
    service = BatenBase.open(data, **extra)
    front: NetbatFront | None = None
    try:
        if args.netbat_tenant is not None:
            try:
                front = start_netbat(service, args.netbat_tenant, args.host, args.netbat_port)
            except NetbatFrontError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        first = service.bootstrap_operator_token()
        print(f"BatenBase listening on {url} (data: {data.resolve()})", flush=True)
        if front is not None:
            print(
                f"NETBAT/1 (read-only) for tenant {front.tenant.name} on {front.address}",
                flush=True,
            )
        if first is not None:
            admin = f"batenbase admin --url {url} --token {first.token}"
            print(
                f"First operator token (shown once, keep it): {first.token}\n"
                "Create a tenant and a token for it:\n"
                f"  {admin} create-tenant acme\n"
                f"  {admin} issue-token acme alice --role admin\n"
                "Then, with the printed token:\n"
                f"  curl -X PUT {url}/blocks/user:alice@corp.com \\\n"
                "    -H 'Authorization: Bearer <token>' \\\n"
                '    -d \'{"data": {"name": "Alice"}}\'',
                flush=True,
            )
        else:
            print(
                "Operator token: printed on first start; "
                "`batenbase admin operator-token` (server stopped) issues another",
                flush=True,
            )
        app = create_app(
            service,
            max_body=args.max_body,
            rate_limit=args.rate_limit,
            rate_burst=args.rate_burst,
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        # uvicorn turns SIGINT/SIGTERM into a graceful shutdown, then re-raises the signal
        # into the handlers it found: make those no-ops so we fall through and close.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _ignore_signal)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if front is not None:
            front.stop()
        service.close()
        sock.close()
        print("BatenBase stopped", flush=True)
    return 0


def _admin_local(args: argparse.Namespace) -> Any:
    service = BatenBase.open(Path(args.data or DEFAULT_DATA))
    try:
        if args.action == "create-tenant":
            return service.create_tenant(args.name, args.plan)
        if args.action == "set-plan":
            return service.set_plan(args.name, args.plan)
        if args.action == "issue-token":
            return service.issue_token(args.tenant, args.observer, args.role, args.scope)
        if args.action == "revoke-token":
            service.revoke_token(args.token_id)
            return {"ok": True, "token_id": args.token_id}
        if args.action == "operator-token":
            first = service.bootstrap_operator_token()
            return first if first is not None else service.issue_operator_token()
        if args.action == "compact":
            return service.compact(args.tenant, keep_revisions=args.keep)
        if args.action == "tenants":
            return service.list_tenants()
        if args.action == "host":
            return service.host_contract()
        return switch_read_receipts(service, args.tenant, args.state == "on")
    finally:
        service.close()


def _admin_remote(args: argparse.Namespace) -> Any:
    if not args.token:
        raise SystemExit("--token (or BATENBASE_TOKEN) is required with --url")
    with Client(args.url, args.token) as client:
        if args.action == "create-tenant":
            return client.admin_create_tenant(args.name, args.plan)
        if args.action == "set-plan":
            return client.admin_set_plan(args.name, args.plan)
        if args.action == "issue-token":
            return client.admin_issue_token(args.tenant, args.observer, args.role, args.scope)
        if args.action == "revoke-token":
            return client.admin_revoke_token(args.token_id)
        if args.action == "operator-token":
            return client.admin_issue_operator_token()
        if args.action == "compact":
            return client.admin_compact(args.tenant, keep_revisions=args.keep)
        if args.action == "tenants":
            return client.admin_list_tenants()
        if args.action == "host":
            return {k: v for k, v in client.admin_host().items() if k != "ok"}
        return client.admin_set_read_receipts(args.tenant, args.state == "on")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        return _admin(args)
    except StoreLocked as exc:
        print(
            f"error: the data directory is in use by another process ({exc}); "
            "stop the server or use --url/--token",
            file=sys.stderr,
        )
        return 2


def _admin(args: argparse.Namespace) -> int:
    try:
        result = _admin_remote(args) if args.url and not args.data else _admin_local(args)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    except BatenBaseError as exc:
        print(f"error: {exc.status} {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
