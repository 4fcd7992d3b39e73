"""Ed25519 receipt signing (format.md §6): key ids, the cover, and every verdict reason.

The cover digest is rebuilt independently (struct, msgpack, blake3) and the signature checked
with PyNaCl directly. Kinds used here are 0xEBxx.
"""

import dataclasses
import struct
from pathlib import Path
from typing import Any

import blake3
import msgpack  # type: ignore[import-untyped]
import msgspec
import pytest
from nacl.signing import SigningKey, VerifyKey

from batpak import (
    AppendOptions,
    AppendReceipt,
    BatchAppendItem,
    Coordinate,
    Outcome,
    Store,
    StoreConfig,
    verify_receipt_claim,
)
from batpak.errors import Configuration
from batpak.kinds import EventKind
from batpak.receipt import Reason

KIND = EventKind.custom(0xE, 0xB40)
COORD = Coordinate("acct:7", "bank")
SEED = bytes([0x42] * 32)
OTHER_SEED = bytes([0x17] * 32)
PUBLIC_KEY = bytes.fromhex("2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12")
KEY_ID = bytes.fromhex("fef6dfa48b073924c436539010d7812fbe50096ae82569fdad35f79628bc0084")


def blake(data: bytes) -> bytes:
    digest: bytes = blake3.blake3(data).digest()
    return digest


def cover(receipt: AppendReceipt, coord: Coordinate, kind: int, prev_hash: bytes) -> bytes:
    """Cover v1, built from format.md §6 without batpak."""
    extensions = {
        k: list(receipt.extensions[k]) for k in sorted(receipt.extensions, key=str.encode)
    }
    data = b"".join(
        (
            b"\x01",
            receipt.event_id.to_bytes(16, "little"),
            struct.pack("<Q", receipt.global_sequence),
            msgpack.packb({"entity": coord.entity, "scope": coord.scope}, use_bin_type=True),
            struct.pack("<H", kind),
            prev_hash,
            receipt.content_hash,
            msgpack.packb(extensions, use_bin_type=True),
        )
    )
    return blake(data)


def replace(receipt: AppendReceipt, **changes: Any) -> AppendReceipt:
    return msgspec.structs.replace(receipt, **changes)


def test_the_key_derivation_vector() -> None:
    public = bytes(SigningKey(SEED).verify_key)
    assert public == PUBLIC_KEY
    assert blake(public) == KEY_ID


@pytest.fixture
def signed(tmp_path: Path) -> Any:
    with Store.open(StoreConfig(tmp_path).with_signing_key(SEED)) as store:
        yield store


def test_receipts_are_signed_over_the_cover(signed: Store) -> None:
    first = signed.append(COORD, KIND, {"n": 1})
    second = signed.append(COORD, KIND, {"n": 2}, AppendOptions(extensions={"app.b": b"\x00\xff"}))
    for receipt, prev in ((first, bytes(32)), (second, first.content_hash)):
        assert receipt.key_id == KEY_ID
        assert receipt.signature is not None
        assert len(receipt.signature) == 64
        VerifyKey(PUBLIC_KEY).verify(cover(receipt, COORD, KIND, prev), receipt.signature)
        assert signed.verify_append_receipt(receipt).outcome is Outcome.SIGNED
        verdict = verify_receipt_claim(receipt, COORD, KIND, prev, (PUBLIC_KEY,))
        assert verdict.outcome is Outcome.SIGNED
        assert verdict.is_valid
    batch = signed.append_batch([BatchAppendItem.new(COORD, KIND, i) for i in range(2)])
    prev = second.content_hash
    for receipt in batch:
        assert receipt.signature is not None
        VerifyKey(PUBLIC_KEY).verify(cover(receipt, COORD, KIND, prev), receipt.signature)
        assert signed.verify_append_receipt(receipt).outcome is Outcome.SIGNED
        prev = receipt.content_hash


def test_every_covered_field_is_bound(signed: Store) -> None:
    first = signed.append(COORD, KIND, {"n": 1})
    receipt = signed.append(COORD, KIND, {"n": 2}, AppendOptions(extensions={"app.b": b"x"}))
    other = signed.append(Coordinate("acct:8", "bank"), KIND, {"n": 3})
    prev, keys = first.content_hash, (PUBLIC_KEY,)

    def store_free(r: AppendReceipt, coord: Coordinate = COORD, kind: int = KIND) -> Reason | None:
        return verify_receipt_claim(r, coord, kind, prev, keys).reason

    def store_side(r: AppendReceipt) -> Reason | None:
        return signed.verify_append_receipt(r).reason

    assert store_free(receipt) is None
    assert store_side(receipt) is None
    cases: dict[str, tuple[AppendReceipt, Reason]] = {
        "event_id": (replace(receipt, event_id=other.event_id), Reason.SEQUENCE_MISMATCH),
        "global_sequence": (
            replace(receipt, global_sequence=receipt.global_sequence + 1),
            Reason.SEQUENCE_MISMATCH,
        ),
        "extensions": (replace(receipt, extensions={"app.b": b"y"}), Reason.EXTENSIONS_MISMATCH),
        "content_hash": (
            replace(receipt, content_hash=other.content_hash),
            Reason.CONTENT_HASH_MISMATCH,
        ),
    }
    for name, (tampered, store_reason) in cases.items():
        assert store_free(tampered) is Reason.INVALID_SIGNATURE, name
        assert store_side(tampered) is store_reason, name
    # Transplant the signature onto every committed fact of another event: only the
    # signature check can catch it, and it must.
    transplanted = replace(other, signature=receipt.signature)
    assert store_side(transplanted) is Reason.INVALID_SIGNATURE
    # Coordinate, kind and prev_hash are covered too (the store-free caller supplies them).
    assert store_free(receipt, coord=Coordinate("acct:8", "bank")) is Reason.INVALID_SIGNATURE
    assert store_free(receipt, kind=KIND + 1) is Reason.INVALID_SIGNATURE
    assert (
        verify_receipt_claim(receipt, COORD, KIND, bytes(32), keys).reason
        is Reason.INVALID_SIGNATURE
    )
    assert signed.verify_append_receipt(replace(receipt, event_id=12345)).reason is (
        Reason.MISSING_COMMITTED_EVENT
    )
    moved = replace(receipt, disk_pos=replace_pos(receipt))
    assert store_side(moved) is Reason.DISK_POSITION_MISMATCH
    assert store_free(moved) is None  # disk_pos is outside the cover


def replace_pos(receipt: AppendReceipt) -> Any:
    return msgspec.structs.replace(receipt.disk_pos, offset=receipt.disk_pos.offset + 1)


def test_claim_failure_reasons(signed: Store) -> None:
    receipt = signed.append(COORD, KIND, "r")
    prev = bytes(32)
    other_public = bytes(SigningKey(OTHER_SEED).verify_key)

    def both(r: AppendReceipt, keys: tuple[bytes, ...] = (PUBLIC_KEY,)) -> set[Reason | None]:
        free = verify_receipt_claim(r, COORD, KIND, prev, keys)
        assert free.outcome is (Outcome.INVALID if free.reason else Outcome.SIGNED)
        reasons = {free.reason}
        if keys == (PUBLIC_KEY,):
            reasons.add(signed.verify_append_receipt(r).reason)  # the same verdict store-side
        return reasons

    assert both(receipt) == {None}
    assert both(receipt, (other_public,)) == {Reason.UNKNOWN_SIGNING_KEY}
    assert both(receipt, (other_public, PUBLIC_KEY)) == {None}
    assert both(replace(receipt, key_id=bytes(32))) == {Reason.ZERO_KEY_WITH_SIGNATURE}
    assert both(replace(receipt, signature=None)) == {Reason.MISSING_SIGNATURE}
    unsigned = replace(receipt, key_id=bytes(32), signature=None)
    assert both(unsigned) == {Reason.UNSIGNED_RECEIPT_REJECTED}
    accepted = verify_receipt_claim(unsigned, COORD, KIND, prev, ())
    assert (accepted.outcome, accepted.reason) == (Outcome.UNSIGNED_ACCEPTED, None)
    assert accepted.is_valid
    bad_sig = replace(receipt, signature=bytes(64))
    assert both(bad_sig) == {Reason.INVALID_SIGNATURE}


def test_unsigned_store_accepts_unsigned_receipts(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        receipt = store.append(COORD, KIND, 1)
        assert (receipt.key_id, receipt.signature) == (bytes(32), None)
        assert store.verify_append_receipt(receipt).outcome is Outcome.UNSIGNED_ACCEPTED
        forged = replace(receipt, key_id=KEY_ID, signature=bytes(64))
        assert store.verify_append_receipt(forged).reason is Reason.UNKNOWN_SIGNING_KEY


def test_receipts_from_an_unsigned_session_are_rejected_once_a_key_is_set(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        old = store.append(COORD, KIND, 1)
    with Store.open(StoreConfig(tmp_path).with_signing_key(SEED)) as store:
        assert store.verify_append_receipt(old).reason is Reason.UNSIGNED_RECEIPT_REJECTED


def test_the_last_key_signs_and_every_key_verifies(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path).with_signing_key(SEED)) as store:
        old = store.append(COORD, KIND, 1)
    rotated = StoreConfig(tmp_path).with_signing_key(SEED).with_signing_key(OTHER_SEED)
    with Store.open(rotated) as store:
        new = store.append(COORD, KIND, 2)
        assert new.key_id == blake(bytes(SigningKey(OTHER_SEED).verify_key))
        assert store.verify_append_receipt(new).outcome is Outcome.SIGNED
        assert store.verify_append_receipt(old).outcome is Outcome.SIGNED
    with Store.open(StoreConfig(tmp_path).with_signing_key(OTHER_SEED)) as store:
        assert store.verify_append_receipt(old).reason is Reason.UNKNOWN_SIGNING_KEY
        assert store.verify_append_receipt(new).outcome is Outcome.SIGNED


def test_required_signing_policy_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(Configuration):
        StoreConfig(tmp_path, signing_policy="required")
    config = StoreConfig(tmp_path)
    with pytest.raises(Configuration):
        dataclasses.replace(config, signing_policy="required")
    required = StoreConfig(tmp_path, signing_policy="required", signing_keys=(SEED,))
    with Store.open(required) as store:
        assert store.append(COORD, KIND, 1).key_id == KEY_ID


def test_a_keyed_retry_is_re_signed_identically(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path).with_signing_key(SEED)
    options = AppendOptions(idempotency_key=0xC0FFEE, extensions={"app.r": b"1"})
    with Store.open(config) as store:
        receipt = store.append(COORD, KIND, "pay", options)
        assert store.append(COORD, KIND, "pay", options) == receipt
    with Store.open(config) as store:
        retry = store.append(COORD, KIND, "pay", options)
        assert retry == receipt
        assert retry.signature == receipt.signature
        assert store.verify_append_receipt(retry).outcome is Outcome.SIGNED
    rotated = StoreConfig(tmp_path).with_signing_key(SEED).with_signing_key(OTHER_SEED)
    with Store.open(rotated) as store:
        resigned = store.append(COORD, KIND, "pay", options)  # today's key signs the replay
        assert resigned.key_id != receipt.key_id
        assert (resigned.event_id, resigned.global_sequence) == (
            receipt.event_id,
            receipt.global_sequence,
        )
        assert store.verify_append_receipt(resigned).outcome is Outcome.SIGNED
