"""Workload 6's peers, served like BatenBase (uvicorn, one process, same socket options):
``GET /blocks/{key}`` a bare starlette JSON answer, ``PUT /blocks/{key}`` a minimal sqlite3
write (WAL, ``synchronous=FULL``, one committed transaction per request).

``python -m bench.peer_http --db FILE`` prints ``PEER_READY <port>``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BLOCK = {
    "key": "bench:get",
    "rev": 1,
    "data": {"id": 1, "customer": "customer-000001", "status": "paid"},
    "v": 0,
    "h": 0,
}


def create_app(db: sqlite3.Connection) -> Starlette:
    async def get_block(request: Request) -> JSONResponse:
        return JSONResponse({**BLOCK, "key": request.path_params["key"]})

    async def put_block(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        key = request.path_params["key"]
        data = json.dumps(body["data"]).encode()
        cursor = db.execute(
            "INSERT INTO blocks (key, rev, data) VALUES (?, 1, ?) "
            "ON CONFLICT (key) DO UPDATE SET rev = rev + 1, data = excluded.data RETURNING rev",
            (key, data),
        )
        (rev,) = cursor.fetchone()
        db.commit()
        return JSONResponse({"key": key, "rev": rev})

    return Starlette(
        routes=[
            Route("/blocks/{key}", get_block, methods=["GET"]),
            Route("/blocks/{key}", put_block, methods=["PUT"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    db = sqlite3.connect(args.db, isolation_level="DEFERRED", check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS blocks (key TEXT PRIMARY KEY, rev INTEGER, data BLOB)")
    db.commit()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"PEER_READY {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(create_app(db), log_level="warning", access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        db.close()
        sock.close()


if __name__ == "__main__":
    main()
