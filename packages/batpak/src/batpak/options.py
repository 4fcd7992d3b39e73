"""AppendOptions: the per-append knobs beyond coordinate, kind and payload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from batpak.errors import InvalidCausation
from batpak.receipt import check_extension_key

_U128 = 1 << 128


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendOptions:
    """Correlation and causation ids, header flags, and signed receipt extensions.

    ``correlation_id`` defaults to the new event's own id; a ``causation_id`` of 0 means none.
    Extension keys are ``namespace.field`` (the ``batpak`` namespace is reserved).
    """

    correlation_id: int | None = None
    causation_id: int | None = None
    flags: int = 0
    extensions: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("correlation_id", "causation_id"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 0 <= value < _U128):
                raise InvalidCausation(f"{name} must be a u128 int, got {value!r}")
        if not isinstance(self.flags, int) or not 0 <= self.flags <= 0xFF:
            raise InvalidCausation(f"flags must fit in a u8, got {self.flags!r}")
        for key, value in self.extensions.items():
            check_extension_key(key)
            if not isinstance(value, bytes):
                raise InvalidCausation(f"extension {key!r} value must be bytes")


DEFAULT_OPTIONS = AppendOptions()
