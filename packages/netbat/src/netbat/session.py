"""The NETBAT/2 session rules as a pure state machine (netbat.md §2, "Session semantics").

A ``Session`` turns source items into SUB_EVENT / SUB_WATERMARK frames with one shared
delivery-index sequence (1, 2, 3, ...), applies the client's control frames (cumulative
SUB_ACK, SUB_CANCEL), and produces exactly one terminal frame (SUB_ERR or SUB_END) or none
when the peer disconnects. It does no I/O; the subscription listener drives it.

Rules:

1. window = min(client_window, server_max_window, route_cap). A delivery while
   ``last_sent - last_acked >= window`` ends the session with SUB_ERR ``slow_consumer``
   ("delivery window full"); the server never pauses.
2. An ACK is checked in order: index in 1..=last_sent ("ack delivery index out of range",
   malformed_stream_frame), the source's cursor check (cursor_invalid / cursor_mismatch),
   an index with a sent cursor ("ack delivery index has no sent cursor", cursor_invalid),
   the cursor byte-equal to the one sent ("ack cursor does not match sent cursor",
   malformed_stream_frame), and not below the previous ACK ("ack delivery index regressed",
   cursor_invalid).
3. SUB_CANCEL ends with SUB_END ``client_cancelled`` and the last delivered cursor.
4. Any other client frame, a foreign sub_id, or an undecodable line ends with SUB_ERR
   ``malformed_stream_frame`` "malformed stream control frame".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netbat.errors import MalformedStreamFrame, NetbatError, SubscriptionFault
from netbat.stream_frames import (
    StreamFrame,
    SubAck,
    SubCancel,
    SubEnd,
    SubErr,
    SubEvent,
    SubWatermark,
    validate_payload_schema_ref,
    validate_reason_code,
)

__all__ = (
    "CLIENT_CANCELLED",
    "DEFAULT_SERVER_MAX_WINDOW",
    "RUNTIME_POLL_FAILED",
    "Session",
    "SessionEnded",
    "SourceEnd",
    "SourceEvent",
    "SourceItem",
    "SourceWatermark",
    "open_failure_frame",
)

DEFAULT_SERVER_MAX_WINDOW = 256
CLIENT_CANCELLED = "client_cancelled"
RUNTIME_POLL_FAILED = "subscription runtime poll failed"

_POLL_FAILURE_CODES = frozenset(
    {
        "internal_error",
        "cursor_invalid",
        "cursor_mismatch",
        "unknown_subscription",
        "malformed_stream_frame",
        "receipt_decode_failed",
    }
)
_MALFORMED_ACK_REASONS = frozenset(
    {"ack delivery index out of range", "ack cursor does not match sent cursor"}
)


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One event a subscription source hands to the session."""

    cursor_before: bytes | None
    cursor_after: bytes
    payload_schema_ref: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SourceWatermark:
    """A frontier watermark a source hands to the session."""

    cursor_after: bytes


@dataclass(frozen=True, slots=True)
class SourceEnd:
    """The source has nothing more: end the stream with ``reason_code``."""

    reason_code: str


SourceItem = SourceEvent | SourceWatermark | SourceEnd


class SessionEnded(Exception):
    """The session already produced its terminal frame (or the peer left)."""


def open_failure_frame(subscription_id: str, fault: SubscriptionFault) -> SubErr:
    """Return the single SUB_ERR a failed open writes (unknown sub: the message is the id)."""
    code = fault.code
    try:
        validate_reason_code(code)
    except MalformedStreamFrame:
        code = "cursor_invalid"
    return SubErr(subscription_id, code, None, None, fault.message.encode("utf-8"))


class Session:
    """One subscription's delivery and acknowledgement state."""

    def __init__(
        self,
        subscription_id: str,
        client_window: int,
        *,
        server_max_window: int = DEFAULT_SERVER_MAX_WINDOW,
        route_cap: int | None = None,
        check_ack_cursor: Callable[[bytes], None] | None = None,
    ) -> None:
        if client_window < 1 or server_max_window < 1 or (route_cap is not None and route_cap < 1):
            raise ValueError("every window bound must be at least 1")
        self.subscription_id = subscription_id
        self.window = min(client_window, server_max_window, route_cap or server_max_window)
        self._check_ack_cursor = check_ack_cursor
        self._next_index = 1
        self.last_sent_index = 0
        self.last_acked_index = 0
        self.last_delivered_cursor: bytes | None = None
        self.last_acked_cursor: bytes | None = None
        self._sent_cursors: dict[int, bytes] = {}
        self.ended = False

    @property
    def in_flight(self) -> int:
        """Deliveries sent but not yet covered by an ACK."""
        return self.last_sent_index - self.last_acked_index

    # -- server side ------------------------------------------------------------------------

    def deliver(self, item: SourceItem) -> StreamFrame:
        """Return the frame for a source item; a SUB_ERR or SUB_END ends the session."""
        self._ensure_open()
        try:
            if isinstance(item, SourceEnd):
                validate_reason_code(item.reason_code)
            elif isinstance(item, SourceEvent):
                validate_payload_schema_ref(item.payload_schema_ref)
        except MalformedStreamFrame:
            # A source that breaks the token grammar is a server fault, not the client's.
            return self.runtime_failure("internal_error")
        if isinstance(item, SourceEnd):
            return self._end(item.reason_code)
        if self.in_flight >= self.window:
            return self._error("slow_consumer", "delivery window full")
        index = self._next_index
        self._next_index += 1
        self.last_sent_index = index
        self._sent_cursors[index] = item.cursor_after
        self.last_delivered_cursor = item.cursor_after
        if isinstance(item, SourceWatermark):
            return SubWatermark(self.subscription_id, index, item.cursor_after)
        return SubEvent(
            self.subscription_id,
            index,
            item.cursor_before,
            item.cursor_after,
            item.payload_schema_ref,
            item.payload,
        )

    def runtime_failure(self, code: str = "internal_error") -> SubErr:
        """End the session after a source poll failed; unknown codes become internal_error."""
        self._ensure_open()
        if code not in _POLL_FAILURE_CODES:
            code = "internal_error"
        return self._error(code, RUNTIME_POLL_FAILED)

    # -- client side ------------------------------------------------------------------------

    def control(self, frame: StreamFrame | NetbatError) -> StreamFrame | None:
        """Apply one client line (decoded, or its decode error); return a terminal frame or None.

        Only a well-formed SUB_ACK for this subscription returns None (the session goes on).
        """
        self._ensure_open()
        if isinstance(frame, SubAck) and frame.subscription_id == self.subscription_id:
            return self._ack(frame.delivery_index, frame.cursor_after)
        if isinstance(frame, SubCancel) and frame.subscription_id == self.subscription_id:
            return self._end(CLIENT_CANCELLED)
        return self._error("malformed_stream_frame", "malformed stream control frame")

    def disconnect(self) -> None:
        """The peer went away: end silently, with no terminal frame."""
        self.ended = True

    # -- internals --------------------------------------------------------------------------

    def _ack(self, index: int, cursor: bytes) -> SubErr | None:
        if index == 0 or index > self.last_sent_index:
            return self._ack_invalid("ack delivery index out of range")
        if self._check_ack_cursor is not None:
            try:
                self._check_ack_cursor(cursor)
            except SubscriptionFault as fault:
                return self._error(fault.code, fault.message)
        expected = self._sent_cursors.get(index)
        if expected is None:
            return self._ack_invalid("ack delivery index has no sent cursor")
        if expected != cursor:
            return self._ack_invalid("ack cursor does not match sent cursor")
        if index < self.last_acked_index:
            return self._ack_invalid("ack delivery index regressed")
        self.last_acked_index = index
        self.last_acked_cursor = cursor
        return None

    def _ack_invalid(self, reason: str) -> SubErr:
        code = "malformed_stream_frame" if reason in _MALFORMED_ACK_REASONS else "cursor_invalid"
        return self._error(code, reason)

    def _error(self, code: str, message: str) -> SubErr:
        self.ended = True
        return SubErr(
            self.subscription_id,
            code,
            self.last_delivered_cursor,
            self.last_acked_cursor,
            message.encode("utf-8"),
        )

    def _end(self, reason_code: str) -> SubEnd:
        self.ended = True
        return SubEnd(self.subscription_id, self.last_delivered_cursor, reason_code)

    def _ensure_open(self) -> None:
        if self.ended:
            raise SessionEnded(self.subscription_id)
