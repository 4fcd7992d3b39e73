"""Who may see a block revision (spec section 3). Invisible answers exactly like missing."""

from __future__ import annotations

from batenbase.model import Caller


def by_scope(caller: Caller, v: int, writer: str) -> bool:
    """The v rule alone (h ignored): admins see all; v=0 only its writer; v=1 everyone;
    v>=2 observers whose token carries scope v."""
    if caller.role == "admin":
        return True
    if v == 0:
        return writer == caller.observer
    return v == 1 or v in caller.scopes


def visible(caller: Caller, v: int, h: int, writer: str, *, include_redacted: bool = False) -> bool:
    """The full rule: h=1 hides from everyone but an admin asking with include_redacted."""
    if h == 1:
        return caller.role == "admin" and include_redacted
    return by_scope(caller, v, writer)
