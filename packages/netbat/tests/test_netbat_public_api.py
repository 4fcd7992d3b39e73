"""The public surface of ``netbat``: the exact export list, docstrings, and import hygiene."""

import ast
import inspect
from pathlib import Path

import pytest

import netbat

EXPORTS = (
    "CursorTooLarge",
    "Dispatcher",
    "EmptyStream",
    "HandlerFailed",
    "InlineDispatcher",
    "InputTooLarge",
    "IoError",
    "Limits",
    "LineTooLong",
    "MalformedRequest",
    "MalformedResponse",
    "MalformedStreamFrame",
    "MissingHandler",
    "NetbatError",
    "OperationNameTooLong",
    "OutputTooLarge",
    "ReceiptSinkFailed",
    "Request",
    "RequestServer",
    "RuntimeFailure",
    "ServerConfig",
    "Session",
    "SourceEnd",
    "SourceEvent",
    "SourceItem",
    "SourceWatermark",
    "StreamFrame",
    "StreamMessageTooLarge",
    "StreamPayloadTooLarge",
    "SubAck",
    "SubCancel",
    "SubEnd",
    "SubErr",
    "SubEvent",
    "SubWatermark",
    "Subscribe",
    "Subscription",
    "SubscriptionFault",
    "SubscriptionFeed",
    "SubscriptionIdTooLong",
    "SubscriptionServer",
    "SubscriptionServerConfig",
    "SubscriptionSource",
    "UnknownOperation",
    "UnrecognizedError",
    "UnsupportedProtocolVersion",
    "acall",
    "call",
    "decode_request",
    "decode_response",
    "decode_stream_line",
    "dispatch_request",
    "encode_error",
    "encode_ok",
    "encode_request",
    "encode_response",
    "encode_stream_frame",
)

SRC = Path(netbat.__file__).parent


def test_exports_are_pinned() -> None:
    assert netbat.__all__ == EXPORTS
    assert netbat.__version__ == "0.1.0"


@pytest.mark.parametrize("name", EXPORTS)
def test_every_export_is_documented(name: str) -> None:
    obj = getattr(netbat, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert inspect.getdoc(obj), name


def test_every_error_class_has_a_wire_code() -> None:
    for name in EXPORTS:
        obj = getattr(netbat, name)
        if inspect.isclass(obj) and issubclass(obj, netbat.NetbatError):
            assert isinstance(obj.code, str), name
            assert obj.code, name


def test_netbat_imports_no_other_battery() -> None:
    for path in SRC.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"batpak", "syncbat", "hostbat"}, path.name


def test_frame_modules_do_no_io() -> None:
    for module in ("frames.py", "stream_frames.py", "session.py", "_hex.py", "errors.py"):
        tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not imported & {"anyio", "socket", "asyncio", "selectors"}, module
