"""Content identities: 32-byte BLAKE3 digests over canonical views.

Every hostbat digest is ``blake3(to_vec_named(view))`` with no key. The view is a ``dict``
built field by field in Rust declaration order; its first field is the domain string.
"""

from __future__ import annotations

from typing import Final

from batpak import canonical
from hostbat.errors import CanonicalEncodingFailed

DIGEST_LEN: Final = 32


class Digest(bytes):
    """A 32-byte BLAKE3 digest; ``.hex()`` gives the lowercase rendering."""

    __slots__ = ()

    def __new__(cls, raw: bytes) -> Digest:
        if len(raw) != DIGEST_LEN:
            raise ValueError(f"{cls.__name__} needs {DIGEST_LEN} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    def wire(self) -> list[int]:
        """The int-array form rmp writes for ``[u8; 32]``."""
        return canonical.byte_array(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hex()})"

    def __str__(self) -> str:
        return self.hex()


class ModuleDigest(Digest):
    """``H_module``: the digest of one sealed module manifest."""

    __slots__ = ()


class HostFingerprint(Digest):
    """``H_host`` (and the composition digest): a digest over a host composition."""

    __slots__ = ()


class InterfaceFingerprint(Digest):
    """``H_interface``: the digest of the contract clients see."""

    __slots__ = ()


class CanonicalEncoding(Digest):
    """A schema's content hash over its identity and golden vectors."""

    __slots__ = ()


def canonical_bytes(view: object) -> bytes:
    """Return the canonical MessagePack bytes of ``view``."""
    try:
        return canonical.encode(view)
    except canonical.CanonicalEncodeError as exc:
        raise CanonicalEncodingFailed(str(exc)) from exc


def canonical_digest(view: object) -> bytes:
    """Return ``blake3(canonical(view))``."""
    return canonical.digest(canonical_bytes(view))
