"""BatenBase errors: one small tree, each carrying its wire code and HTTP status.

BatenBaseError
 +-- BadRequest          400 bad input (key, data, kind, limit, cursor, since ...)
 +-- Unauthorized        401 no token, unknown token or revoked token
 +-- Forbidden           403 the caller's role or scopes refuse the operation
 +-- NotFound            404 missing, or invisible to the caller (never distinguished)
 +-- PreconditionFailed  409 if_match / if_none_match does not hold
 +-- TooLarge            413 data or details exceed the size limit
 +-- QuotaExceeded       429 the tenant's plan has no room for another live block
"""

from __future__ import annotations


class BatenBaseError(Exception):
    """Base of every error the BatenBase core raises; ``code`` and ``status`` go on the wire."""

    code: str = "internal"
    status: int = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, object]:
        """The spec's error body: ``{"ok": false, "error": {"code", "message"}}``."""
        return {"ok": False, "error": {"code": self.code, "message": self.message}}


class BadRequest(BatenBaseError):
    """Raised when an input is malformed or out of range."""

    code = "bad_request"
    status = 400


class Unauthorized(BatenBaseError):
    """Raised when the bearer token is missing, unknown or revoked."""

    code = "unauthorized"
    status = 401


class Forbidden(BatenBaseError):
    """Raised when the caller's role or scopes do not allow the operation."""

    code = "forbidden"
    status = 403


class NotFound(BatenBaseError):
    """Raised when a block, tenant or token is missing or invisible to the caller."""

    code = "not_found"
    status = 404


class PreconditionFailed(BatenBaseError):
    """Raised when ``if_match`` or ``if_none_match`` does not hold."""

    code = "precondition_failed"
    status = 409


class TooLarge(BatenBaseError):
    """Raised when data or event details exceed their size limit."""

    code = "too_large"
    status = 413


class QuotaExceeded(BatenBaseError):
    """Raised when a write would take the tenant past its plan's live-block quota."""

    code = "quota_exceeded"
    status = 429
