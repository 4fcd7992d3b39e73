"""Structure-aware mutation: byte edits of valid seeds, token edits of lines, CRC repair.

A random byte string rarely gets past a magic number or a CRC, so most fuzz inputs start from
a valid seed and change a little of it. ``fix_side_file`` and ``fix_segment`` then recompute
the CRCs, so the mutation reaches the decoders behind them instead of the checksum check.
"""

from __future__ import annotations

import struct
import zlib

import msgpack  # type: ignore[import-untyped]
from hypothesis import strategies as st

_FRAME_HEAD = struct.Struct(">II")
_TRAILER = struct.Struct("<QI4s")
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xC0, 0xC1, 0xC4, 0xCC, 0xCF, 0xD9, 0xDC, 0xDE, 0xFF)
# Tokens worth trying in a NETBAT field: limits, sign and digit edge cases, every verb.
TOKENS = (
    b"",
    b"-",
    b"0",
    b"+1",
    b"01",
    b"-1",
    b"1_0",
    b"18446744073709551616",
    b"4294967296",
    b"9" * 25,
    b"0" * 30 + b"7",
    b"7" * 5000,
    b"ab",
    b"AB",
    b"abc",
    b"zz",
    b"NETBAT/1",
    b"NETBAT/2",
    b"NETBAT/",
    b"CALL",
    b"SUBSCRIBE",
    b"SUB_EVENT",
    b"SUB_WATERMARK",
    b"SUB_ACK",
    b"SUB_CANCEL",
    b"SUB_ERR",
    b"SUB_END",
    b"OK",
    b"ERR",
    b"orders.open.v1",
    b"a.v0",
    b"x" * 129,
    b"ping..name",
    b"\xff\xfe",
    b"\xc3\xa9",
    b"\t",
    b"\r",
    b"00" * 4097,
)


def fix_side_file(data: bytes) -> bytes:
    """Recompute the 12-byte prefix's CRC32 (LE) over the body, when there is a prefix."""
    if len(data) < 12:
        return data
    return data[:8] + struct.pack("<I", zlib.crc32(data[12:])) + data[12:]


def fix_segment(data: bytes) -> bytes:
    """Recompute each frame's CRC (walking the declared lengths) and an SDX3 footer's CRC."""
    out = bytearray(data)
    if len(out) < 8 or out[:4] != b"FBAT":
        return data
    pos = 8 + int.from_bytes(out[4:8], "big")
    while pos + 8 <= len(out):
        length = int.from_bytes(out[pos : pos + 4], "big")
        if length == 0 or pos + 8 + length > len(out):
            break
        out[pos + 4 : pos + 8] = zlib.crc32(out[pos + 8 : pos + 8 + length]).to_bytes(4, "big")
        pos += 8 + length
    if len(out) >= pos + _TRAILER.size + 4:
        offset, _, magic = _TRAILER.unpack_from(out, len(out) - _TRAILER.size)
        crc_at = len(out) - _TRAILER.size - 4
        if magic == b"SDX3" and pos <= offset <= crc_at:
            out[crc_at : crc_at + 4] = struct.pack("<I", zlib.crc32(out[offset:crc_at]))
    return bytes(out)


# -- byte edits -------------------------------------------------------------------------------

Edit = tuple[int, int, bytes]  # (operation, position, operand)


def apply_edits(data: bytes, edits: list[Edit], other: bytes = b"") -> bytes:
    """Apply byte-level edits; positions wrap, so every edit lands somewhere."""
    buf = bytearray(data)
    for op, at, operand in edits:
        pos = at % (len(buf) + 1)
        if op == 0 and buf:  # flip bits of one byte
            buf[pos % len(buf)] ^= operand[0] if operand else 0x01
        elif op == 1 and buf:  # set one byte to an interesting value
            buf[pos % len(buf)] = INTERESTING[(operand[0] if operand else 0) % len(INTERESTING)]
        elif op == 2:  # truncate
            del buf[pos:]
        elif op == 3:  # delete a short range
            del buf[pos : pos + 1 + (operand[0] if operand else 0) % 16]
        elif op == 4:  # insert bytes
            buf[pos:pos] = operand
        elif op == 5:  # duplicate a range
            buf[pos:pos] = buf[pos : pos + 1 + (operand[0] if operand else 0) % 64]
        elif op == 6 and other:  # splice in the tail of another seed
            buf[pos:] = other[at % len(other) :]
        elif op == 7 and len(buf) >= 4:  # overwrite a big-endian u32 (lengths, offsets)
            value = int.from_bytes(operand[:4].ljust(4, b"\x00"), "big")
            buf[pos % (len(buf) - 3) : pos % (len(buf) - 3) + 4] = value.to_bytes(4, "big")
    return bytes(buf)


_edit = st.tuples(st.integers(0, 7), st.integers(0, 1 << 20), st.binary(min_size=0, max_size=8))


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...], max_edits: int = 4) -> bytes:
    """A seed with a few byte edits (possibly none, possibly spliced with another seed)."""
    seed = draw(st.sampled_from(seeds))
    other = draw(st.sampled_from(seeds))
    edits = draw(st.lists(_edit, max_size=max_edits))
    return apply_edits(seed, edits, other)


# -- token edits of NETBAT lines ---------------------------------------------------------------


def apply_token_edits(line: bytes, edits: list[tuple[int, int, int]], ending: bytes) -> bytes:
    """Replace, drop or duplicate space-separated tokens; then end the line with ``ending``."""
    body = line[:-1] if line.endswith(b"\n") else line
    tokens = body.split(b" ")
    for op, at, choice in edits:
        pos = at % len(tokens) if tokens else 0
        if op == 0 and tokens:
            tokens[pos] = TOKENS[choice % len(TOKENS)]
        elif op == 1 and len(tokens) > 1:
            del tokens[pos]
        elif op == 2 and tokens:
            tokens.insert(pos, tokens[pos])
        elif op == 3:
            tokens.insert(pos, TOKENS[choice % len(TOKENS)])
        elif op == 4 and tokens:
            tokens[pos] = tokens[pos].upper() if choice % 2 else tokens[pos].lower()
    return b" ".join(tokens) + ending


_token_edit = st.tuples(st.integers(0, 4), st.integers(0, 64), st.integers(0, len(TOKENS) - 1))
ENDINGS = (b"\n", b"\r\n", b"\r", b"", b"\n\n", b"\r\r\n")


@st.composite
def mutated_line(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A golden line with token edits, a chosen line ending and maybe a few byte edits."""
    line = draw(st.sampled_from(seeds))
    edits = draw(st.lists(_token_edit, max_size=3))
    out = apply_token_edits(line, edits, draw(st.sampled_from(ENDINGS)))
    return apply_edits(out, draw(st.lists(_edit, max_size=1)))


def align_cols(data: bytes, sizes: list[tuple[int, int]]) -> bytes:
    """Point an ``index.cols`` image at the segments present (their ids and sizes) and repair
    its CRC, so a mutated checkpoint is trusted by open rather than ignored as stale."""
    if len(data) < 20:
        return data
    body = data[12:]
    size = int.from_bytes(body[:8], "little")
    try:
        header = msgpack.unpackb(body[8 : 8 + size], strict_map_key=False)
    except Exception:  # any undecodable header stays as it is: the open must refuse it
        return data
    if not isinstance(header, dict):
        return data
    header["segments"] = [list(pair) for pair in sizes]
    packed = msgpack.packb(header, use_bin_type=True)
    return fix_side_file(data[:12] + len(packed).to_bytes(8, "little") + packed + body[8 + size :])
