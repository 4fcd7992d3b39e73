"""The store-backed register catalog: lifecycle checks, fold order, rebuild after reopen."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from syncbat_support import descriptor

from batpak import Coordinate, Store, StoreConfig
from syncbat import (
    SYNCBAT_REGISTER_EVENT_KIND,
    CatalogConflict,
    EffectClass,
    OperationEffectRow,
    Register,
    RegisterOperationRow,
    StoreRegisterCatalog,
    rebuild_register_from_store,
)
from syncbat.errors import (
    CatalogDecodeError,
    InvalidAction,
    InvalidCatalogDescriptor,
    InvalidEffect,
    InvalidLifecycleRow,
    InvalidSchemaVersion,
)
from syncbat.register_store import Active, Deleted, Superseded, fold_catalog

CATALOG = Coordinate("syncbat:register", "scope:register")
OTHER = Coordinate("syncbat:register", "scope:other")

A = descriptor("ops.a")
B = descriptor("ops.b")
C = descriptor("ops.c", EffectClass.PERSIST, OperationEffectRow().appends_event("evt.f101"))


def open_store(path: Path) -> Store:
    return Store.open(StoreConfig(path / "store"))


def test_lifecycle_and_rebuild_identical_after_reopen(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        catalog = StoreRegisterCatalog(store, CATALOG)
        catalog.persist_register(Register([A, B, C]))
        catalog.persist_operation(A)  # identical put: allowed, appended, no change
        catalog.update_operation(A.with_title("Alpha"))
        catalog.delete_operation("ops.b")
        replacement = descriptor("ops.c2", EffectClass.PERSIST, C.effect_row)
        catalog.supersede_operation("ops.c", replacement)
        entries_before = catalog.entries()
        register_before = catalog.register()
        # another coordinate is a separate catalog
        StoreRegisterCatalog(store, OTHER).persist_operation(B)
    assert entries_before == {
        "ops.a": Active(A.with_title("Alpha")),
        "ops.b": Deleted(),
        "ops.c": Superseded(replacement),
        "ops.c2": Active(replacement),
    }
    assert register_before.names() == ["ops.a", "ops.c2"]
    with open_store(tmp_path) as store:
        assert fold_catalog(store, CATALOG) == entries_before
        assert rebuild_register_from_store(store, CATALOG) == register_before
        assert rebuild_register_from_store(store, OTHER).names() == ["ops.b"]
        assert len(store.by_fact(SYNCBAT_REGISTER_EVENT_KIND)) == 8


def test_rebuild_is_deterministic_across_reopens(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        StoreRegisterCatalog(store, CATALOG).persist_register(Register([C, B, A]))
    seen = []
    for _ in range(3):
        with open_store(tmp_path) as store:
            register = rebuild_register_from_store(store, CATALOG)
            seen.append(([d.name for d in register], list(register)))
    assert seen[0] == seen[1] == seen[2]
    assert seen[0][0] == ["ops.a", "ops.b", "ops.c"]


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (["put A", "put A'"], "put cannot replace an active descriptor"),
        (["update A"], "cannot update an operation before it has been put"),
        (["put A", "delete A", "update A"], "cannot update a tombstoned operation"),
        (["put A", "delete A", "put A"], "cannot put a name after it has been tombstoned"),
        (["delete A"], "cannot delete an operation before it has been put"),
        (["put A", "delete A", "delete A"], "operation is already deleted"),
        (["supersede A B"], "cannot supersede an operation before it has been put"),
        (["put A", "delete A", "supersede A B"], "after it has been deleted"),
        (["put A", "supersede A B", "supersede A B"], "already been superseded by that"),
        (["put A", "supersede A B", "delete A"], "after it has been superseded"),
        (["put A", "put B'", "supersede A B"], "replacement name is already active"),
        (["put A", "put B", "delete B", "supersede A B"], "tombstoned replacement name"),
    ],
)
def test_bad_transitions_are_rejected_before_append(
    tmp_path: Path, steps: list[str], reason: str
) -> None:
    b_prime = B.with_title("different")
    a_prime = A.with_title("different")
    table = {"A": A, "B": B, "A'": a_prime, "B'": b_prime}
    with open_store(tmp_path) as store:
        catalog = StoreRegisterCatalog(store, CATALOG)
        *ok, last = steps

        def run(step: str) -> None:
            verb, *args = step.split()
            if verb == "put":
                catalog.persist_operation(table[args[0]])
            elif verb == "update":
                catalog.update_operation(table[args[0]])
            elif verb == "delete":
                catalog.delete_operation(table[args[0]].name)
            else:
                catalog.supersede_operation(table[args[0]].name, table[args[1]])

        for step in ok:
            run(step)
        count = len(store.by_fact(SYNCBAT_REGISTER_EVENT_KIND))
        with pytest.raises(CatalogConflict, match=reason):
            run(last)
        assert len(store.by_fact(SYNCBAT_REGISTER_EVENT_KIND)) == count


def test_supersede_into_itself_is_an_invalid_row(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        catalog = StoreRegisterCatalog(store, CATALOG)
        catalog.persist_operation(A)
        with pytest.raises(InvalidLifecycleRow, match="must differ"):
            catalog.supersede_operation("ops.a", A)


def test_invalid_descriptor_is_refused(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        bad = descriptor("ops.bad", EffectClass.PERSIST)  # persist without appends
        with pytest.raises(InvalidCatalogDescriptor):
            StoreRegisterCatalog(store, CATALOG).persist_operation(bad)
        with pytest.raises(InvalidCatalogDescriptor):
            StoreRegisterCatalog(store, CATALOG).delete_operation("bad name")


def append_row(store: Store, row: RegisterOperationRow) -> None:
    store.append_typed(CATALOG, row.to_wire())


@pytest.mark.parametrize(
    ("row", "error"),
    [
        (
            msgspec.structs.replace(RegisterOperationRow.put(A), schema_version=2),
            InvalidSchemaVersion,
        ),
        (msgspec.structs.replace(RegisterOperationRow.put(A), action="upsert"), InvalidAction),
        (msgspec.structs.replace(RegisterOperationRow.put(A), effect="mutate"), InvalidEffect),
        (
            msgspec.structs.replace(RegisterOperationRow.put(A), supersedes="ops.z"),
            InvalidLifecycleRow,
        ),
        (
            msgspec.structs.replace(RegisterOperationRow.delete("ops.a"), title="x"),
            InvalidLifecycleRow,
        ),
        (
            msgspec.structs.replace(RegisterOperationRow.put(A), action="supersede"),
            InvalidLifecycleRow,
        ),
        (RegisterOperationRow.update(A), CatalogConflict),
    ],
)
def test_corrupt_or_conflicting_stored_rows_fail_the_rebuild(
    tmp_path: Path, row: RegisterOperationRow, error: type[Exception]
) -> None:
    with open_store(tmp_path) as store:
        append_row(store, row)
        with pytest.raises(error):
            rebuild_register_from_store(store, CATALOG)


def test_undecodable_row_fails_the_rebuild(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.append(CATALOG, SYNCBAT_REGISTER_EVENT_KIND, {"schema_version": "one"})
        with pytest.raises(CatalogDecodeError):
            rebuild_register_from_store(store, CATALOG)


def test_fold_tolerates_replays_written_by_others(tmp_path: Path) -> None:
    replacement = B
    with open_store(tmp_path) as store:
        for row in (
            RegisterOperationRow.put(A),
            RegisterOperationRow.put(A),
            RegisterOperationRow.delete("ops.a"),
            RegisterOperationRow.delete("ops.a"),
            RegisterOperationRow.put(C),
            RegisterOperationRow.supersede("ops.c", replacement),
            RegisterOperationRow.supersede("ops.c", replacement),
        ):
            append_row(store, row)
        assert fold_catalog(store, CATALOG) == {
            "ops.a": Deleted(),
            "ops.b": Active(replacement),
            "ops.c": Superseded(replacement),
        }


def test_row_constructors() -> None:
    assert RegisterOperationRow.delete("x").carries_only_name()
    row = RegisterOperationRow.supersede("old", A)
    assert (row.action, row.supersedes, row.name) == ("supersede", "old", "ops.a")
    assert RegisterOperationRow.update(A).action == "update"
    assert RegisterOperationRow.decode(row.encode()) == row
