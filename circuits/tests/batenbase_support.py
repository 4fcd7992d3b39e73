"""What the BatenBase core tests share: a settable clock and token-holding callers."""

from __future__ import annotations

from batenbase.model import Caller, Role
from batenbase.service import BatenBase

T0 = 1737900000.0


class Clock:
    """A settable fake clock (Unix seconds)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def caller(
    bb: BatenBase, observer: str, role: Role = "writer", scopes: tuple[int, ...] = ()
) -> Caller:
    return bb.authenticate(bb.issue_token("acme", observer, role, scopes).token)
