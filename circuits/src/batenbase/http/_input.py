"""Input parsing for the handlers: bodies, query values and headers, each refused as a 400/413."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from starlette.requests import Request

T = TypeVar("T")

MAX_BODY = 1 << 20
MAX_LIMIT = 1000


class HttpError(Exception):
    """An input error found by the HTTP layer before the facade is called."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HttpError(400, "bad_request", "invalid Content-Length")
        if int(length) > limit:
            raise HttpError(413, "too_large", f"body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def decode_body(request: Request, kind: type[T]) -> T:
    raw = await read_body(request, request.app.state.max_body)
    if not raw.strip():
        raise HttpError(400, "bad_request", "a JSON body is required")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise HttpError(400, "bad_request", f"invalid body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise HttpError(400, "bad_json", f"malformed JSON: {exc}") from None


def q_int(
    request: Request, name: str, default: int | None, lo: int = 1, hi: int = MAX_LIMIT
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(400, "bad_request", f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise HttpError(400, "bad_request", f"{name} must be between {lo} and {hi}")
    return value


def q_float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise HttpError(400, "bad_request", f"{name} must be a Unix time") from None
    if not math.isfinite(value) or value < 0 or value > 1e11:
        raise HttpError(400, "bad_request", f"{name} must be a Unix time")
    return value


def q_bool(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no", ""):
        return False
    raise HttpError(400, "bad_request", f"{name} must be true or false")


def q_str(request: Request, name: str, max_len: int = 1024) -> str | None:
    raw = request.query_params.get(name)
    if raw is not None and len(raw) > max_len:
        raise HttpError(400, "bad_request", f"{name} is too long")
    return raw


def if_match(request: Request) -> str | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip()
    if value.startswith("W/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value or len(value) > 256:
        raise HttpError(400, "bad_request", "If-Match must be a revision number or an etag")
    return value


def key_of(request: Request) -> str:
    key = str(request.path_params["key"])
    if not key or len(key) > 1024:
        raise HttpError(400, "bad_key", "key must be 1..1024 characters")
    return key


# -- request bodies -----------------------------------------------------------

Scope = Annotated[int, msgspec.Meta(ge=0, le=2**31)]


class PutBody(msgspec.Struct):
    data: Any
    v: Scope | None = None
    h: Literal[0, 1] | None = None


class EventBody(msgspec.Struct):
    kind: str
    details: Any = None


class TenantBody(msgspec.Struct):
    name: str
    plan: Literal["free", "unlimited"] = "free"


class PlanBody(msgspec.Struct):
    plan: Literal["free", "unlimited"]


class TokenBody(msgspec.Struct):
    observer: str
    role: Literal["admin", "writer", "reader"]
    scopes: list[Scope] = []


class CompactBody(msgspec.Struct):
    keep_revisions: Annotated[int, msgspec.Meta(ge=1)] = 1


class SwitchBody(msgspec.Struct):
    enabled: bool
