"""CoreBuilder registration and build checks."""

import pytest
from syncbat_support import Journal, SpyHandler, descriptor

from syncbat import (
    CoreBuilder,
    Ctx,
    EffectClass,
    Module,
    OperationDescriptor,
    Register,
    RegisterValidationError,
    operation,
)
from syncbat.errors import (
    DescriptorWithoutHandler,
    DuplicateHandler,
    DuplicateOperation,
    HandlerWithoutDescriptor,
    InvalidHandler,
    InvalidModule,
    InvalidOperation,
    MissingReceiptSink,
)


def handler() -> SpyHandler:
    return SpyHandler(Journal())


def test_build_requires_a_sink_or_explicit_opt_out() -> None:
    builder = CoreBuilder().register(descriptor("a"), handler())
    with pytest.raises(MissingReceiptSink):
        builder.build()
    builder.without_receipts().build()


def test_duplicate_operation_and_handler() -> None:
    builder = CoreBuilder().register(descriptor("a"), handler())
    with pytest.raises(DuplicateOperation):
        builder.register(descriptor("a"), handler())
    with pytest.raises(DuplicateOperation):
        builder.register_operation(descriptor("a"))
    with pytest.raises(DuplicateHandler):
        builder.register_handler("a", handler())


def test_two_phase_registration_and_mismatches() -> None:
    builder = CoreBuilder().without_receipts().register_operation(descriptor("a"))
    with pytest.raises(DescriptorWithoutHandler) as info:
        builder.build()
    assert info.value.name == "a"
    builder.register_handler("a", handler()).register_handler("b", handler())
    with pytest.raises(HandlerWithoutDescriptor):
        builder.build()
    builder.register_operation(descriptor("b"))
    assert builder.build().operation_names() == ["a", "b"]


def test_invalid_descriptor_and_handler_name() -> None:
    bad = OperationDescriptor("a", EffectClass.PERSIST, "in", "out", "r")
    with pytest.raises(InvalidOperation, match="persist operations must declare"):
        CoreBuilder().register(bad, handler())
    with pytest.raises(InvalidHandler):
        CoreBuilder().register_handler("bad name", handler())
    with pytest.raises(InvalidHandler):
        CoreBuilder().register(descriptor("a"), "not callable")  # type: ignore[arg-type]


def test_register_item_and_boxed() -> None:
    @operation(
        "echo",
        EffectClass.COMPUTE,
        input_schema_ref="echo.request",
        output_schema_ref="echo.ack",
        receipt_kind="receipt.echo.v1",
    )
    def echo(input: bytes, ctx: Ctx) -> bytes:
        return input

    core = (
        CoreBuilder()
        .register_item(echo)
        .register_boxed(descriptor("b"), handler())
        .without_receipts()
        .build()
    )
    assert core.invoke("echo", b"hi").output == b"hi"
    assert core.contains_operation("b")
    assert core.descriptor("echo") == echo.descriptor


def test_mount_module() -> None:
    module = Module("inventory", [descriptor("inventory.count"), descriptor("inventory.peek")])
    builder = CoreBuilder().mount(module)
    builder.register_handler("inventory.count", handler())
    builder.register_handler("inventory.peek", handler())
    assert builder.without_receipts().build().operation_names() == [
        "inventory.count",
        "inventory.peek",
    ]
    with pytest.raises(InvalidModule):
        CoreBuilder().mount(Module("bad module", [descriptor("x")]))
    with pytest.raises(InvalidModule):
        CoreBuilder().mount(Module("m", [descriptor("x"), descriptor("x")]))


def test_register_map() -> None:
    register = Register([descriptor("b"), descriptor("a")])
    assert register.names() == ["a", "b"]
    assert [d.name for d in register] == ["a", "b"]
    assert "a" in register
    assert len(register) == 2
    assert register.get("a") == descriptor("a")
    assert register == Register([descriptor("a"), descriptor("b")])
    with pytest.raises(RegisterValidationError, match="duplicate"):
        register.insert(descriptor("a"))
    with pytest.raises(RegisterValidationError, match="invalid descriptor"):
        register.insert(OperationDescriptor("c", EffectClass.PERSIST, "i", "o", "r"))
