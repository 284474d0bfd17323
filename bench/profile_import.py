"""Where an import's time goes: phase timings of one synthetic workbook, and a cProfile of a whole build.

Not a test. Generates (once) a synthetic evidence base with bench/generate.py, builds it, then times each
phase of importing one more (new) workbook of 100 CMOCs against the built store (read, convert,
provenance, neighbourhood, SHACL, checks against the graph, write), so a change to the import
path can be judged phase by phase.

    .venv/bin/python bench/profile_import.py --cmocs 1000 --out var/bench/profile [--engine pyshacl] [--cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pyoxigraph as ox

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate import generate, write_workbook  # noqa: E402

from graph.importer import add_provenance, convert  # noqa: E402
from graph.pipeline import build  # noqa: E402
from graph.store import EvidenceStore  # noqa: E402
from graph.validate import (  # noqa: E402
    _focus,
    _load_neighbourhood,
    compiled_shapes,
    concepts_for,
    graph_findings,
    shacl_results,
    shapes_version,
)
from graph.workbook import read_workbook  # noqa: E402

T = TypeVar("T")


class Timer:
    """Accumulated wall time per phase name."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        value = fn()
        self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start
        return value


def one_import(timed: Timer, store: EvidenceStore, scratch: EvidenceStore, workbook: Path, engine: str,
               graph: str) -> None:
    """The phases of importing `workbook`, validated against `store`, written into `scratch`."""
    wb = timed("read", lambda: read_workbook([workbook]))
    concepts = timed("concept index", lambda: concepts_for(store))
    ext = timed("convert", lambda: convert(wb, concepts))
    timed("provenance", lambda: add_provenance(ext, wb, "bench", shapes_version(), dt.datetime.now(dt.UTC)))
    if engine == "sparql":
        mem = timed("neighbourhood", lambda: _load_neighbourhood(ext, store, []))
        timed("shacl", lambda: compiled_shapes().run(mem, _focus(ext)))
    else:
        timed("shacl", lambda: shacl_results(ext, store, [], "pyshacl"))
    timed("graph checks", lambda: graph_findings(ext, store, [], []))
    timed("write", lambda: scratch.ox.load(ext.nt(), ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph)))


def phases(store: EvidenceStore, workbook: Path, engine: str, repeats: int = 5) -> dict[str, float]:
    """Mean milliseconds per phase of validating and writing `workbook` (into a scratch store)."""
    timed = Timer()
    scratch = EvidenceStore(workbook.parent.parent / "scratch-store")
    for i in range(repeats):
        one_import(timed, store, scratch, workbook, engine, f"urn:bench:g{i}")
    return {k: v / repeats * 1000 for k, v in timed.totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cmocs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "profile")
    parser.add_argument("--engine", choices=("sparql", "pyshacl"), default="sparql")
    parser.add_argument("--cprofile", action="store_true", help="also print the top of a cProfile of the build")
    args = parser.parse_args()
    if not (args.out / "workbooks").is_dir():
        generate(args.out, args.cmocs)
    store_path = args.out / "store"
    shutil.rmtree(store_path, ignore_errors=True)
    profile = cProfile.Profile() if args.cprofile else None
    start = time.perf_counter()
    if profile:
        profile.enable()
    results = build(store_path, args.out, reviewer="bench", engine=args.engine)
    if profile:
        profile.disable()
    elapsed = time.perf_counter() - start
    store = EvidenceStore(store_path)
    triples = store.quad_count()
    print(f"build: {triples} triples in {elapsed:.1f} s = {triples / elapsed:,.0f} triples/s "
          f"({sum(r.imported for r in results)}/{len(results)} workbooks imported)")
    workbook = args.out / "extra"  # a workbook the store does not hold yet
    write_workbook(workbook, 99999, 100, random.Random(3), prefix="extra")
    for name, ms in phases(store, workbook, args.engine).items():
        print(f"  {name:>14}: {ms:8.1f} ms")
    shutil.rmtree(args.out / "scratch-store", ignore_errors=True)
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
