"""`cmokg map matrix|network --out FILE.svg|FILE.png`: the evidence maps as files.

The drawing is the one the web app serves at /maps/matrix.svg and /maps/network.svg (graph/maps.py); the
file's suffix picks SVG (written as text) or PNG (painted by matplotlib's Agg canvas). Links in the SVG are
the IRIs of the CMOCs, which dereference at the web app's /id/... pages.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from .maps import MAPS, to_png, to_svg

Command = Callable[[str, str], argparse.ArgumentParser]
WRITERS = {".svg", ".png"}


def cmd_map(args: argparse.Namespace) -> int:
    from .cli import OK, UsageError, _open, out, output_path, write_atomically

    suffix = Path(args.out).suffix.lower()
    if suffix not in WRITERS:
        raise UsageError(f"--out {args.out}: the file name must end in .svg or .png (it picks the format)")
    path = output_path("--out", args.out)
    scene = MAPS[args.map](_open(args, read_only=True))
    data = to_svg(scene).encode("utf-8") if suffix == ".svg" else to_png(scene)
    write_atomically("--out", path, lambda fh: fh.write(data))
    if suffix == ".png":  # painted at 2 pixels per scene unit: the size is the image's own (its IHDR chunk)
        size = f"{int.from_bytes(data[16:20], 'big')}x{int.from_bytes(data[20:24], 'big')} pixels"
    else:
        size = f"{round(scene.width)}x{round(scene.height)}"
    out.print(f"wrote {path} ({args.map}, {size})", markup=False)
    return OK


def register(command: Command) -> None:
    p = command("map", "draw an evidence map (dimension x setting matrix, or CMOC network) as SVG or PNG")
    p.add_argument("map", choices=tuple(MAPS), help="matrix: CMOCs per framework dimension and setting, shaded by "
                   "evidence strength; network: context -> mechanism -> outcome per CMOC and leadsTo chains")
    p.add_argument("--out", required=True, metavar="FILE.svg|FILE.png", help="output file; its suffix picks the format")
    p.set_defaults(func=cmd_map)
