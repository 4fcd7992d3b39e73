"""``batpak inspect``: what a store holds, from its files and its index."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from batpak import (
    Region,
)
from batpak.cli._common import EXIT_OK, open_store, segment_infos, write_json

# -- inspect ----------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace) -> int:
    out = sys.stdout
    with open_store(args.dir, writable=False) as store:
        entries = store.query(Region.all())
        frontier = store.frontier()
        identity = store.identity()
        segments = segment_infos(Path(args.dir))
    kinds: dict[int, int] = {}
    for entry in entries:
        kinds[entry.event_kind] = kinds.get(entry.event_kind, 0) + 1
    report: dict[str, Any] = {
        "path": str(Path(args.dir).resolve()),
        "identity": None if identity is None else f"{identity:032x}",
        "segments": [info.as_json() for info in segments],
        "events": len(entries),
        "first_global_sequence": entries[0].global_sequence if entries else None,
        "last_global_sequence": entries[-1].global_sequence if entries else None,
        "frontier": {
            mark: {"wall_ms": point.wall_ms, "global_sequence": point.global_sequence}
            for mark, point in frontier._asdict().items()
        },
        "kinds": {f"0x{kind:04X}": count for kind, count in sorted(kinds.items())},
        "entities": len({entry.entity for entry in entries}),
        "scopes": len({entry.scope for entry in entries}),
    }
    if args.json:
        write_json(out, report, indent=2)
        return EXIT_OK
    lines = [
        f"store        {report['path']}",
        f"identity     {report['identity'] or 'none'}",
        f"segments     {len(segments)}",
    ]
    width = max((len(str(info.size)) for info in segments), default=1)
    for info in segments:
        state = f"sealed ({info.footer})" if info.sealed else "open (no footer)"
        if info.torn_bytes:
            state += f", {info.torn_bytes} torn bytes at offset {info.frames_end}"
        lines.append(f"  {info.name}  id {info.segment_id:<4} {info.size:>{width}} bytes  {state}")
    first, last = report["first_global_sequence"], report["last_global_sequence"]
    lines.append(f"events       {len(entries)}")
    lines.append(f"sequences    {'none' if first is None else f'{first} .. {last}'}")
    lines.append("frontier     (wall_ms, global_sequence)")
    for mark, point in frontier._asdict().items():
        lines.append(f"  {mark:<10} ({point.wall_ms}, {point.global_sequence})")
    lines.append(f"kinds        {len(kinds)}")
    for kind_hex, count in report["kinds"].items():
        lines.append(f"  {kind_hex}     {count}")
    lines.append(f"entities     {report['entities']}")
    lines.append(f"scopes       {report['scopes']}")
    out.write("\n".join(lines) + "\n")
    return EXIT_OK
