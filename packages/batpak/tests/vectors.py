"""Golden-vector loading for the tests.

Vectors come from the shared tree beside the checkout (``<repo>/../shared/vectors``) when it
exists, else from the committed copy in ``<repo>/conformance/vectors``.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_VECTORS = REPO_ROOT.parent / "shared" / "vectors"
COMMITTED_VECTORS = REPO_ROOT / "conformance" / "vectors"


def vectors_dir() -> Path:
    """Return the directory vectors are loaded from: shared if present, else committed."""
    return SHARED_VECTORS if SHARED_VECTORS.is_dir() else COMMITTED_VECTORS


def load_vector(rel: str) -> bytes:
    """Return the bytes of the hex vector at ``rel`` (e.g. ``core/golden/coordinate_v1.hex``)."""
    return bytes.fromhex((vectors_dir() / rel).read_text(encoding="ascii").rstrip())
