"""The seams a host plugs into netbat: a request ``Dispatcher`` and a ``SubscriptionSource``.

netbat frames bytes and never interprets operations or cursors. A host (for example a syncbat
``Core``) implements these protocols; netbat imports no host package.

- ``Dispatcher.call(op, input) -> bytes`` runs one operation. It raises a ``NetbatError``
  (``UnknownOperation``, ``HandlerFailed``, ``RuntimeFailure``, ...) to answer with that ERR
  frame. Any other exception (even ``SystemExit``) is contained and answered as
  ``HandlerFailed(op, "failed", "unexpected <ExceptionType>")``; its text is not sent.
  The server calls it in a worker thread, since a call may block (disk, locks, fsync).
- ``InlineDispatcher`` adds ``inline(op) -> bool``: True for an op that is cheap and never
  blocks, which the server then calls on the event loop itself; a thread hop costs more than
  such an op (a heartbeat, a lookup in memory).
- ``SubscriptionSource.open(sub_id, resume_cursor, client_window)`` returns a
  ``SubscriptionFeed`` or raises ``SubscriptionFault`` (one SUB_ERR, then close).
- ``SubscriptionFeed.poll(timeout)`` returns the next ``SourceItem`` or None when nothing
  arrived within ``timeout`` seconds; a ``SubscriptionFault`` it raises ends the stream with
  SUB_ERR "subscription runtime poll failed". ``check_ack_cursor`` raises a
  ``SubscriptionFault`` for an ACK cursor that does not decode or belongs to another route.
"""

from __future__ import annotations

from typing import Protocol

from netbat.errors import HandlerFailed, InputTooLarge, NetbatError, OutputTooLarge
from netbat.frames import Request, validate_operation_name
from netbat.limits import Limits
from netbat.session import SourceItem

__all__ = (
    "Dispatcher",
    "InlineDispatcher",
    "SubscriptionFeed",
    "SubscriptionSource",
    "dispatch_request",
)


class Dispatcher(Protocol):
    """Runs one operation on raw input bytes and returns raw output bytes."""

    def call(self, op: str, input: bytes) -> bytes:
        """Run ``op``; raise a ``NetbatError`` to answer with its ERR frame."""
        ...


class InlineDispatcher(Dispatcher, Protocol):
    """A ``Dispatcher`` that names the ops the server may call on its event loop."""

    def inline(self, op: str) -> bool:
        """True when ``op`` is cheap and never blocks (it then runs on the event loop, where
        a slow call would stall every connection); False sends it to a worker thread."""
        ...


class SubscriptionFeed(Protocol):
    """One open subscription's supply of events and watermarks."""

    def poll(self, timeout: float) -> SourceItem | None:
        """Return the next item, or None when nothing arrived within ``timeout`` seconds."""
        ...

    def check_ack_cursor(self, cursor: bytes) -> None:
        """Raise ``SubscriptionFault`` when an ACK cursor is undecodable or foreign."""
        ...

    def close(self) -> None:
        """Release the feed; called once when the session ends for any reason."""
        ...


class SubscriptionSource(Protocol):
    """Opens subscription feeds from SUBSCRIBE frames."""

    def open(
        self, subscription_id: str, resume_cursor: bytes | None, client_window: int
    ) -> SubscriptionFeed:
        """Open a feed, or raise ``SubscriptionFault`` (unknown id, bad or foreign cursor)."""
        ...


def dispatch_request(dispatcher: Dispatcher, request: Request, limits: Limits) -> bytes:
    """Re-check ``request`` against ``limits``, call the dispatcher, and bound the output.

    ``OutputTooLarge`` is raised after the dispatcher ran, so its side effects stay.
    """
    validate_operation_name(request.operation.encode("utf-8"), limits)
    if len(request.input) > limits.max_input_bytes:
        raise InputTooLarge(limits.max_input_bytes)
    try:
        output = dispatcher.call(request.operation, request.input)
    except NetbatError:
        raise
    except BaseException as error:  # contained: one bad handler must not take the server down
        # (SystemExit and KeyboardInterrupt included: in a worker thread they are a handler
        # bug, like a Rust panic under catch_unwind, not a signal to stop the listener)
        raise HandlerFailed(
            request.operation, "failed", f"unexpected {type(error).__name__}"
        ) from error
    if not isinstance(output, bytes | bytearray | memoryview):
        raise HandlerFailed(request.operation, "failed", "output is not bytes")
    output = bytes(output)
    if len(output) > limits.max_output_bytes:
        raise OutputTooLarge(limits.max_output_bytes)
    return output
