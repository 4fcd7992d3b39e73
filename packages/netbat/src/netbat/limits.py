"""Limits: the byte bounds every netbat decoder and server enforces (netbat.md §1.1, §2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = (
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_CURSOR_BYTES",
    "DEFAULT_MAX_INPUT_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_OPERATION_NAME_BYTES",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DEFAULT_MAX_REQUESTS_PER_CONNECTION",
    "DEFAULT_MAX_STREAM_ERROR_MESSAGE_BYTES",
    "DEFAULT_MAX_STREAM_PAYLOAD_BYTES",
    "DEFAULT_MAX_SUBSCRIPTION_ID_BYTES",
    "Limits",
)

DEFAULT_MAX_LINE_BYTES = 65536
DEFAULT_MAX_OPERATION_NAME_BYTES = 128
DEFAULT_MAX_INPUT_BYTES = 32768
DEFAULT_MAX_OUTPUT_BYTES = 32768
DEFAULT_MAX_SUBSCRIPTION_ID_BYTES = 128
DEFAULT_MAX_CURSOR_BYTES = 4096
DEFAULT_MAX_STREAM_PAYLOAD_BYTES = 32768
DEFAULT_MAX_STREAM_ERROR_MESSAGE_BYTES = 4096
DEFAULT_MAX_REQUESTS_PER_CONNECTION = 1
DEFAULT_MAX_CONNECTIONS = 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Byte bounds of the line protocol.

    ``max_line_bytes`` counts the raw line including its ``\\n``; ``max_input_bytes`` and the
    stream bounds count decoded bytes; ``max_output_bytes`` counts the dispatcher's raw output.
    """

    _: dataclasses.KW_ONLY
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_operation_name_bytes: int = DEFAULT_MAX_OPERATION_NAME_BYTES
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    max_subscription_id_bytes: int = DEFAULT_MAX_SUBSCRIPTION_ID_BYTES
    max_cursor_bytes: int = DEFAULT_MAX_CURSOR_BYTES
    max_stream_payload_bytes: int = DEFAULT_MAX_STREAM_PAYLOAD_BYTES
    max_stream_error_message_bytes: int = DEFAULT_MAX_STREAM_ERROR_MESSAGE_BYTES

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{field.name} must be a non-negative int, not {value!r}")

    def with_(self, **changes: int) -> Limits:
        """Return a copy with the named bounds replaced."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
