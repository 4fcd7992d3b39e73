"""Pinned digests of the small example host in hostbat_fixtures.example_modules().

These hex constants are PYTHON-COMPUTED and NOT YET CROSS-CHECKED against the Rust reference
(hostbat 0.10.0 pins no hostbat digest in hex anywhere; spec §0 item 5). They guard against
accidental drift of the Python hash inputs; if a cross-check against the reference ever
disagrees, the reference wins and these constants change.
"""

from __future__ import annotations

import blake3
import msgpack  # type: ignore[import-untyped]
from hostbat_fixtures import example_modules

from hostbat.builder import HostBuilder, host_view
from hostbat.host import HostContract

H_MODULE_DEMO_ECHO = "29cc534caa0a27eaa7a5c68bc2b556a5337cc4b60c2f8957be8545bd53c3330d"
H_MODULE_DEMO_AUDIT = "c88d3f89c6c8a1101c06ca01b0f70d7effed3c96d6bc160c223e5255794eec9f"
H_HOST = "ae66c304fc989bd6030d3a8004f72fe0bbcb005c2de54b0a7f3a1d48d480ce2b"
COMPOSITION_DIGEST = "6397bac7816dd6e92aae335ca934cd7e5c9571f4091e7b3e525a7243699be1a2"
H_INTERFACE = "94d0c74d2cecee5287c08866ee7da95133a10c01ee39e6d8c3a0254e22690e81"
SCHEMA_ENCODING_DEMO_ECHO_IN = "cab67cd782b048d76475c07464f1a584e6967744237843bf4d166d1d384dad1b"


def contract() -> HostContract:
    echo, audit = example_modules()
    return HostBuilder().mount(echo).mount(audit).contract()


def test_pinned_module_digests() -> None:
    echo, audit = example_modules()
    assert echo.manifest.digest.hex() == H_MODULE_DEMO_ECHO
    assert audit.manifest.digest.hex() == H_MODULE_DEMO_AUDIT
    encoding = next(s.encoding for s in echo.manifest.schemas if s.id == "demo.echo.in")
    assert encoding.hex() == SCHEMA_ENCODING_DEMO_ECHO_IN


def test_pinned_host_composition_and_interface_digests() -> None:
    c = contract()
    assert c.fingerprint.hex() == H_HOST
    assert c.composition_digest.hex() == COMPOSITION_DIGEST
    assert c.interface_fingerprint.hex() == H_INTERFACE


def test_pinned_digests_survive_reverse_mount_order() -> None:
    echo, audit = example_modules()
    c = HostBuilder().mount(audit).mount(echo).contract()
    assert c.fingerprint.hex() == H_HOST
    assert c.interface_fingerprint.hex() == H_INTERFACE
    # No schema is declared by both modules, so the owner rule cannot move this one.
    assert c.composition_digest.hex() == COMPOSITION_DIGEST


def test_a_second_encoder_agrees() -> None:
    # msgpack-python with use_bin_type (the spec's stated equivalent of rmp to_vec_named)
    # over the same views must give the same digests as batpak.canonical.
    echo, audit = example_modules()
    for module in (echo, audit):
        packed = msgpack.packb(module.manifest.view(), use_bin_type=True)
        assert blake3.blake3(packed).hexdigest() == module.manifest.digest.hex()
    packed = msgpack.packb(host_view([echo.manifest, audit.manifest]), use_bin_type=True)
    assert blake3.blake3(packed).hexdigest() == H_HOST
