"""BatenBase's REST API against its own OpenAPI document, fuzzed on a real server process.

PROVES: INV-WIRE-ROUNDTRIP-TOTALITY (for every operation of ``/openapi.json``, requests that
schemathesis generates from the document, valid ones and deliberately invalid ones, get no 5xx
from a real ``python -m batenbase serve``; every answer has a status the document declares,
its declared content type, and a body matching the declared schema: a typed ``{"ok": false,
"error": {code, message}}`` refusal for malformed input, never a crash or a partial answer).
CATCHES: an input that reaches a handler unchecked (500 ``internal_error``), a route missing
from the document or documented with the wrong status (201), media type or shape.
SEEDED: hypothesis (through schemathesis) draws the cases; ``FUZZ_REST_EXAMPLES`` (default 4
per operation and mode) sets how many, ``nox -s fuzz`` runs more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from bbserver import BBServer
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

EXAMPLES = int(os.environ.get("FUZZ_REST_EXAMPLES", "4"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BBServer, dict[str, str]]]:
    srv = BBServer(tmp_path_factory.mktemp("rest")).start()
    try:
        tokens = srv.tenant("fz", "unlimited")
        with srv.client(tokens["writer"]) as client:
            client.put_block("fz:one", {"n": 1})
        yield srv, tokens
    finally:
        srv.close()


def _auth(case: Any, op: str, tenant: str) -> dict[str, str]:
    operator = case.path.startswith("/admin") or case.path == "/metrics"
    return {"Authorization": f"Bearer {op if operator else tenant}"}


@pytest.mark.invariant("INV-WIRE-ROUNDTRIP-TOTALITY")
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(
    server: tuple[BBServer, dict[str, str]], mode: GenerationMode
) -> None:
    srv, tokens = server
    document = httpx.get(srv.url + "/openapi.json", headers=_auth_doc(srv), timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) >= 20
    failures: list[str] = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy(mode))
        def run(case: Any) -> None:
            headers = _auth(case, srv.op, tokens["admin"])
            response = case.call(base_url=srv.url, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to make invalid (no inputs)
        except (Exception, BaseExceptionGroup) as exc:  # report every operation, not the first
            failures.append(f"{operation.label}: {_summary(exc)}")
    assert not failures, "\n\n".join(failures)
    assert "internal_error" not in srv.stderr()


def _auth_doc(srv: BBServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {srv.op}"}


def _summary(exc: BaseException) -> str:
    """The failed checks' titles and the first lines of their messages."""
    found = getattr(exc, "exceptions", None) or [exc]
    return "; ".join(" ".join(str(e).split("\n")[:3])[:300] for e in found)
