"""`cmokg build`: the graph staged in memory and bulk-loaded must equal the graph imported batch by batch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyoxigraph as ox
import pytest

from graph.pipeline import DATA_DIR, _Writer, build, import_workbook, load_schema, workbooks_in
from graph.store import EvidenceStore, StoreError

FIXTURES = Path(__file__).parent / "fixtures" / "workbooks"


PROV = "http://www.w3.org/ns/prov#"
TIMES = {ox.NamedNode(PROV + t) for t in ("generatedAtTime", "startedAtTime", "endedAtTime")}


def quads(path: Path) -> set[ox.Quad]:
    store = ox.Store.read_only(str(path))
    try:
        return set(store)
    finally:
        del store


def comparable(found: set[ox.Quad]) -> tuple[set[ox.Quad], set[tuple[str, str, str]], list[tuple[str, ...]]]:
    """The quads without blank nodes and times; the (subject, predicate, graph) of the times; the quads with
    blank nodes (the ontology's axioms), their labels blanked, as a sorted list."""
    def blank(t: object) -> str:
        return "_:b" if isinstance(t, ox.BlankNode) else str(t)

    plain = {q for q in found if q.predicate not in TIMES
             and not isinstance(q.subject, ox.BlankNode) and not isinstance(q.object, ox.BlankNode)}
    times = {(str(q.subject), str(q.predicate), str(q.graph_name)) for q in found if q.predicate in TIMES}
    blanks = sorted(tuple(blank(t) for t in q) for q in found
                    if isinstance(q.subject, ox.BlankNode) or isinstance(q.object, ox.BlankNode))
    return plain, times, blanks


def test_build_equals_workbook_by_workbook_imports(seed_store_path: Path, tmp_path: Path) -> None:
    """The staged build writes the quads that importing each workbook into an on-disk store writes (up to the
    clock in the batches' times and the labels of blank nodes)."""
    one_by_one = EvidenceStore(tmp_path / "store")
    load_schema(one_by_one)
    for paths in workbooks_in(DATA_DIR):
        assert import_workbook(one_by_one, paths, "cmokg build").imported, paths
    expected = set(one_by_one.ox)
    del one_by_one
    built = quads(seed_store_path)
    assert len(built) == len(expected)
    plain, times, blanks = comparable(built)
    assert plain and times and blanks
    assert (plain, times, blanks) == comparable(expected)


def test_a_revision_within_the_build_replaces_the_earlier_batch(tmp_path: Path) -> None:
    """The folder `good` and the workbook `good.xlsx` share a workbook id: the second supersedes the first. The
    writer thread drops the superseded graph as the staged store did (the build equals importing one by one)."""
    data = tmp_path / "data" / "workbooks"
    shutil.copytree(FIXTURES / "good", data / "good")
    shutil.copy(FIXTURES / "good.xlsx", data / "good.xlsx")
    one_by_one = EvidenceStore(tmp_path / "one-by-one")
    load_schema(one_by_one)
    for paths in workbooks_in(tmp_path / "data"):
        assert import_workbook(one_by_one, paths, "cmokg build").imported, paths
    expected = set(one_by_one.ox)
    del one_by_one
    results = build(tmp_path / "store", tmp_path / "data")
    assert [(r.imported, r.replaced) for r in results] == [(True, False), (True, True)]
    built = quads(tmp_path / "store")
    assert len(built) == len(expected)
    assert comparable(built) == comparable(expected)


def test_a_failed_write_stops_the_writer_and_names_the_store(tmp_path: Path) -> None:
    """An error in the writer thread (here a chunk it cannot parse) reaches the staging thread as a StoreError
    at its next hand-over, and the writer stops without blocking however much is handed to it."""
    writer = _Writer(tmp_path / "building")
    writer.add_quads(b"<urn:s> <urn:p> .\n")  # no object
    with pytest.raises(StoreError, match="building"):
        for i in range(100):  # more than the queue holds
            writer.add_quads(b"<urn:s> <urn:p> <urn:o%d> .\n" % i)
    writer.abandon()
    assert not writer._thread.is_alive()


@pytest.mark.parametrize("bad", ["unknown-source-id", "binary-csv"], ids=["violation", "unreadable"])
def test_refused_workbook_writes_nothing_and_keeps_the_previous_store(tmp_path: Path, bad: str) -> None:
    """A refused workbook (a violation, or a workbook that cannot be read) stops the build where it is: the
    workbook after it, already being read ahead, is not validated, and nothing is written."""
    data = tmp_path / "data" / "workbooks"
    shutil.copytree(FIXTURES / "good", data / "01-good")
    store_path = tmp_path / "var" / "store"  # its parent does not exist yet
    timings: dict[str, float] = {}
    assert all(r.imported for r in build(store_path, tmp_path / "data", timings=timings))
    assert sorted(timings) == ["stage_s", "tail_s", "write_s"] and min(timings.values()) > 0
    before = quads(store_path)
    assert before
    shutil.copytree(FIXTURES / "bad" / bad, data / "02-bad")
    shutil.copy(FIXTURES / "good.xlsx", data / "03-good.xlsx")
    timings = {}
    results = build(store_path, tmp_path / "data", timings=timings)
    assert [r.imported for r in results] == [True, False]
    assert results[1].report.unreadable == (bad == "binary-csv")
    assert timings == {}  # nothing was written
    assert quads(store_path) == before
    assert sorted(p.name for p in store_path.parent.iterdir()) == ["store"]
