"""Operation errors: every op failure is a syncbat handler error of one of two classes.

    OpError          base; ``error_class`` is the handler class carried in the ERR message
    ├── InvalidInput  a bad request: decode, hex, coordinate, kind, limit (``invalid_input``)
    └── OpFailed      the store refused or broke while serving a valid request (``failed``)

A NETBAT front end renders either as ``ERR handler`` with the message
``runtime error: handler for operation `<op>` failed with <class>: <message>`` (netbat.md §1.4).
"""

from __future__ import annotations

from typing import ClassVar


class OpError(Exception):
    """Base of the operation errors; ``str()`` is the handler message."""

    error_class: ClassVar[str] = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(OpError):
    """Raised when a request cannot be decoded or breaks a validation rule of netbat.md §4."""

    error_class = "invalid_input"


class OpFailed(OpError):
    """Raised when the store fails a valid request (append, read, evidence build)."""

    error_class = "failed"


class ViewError(Exception):
    """Raised by a ``StoreView`` when the underlying store refuses or fails a call."""
