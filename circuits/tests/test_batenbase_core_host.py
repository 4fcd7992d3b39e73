"""Writes go through the hostbat module ``batenbase.kv``: runtime receipts, one fsync, manifest."""

from __future__ import annotations

from pathlib import Path

import blake3
import pytest
from batenbase_support import T0, Clock, caller

from batenbase._host import RECEIPT_COORD, DeleteRequest, PutRequest
from batenbase.errors import NotFound, PreconditionFailed, QuotaExceeded, Unauthorized
from batenbase.service import BatenBase
from batpak import Store, canonical
from syncbat import Completed, Failed, ReceiptEnvelope


def journal(bb: BatenBase) -> Store:
    return bb._tenants["acme"].store


def receipts(bb: BatenBase) -> list[ReceiptEnvelope]:
    store = journal(bb)
    return [
        ReceiptEnvelope.decode(store.get(e.event_id).event.payload)
        for e in store.by_entity(RECEIPT_COORD.entity)
    ]


def test_a_put_leaves_a_completed_receipt_binding_request_and_answer(bb: BatenBase) -> None:
    alice = caller(bb, "alice")
    bb.put_block(alice, "k", {"n": 1})
    [envelope] = receipts(bb)
    assert envelope.descriptor_name == "batenbase.block.put"
    assert envelope.receipt_kind == "receipt.batenbase.block.put.v1"
    assert isinstance(envelope.outcome, Completed)
    request = PutRequest(alice, "k", b'{"n":1}', None, None, None, False, T0)
    assert envelope.input_hash == blake3.blake3(canonical.encode(request)).digest()
    assert envelope.output_hash is not None


def test_the_receipt_is_durable_when_the_write_returns(bb: BatenBase) -> None:
    bb.put_block(caller(bb, "alice"), "k", 1)
    store = journal(bb)
    last = store.by_entity(RECEIPT_COORD.entity)[-1]
    assert store.frontier().durable.global_sequence >= last.global_sequence


def test_refused_writes_leave_failed_receipts_and_change_nothing(bb: BatenBase) -> None:
    alice = caller(bb, "alice")
    bb.put_block(alice, "k", 1)
    with pytest.raises(PreconditionFailed):
        bb.put_block(alice, "k", 2, if_none_match=True)
    with pytest.raises(NotFound):
        bb.delete_block(alice, "missing")
    outcomes = [r.outcome for r in receipts(bb)]
    assert isinstance(outcomes[0], Completed)
    assert [type(o) for o in outcomes[1:]] == [Failed, Failed]
    assert bb.get_block(alice, "k").data == 1
    failed = receipts(bb)[2]
    assert failed.descriptor_name == "batenbase.block.delete"
    request = DeleteRequest(alice, "missing", None, T0)
    assert failed.input_hash == blake3.blake3(canonical.encode(request)).digest()
    assert failed.output_hash is None


def test_a_quota_refusal_is_audited_durably_before_the_429(tmp_path: Path, clock: Clock) -> None:
    with BatenBase.open(tmp_path / "d", clock=clock, free_quota=1) as bb:
        bb.create_tenant("acme")
        alice = caller(bb, "alice")
        bb.put_block(alice, "a", 1)
        with pytest.raises(QuotaExceeded):
            bb.put_block(alice, "b", 1)
        kinds = [e.kind for e in bb.scan_events(caller(bb, "root", "admin")).items]
        assert "bb.quota.refused" in kinds
        assert isinstance(receipts(bb)[-1].outcome, Failed)
        assert bb.tenant_info(alice).usage == 1


def test_receipts_survive_reopen_and_compaction(tmp_path: Path, clock: Clock) -> None:
    with BatenBase.open(tmp_path / "d", clock=clock) as bb:
        bb.create_tenant("acme")
        alice = caller(bb, "alice")
        for i in range(3):
            bb.put_block(alice, "k", i)
        bb.compact("acme")
        assert len(receipts(bb)) == 3
    with BatenBase.open(tmp_path / "d", clock=clock) as bb:
        assert len(receipts(bb)) == 3
        assert bb.get_block(caller(bb, "bob"), "k").data == 2


def test_the_host_contract_is_sealed_and_stable(tmp_path: Path, clock: Clock) -> None:
    with (
        BatenBase.open(tmp_path / "a", clock=clock) as one,
        BatenBase.open(tmp_path / "b", clock=clock) as two,
    ):
        contract = one.host_contract()
        assert contract == two.host_contract()
    assert contract["module"]["id"] == "batenbase.kv"
    assert len(contract["module"]["digest"]) == 64
    names = [op["name"] for op in contract["operations"]]
    assert names == [
        "batenbase.block.put",
        "batenbase.block.delete",
        "batenbase.event.append",
        "batenbase.tenant.create",
        "batenbase.tenant.plan",
        "batenbase.token.issue",
        "batenbase.token.revoke",
        "batenbase.tenant.read_receipts",
    ]
    assert contract["operations"][0]["appends"] == ["evt.b001", "evt.b010"]


def operator_receipts(bb: BatenBase) -> list[tuple[str, str]]:
    store = bb._operator.store
    return [
        (r.descriptor_name, r.outcome.outcome_class)
        for r in (
            ReceiptEnvelope.decode(store.get(e.event_id).event.payload)
            for e in store.by_entity(RECEIPT_COORD.entity)
        )
    ]


def test_operator_changes_leave_receipts_in_the_operator_journal(
    tmp_path: Path, clock: Clock
) -> None:
    with BatenBase.open(tmp_path / "d", clock=clock) as bb:
        bb.bootstrap_operator_token()
        bb.create_tenant("acme")
        with pytest.raises(PreconditionFailed):
            bb.create_tenant("acme")
        issued = bb.issue_token("acme", "alice", "writer")
        bb.set_plan("acme", "unlimited")
        bb.set_read_receipts(caller(bb, "root", "admin"), True)
        bb.revoke_token(issued.token_id)
        bb.revoke_token(issued.token_id)
        with pytest.raises(NotFound):
            bb.revoke_token("nope")
        expected = [
            ("batenbase.token.issue", "completed"),
            ("batenbase.tenant.create", "completed"),
            ("batenbase.tenant.create", "failed"),
            ("batenbase.token.issue", "completed"),
            ("batenbase.tenant.plan", "completed"),
            ("batenbase.token.issue", "completed"),
            ("batenbase.tenant.read_receipts", "completed"),
            ("batenbase.token.revoke", "completed"),
            ("batenbase.token.revoke", "completed"),
        ]
        assert operator_receipts(bb) == expected
    with BatenBase.open(tmp_path / "d", clock=clock) as bb:
        assert operator_receipts(bb) == expected
        info = bb.list_tenants()[0]
        assert (info.plan, info.read_receipts) == ("unlimited", True)
        with pytest.raises(Unauthorized):
            bb.authenticate(issued.token)
