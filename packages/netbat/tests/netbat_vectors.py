"""Golden NETBAT vectors for the tests.

They load from the shared tree beside the checkout (``<repo>/../shared/vectors/netbat``) when it
exists, else from the committed copy in ``<repo>/conformance/vectors/netbat``.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = REPO_ROOT.parent / "shared" / "vectors" / "netbat"
COMMITTED = REPO_ROOT / "conformance" / "vectors" / "netbat"


def netbat_dir() -> Path:
    """Return the directory the NETBAT goldens load from."""
    return SHARED if SHARED.is_dir() else COMMITTED


def load(name: str) -> bytes:
    """Return the frame bytes of golden ``name`` (file stem, e.g. ``request_call_v1``)."""
    text = (netbat_dir() / f"{name}.hex").read_text(encoding="ascii")
    return bytes.fromhex(text.strip())


def names() -> list[str]:
    """Return every golden's stem, sorted."""
    return sorted(path.stem for path in netbat_dir().glob("*.hex"))
