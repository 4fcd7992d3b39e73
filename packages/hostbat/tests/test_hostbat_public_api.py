"""The curated top-level surface of hostbat."""

from __future__ import annotations

import hostbat


def test_all_is_sorted_and_importable() -> None:
    assert list(hostbat.__all__) == sorted(hostbat.__all__)
    for name in hostbat.__all__:
        assert getattr(hostbat, name) is not None


def test_every_public_class_has_a_docstring() -> None:
    for name in hostbat.__all__:
        obj = getattr(hostbat, name)
        if isinstance(obj, type):
            assert obj.__doc__, name


def test_version() -> None:
    assert hostbat.__version__ == "0.1.0"
