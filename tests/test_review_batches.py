"""Batches: provenance, supersede by workbook id, retract exactly one batch, atomic writes, validation against
the graph (keys and duplicate CMOCs already there) with a cost that follows the workbook."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Literal, URIRef
from rdflib.namespace import PROV, RDFS

from graph.batches import batches_of_workbook, commit, dependants, resolve_batch, retract, workbook_iri
from graph.namespaces import CMO, ID, OA
from graph.pipeline import import_workbook
from graph.store import EvidenceStore
from graph.validate import shapes_version, validate_workbook

FIXTURES = Path(__file__).parent / "fixtures" / "workbooks"
GOOD = FIXTURES / "good"
CMOKG = str(Path(sys.executable).with_name("cmokg"))
EVIDENCE_HEADER = "evidence_id,cmoc_id,source_id,quote,page,section,relation,interpretive_level,relevance,rigour\n"


def copy_good(tmp_path: Path, name: str = "extraction") -> Path:
    folder = tmp_path / name
    shutil.copytree(GOOD, folder)
    return folder


def edit(folder: Path, sheet: str, old: str, new: str) -> None:
    path = folder / f"{sheet}.csv"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def later_workbook(tmp_path: Path, name: str, evidence_rows: str) -> Path:
    """A workbook of evidence only, referring to sources and CMOCs already in the graph."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "sources.csv").write_text((GOOD / "sources.csv").read_text().splitlines()[0] + "\n")
    (folder / "cmocs.csv").write_text((GOOD / "cmocs.csv").read_text().splitlines()[0] + "\n")
    (folder / "evidence.csv").write_text(EVIDENCE_HEADER + evidence_rows)
    return folder


def graph_quads(store: EvidenceStore, batch: str) -> set[ox.Quad]:
    return set(store.ox.quads_for_pattern(None, None, None, ox.NamedNode(batch)))


def located(findings) -> set[tuple[str, str | None, int | None, str | None]]:
    return {(f.severity, f.sheet, f.row, f.column) for f in findings}


def test_batch_records_full_provenance(schema_store: EvidenceStore, tmp_path: Path) -> None:
    folder = copy_good(tmp_path)
    result = import_workbook(schema_store, [folder], reviewer="Ada Reviewer")
    assert result.imported and result.workbook_id == "extraction"
    b = result.batch
    assert b is not None
    rows = schema_store.select(f"""SELECT ?who ?time ?file ?sha ?shapes ?sw ?wb WHERE {{ GRAPH <{b}> {{
        <{b}> prov:wasAttributedTo ?a ; prov:generatedAtTime ?time ; cmo:sourceFileName ?file ; cmo:sha256 ?sha ;
              cmo:shapesVersion ?shapes ; cmo:softwareVersion ?sw ; prov:specializationOf ?wb .
        ?a rdfs:label ?who }} }}""")
    assert len(rows) == 1
    r = rows[0]
    assert r["who"].value == "Ada Reviewer"  # type: ignore[union-attr]
    assert r["file"].value == "cmocs.csv;evidence.csv;sources.csv"  # type: ignore[union-attr]
    assert len(r["sha"].value) == 64 and b.endswith(r["sha"].value[:16])  # type: ignore[union-attr]
    assert r["shapes"].value == shapes_version() == "0.2.0"  # type: ignore[union-attr]
    assert r["wb"].value == str(workbook_iri("extraction"))  # type: ignore[union-attr]
    assert r["time"].datatype.value.endswith("dateTime")  # type: ignore[union-attr]
    assert [x.iri for x in schema_store.batches()] == [b]


def test_corrected_workbook_supersedes_instead_of_duplicating(schema_store: EvidenceStore, tmp_path: Path) -> None:
    folder = copy_good(tmp_path)
    first = import_workbook(schema_store, [folder], reviewer="r")
    assert first.imported and first.batch
    edit(folder, "evidence", "Training made conversations feel natural.", "Training made talking feel natural.")
    second = import_workbook(schema_store, [folder], reviewer="r")
    assert second.imported, second.report.to_json()
    assert second.batch != first.batch
    assert second.superseded == [first.batch] and second.replaced
    assert not schema_store.has_graph(first.batch)
    assert batches_of_workbook(schema_store, "extraction") == [second.batch]
    assert ox.Quad(ox.NamedNode(second.batch), ox.NamedNode(str(PROV.wasRevisionOf)), ox.NamedNode(first.batch),
            ox.NamedNode(second.batch)) in schema_store.ox
    # one quote, the corrected one
    quotes = {r["q"].value for r in schema_store.select(  # type: ignore[union-attr]
        f"SELECT ?q WHERE {{ <{ID['evidence/fx-e1/quote']}> oa:exact ?q }}")}
    assert quotes == {"Training made talking feel natural."}
    assert len(schema_store.batches()) == 1


def test_same_keys_under_another_name_are_reported_not_duplicated(schema_store: EvidenceStore,
                                                                   tmp_path: Path) -> None:
    assert import_workbook(schema_store, [copy_good(tmp_path, "one")], reviewer="r").imported
    before = schema_store.quads()
    two = copy_good(tmp_path, "two")
    edit(two, "evidence", "Training made", "Coaching made")  # a different file, not the same one again
    result = import_workbook(schema_store, [two], reviewer="r")
    assert not result.imported
    # the rows restated word for word are fine; the one that says something else about fx-e1 is not
    assert located(result.report.findings) == {("Violation", "evidence", 2, "evidence_id")}
    [finding] = result.report.findings
    assert finding.focus_node == str(ID["evidence/fx-e1"]) and finding.value == "fx-e1"
    assert schema_store.quads() == before


def test_identical_restatement_under_another_name_conforms(schema_store: EvidenceStore) -> None:
    """The same extraction as CSV and as .xlsx: the .xlsx adds no second description of anything."""
    assert import_workbook(schema_store, [GOOD], reviewer="r").imported
    validated = validate_workbook([FIXTURES / "good.xlsx"], schema_store, reviewer="r")
    assert validated.report.conforms and validated.report.findings == []


def test_duplicate_of_an_existing_cmoc_same_source_and_label(schema_store: EvidenceStore, tmp_path: Path) -> None:
    assert import_workbook(schema_store, [GOOD], reviewer="r").imported
    before = schema_store.quads()
    folder = tmp_path / "dup"
    folder.mkdir()
    (folder / "sources.csv").write_text((GOOD / "sources.csv").read_text().splitlines()[0] + "\n")
    header = (GOOD / "cmocs.csv").read_text().splitlines()[0]
    (folder / "cmocs.csv").write_text(
        header + "\nnew-c1,fx-review,cmoc1,,A context,A resource,,An outcome,,,,,r,\n"
        "new-c2,fx-review,CMOC9,,A context,A resource,,An outcome,,,,,r,\n"
        "new-c3,fx-review,CMOC9,,Another,A resource,,An outcome,,,,,r,\n")
    (folder / "evidence.csv").write_text(EVIDENCE_HEADER + "new-e1,new-c1,fx-review,q,,,supports,,,\n"
                                         "new-e2,new-c2,fx-review,q,,,supports,,,\n"
                                         "new-e3,new-c3,fx-review,q,,,supports,,,\n")
    result = import_workbook(schema_store, [folder], reviewer="r")
    assert located(result.report.findings) == {("Violation", "cmocs", 2, "label"), ("Violation", "cmocs", 4, "label")}
    dup = next(f for f in result.report.findings if f.row == 2)
    assert dup.focus_node == str(ID["cmoc/new-c1"]) and dup.value == "cmoc1"
    assert schema_store.quads() == before


def test_retract_removes_one_batch_and_nothing_else(schema_store: EvidenceStore, tmp_path: Path) -> None:
    a = import_workbook(schema_store, [GOOD], reviewer="r")
    assert a.imported and a.batch
    after_a = schema_store.quads()
    later = later_workbook(tmp_path, "later", "fx-e9,fx-c1,fx-review,A later quote.,7,Results,supports,,,\n")
    b = import_workbook(schema_store, [later], reviewer="r")
    assert b.imported and b.batch
    # A is referenced by B: refused, nothing removed, the reference is reported
    refused = retract(schema_store, a.batch)
    assert refused.found and not refused.retracted
    assert {(d.batch, d.subject, d.predicate, d.target) for d in refused.dependants} == {
        (b.batch, str(ID["evidence/fx-e9"]), str(CMO.supports), str(ID["cmoc/fx-c1"])),
        (b.batch, str(ID["evidence/fx-e9/target"]), str(OA.hasSource), str(ID["source/fx-review"])),
    }
    assert schema_store.has_graph(a.batch)
    # B can go: the store is exactly as it was after A
    done = retract(schema_store, b.batch)
    assert done.retracted and done.removed_quads == b.triples
    assert schema_store.quads() == after_a
    assert retract(schema_store, a.batch).retracted
    assert not any(g.startswith(str(ID["batch/"])) for g in schema_store.named_graphs())
    assert not retract(schema_store, a.batch).found


def test_retract_force_reports_the_dangling_references(schema_store: EvidenceStore, tmp_path: Path) -> None:
    a = import_workbook(schema_store, [GOOD], reviewer="r")
    later = later_workbook(tmp_path, "later", "fx-e9,fx-c1,fx-review,A later quote.,7,Results,supports,,,\n")
    b = import_workbook(schema_store, [later], reviewer="r")
    assert a.batch and b.batch
    keep = graph_quads(schema_store, b.batch)
    forced = retract(schema_store, a.batch, force=True)
    assert forced.retracted and len(forced.dependants) == 2
    assert graph_quads(schema_store, b.batch) == keep


def test_revision_that_drops_a_referenced_key_is_refused(schema_store: EvidenceStore, tmp_path: Path) -> None:
    folder = copy_good(tmp_path)
    assert import_workbook(schema_store, [folder], reviewer="r").imported
    later = later_workbook(tmp_path, "later", "fx-e9,fx-c1,fx-review,A later quote.,7,Results,supports,,,\n")
    assert import_workbook(schema_store, [later], reviewer="r").imported
    before = schema_store.quads()
    # the corrected workbook renames fx-c1: the later batch would point at nothing
    for sheet in ("cmocs", "evidence"):
        edit(folder, sheet, "fx-c1,", "fx-c1b,")
    result = import_workbook(schema_store, [folder], reviewer="r")
    assert not result.imported
    assert ("Violation", "cmocs", None, "cmoc_id") in located(result.report.findings)
    assert any(f.value == str(ID["cmoc/fx-c1"]) for f in result.report.findings)
    assert schema_store.quads() == before


def test_reference_only_the_superseded_batch_defines_does_not_resolve(schema_store: EvidenceStore,
                                                                      tmp_path: Path) -> None:
    """Validation sees the graph as it will be: without the revision being replaced."""
    folder = copy_good(tmp_path)
    assert import_workbook(schema_store, [folder], reviewer="r").imported
    edit(folder, "cmocs", "fx-c2,fx-review", "fx-c3,fx-review")  # fx-c2 renamed; leads_to and evidence still say fx-c2
    result = import_workbook(schema_store, [folder], reviewer="r")
    assert ("Violation", "cmocs", 2, "leads_to") in located(result.report.findings)
    assert ("Violation", "evidence", 3, "cmoc_id") in located(result.report.findings)


def test_failed_write_leaves_the_store_as_it_was(schema_store: EvidenceStore, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copy_good(tmp_path)
    assert import_workbook(schema_store, [folder], reviewer="r").imported
    before = schema_store.quads()
    edit(folder, "evidence", "Training made", "Coaching made")

    def broken(sparql: str) -> None:
        # a malformed tail makes the one update fail after its DROP parts were parsed
        schema_store.ox.update(sparql + " INSERT DATA { <x:a> <x:b> ")

    monkeypatch.setattr(schema_store, "update", broken)
    with pytest.raises(SyntaxError):
        import_workbook(schema_store, [folder], reviewer="r")
    assert schema_store.quads() == before


def test_commit_supersede_is_one_transaction(schema_store: EvidenceStore) -> None:
    from rdflib import Graph

    old, new = str(ID["batch/old"]), str(ID["batch/new"])
    g = Graph()
    g.add((URIRef(old), RDFS.label, Literal("old")))
    commit(schema_store, old, g)
    h = Graph()
    h.add((URIRef(new), RDFS.label, Literal("new \" quoted \\ and\nnewline")))
    commit(schema_store, new, h, supersedes=[old])
    assert not schema_store.has_graph(old) and schema_store.has_graph(new)
    assert len(graph_quads(schema_store, new)) == 1


@pytest.mark.timeout(120)
def test_killed_import_leaves_the_store_before_or_after(tmp_path: Path) -> None:
    """Kill `cmokg import` at several moments: the store holds the old revision or the new, never a mix."""
    store_dir = tmp_path / "store"
    folder = copy_good(tmp_path)
    env = {**os.environ, "CMOKG_REVIEWER": "r"}
    from graph.pipeline import load_schema

    s = EvidenceStore(store_dir)
    load_schema(s)
    assert import_workbook(s, [folder], reviewer="r").imported
    s.flush()
    before = s.quads()
    old_batches = {b.iri for b in s.batches()}
    del s
    edit(folder, "evidence", "Training made", "Coaching made")
    outcomes = set()
    for delay in (0.3, 1.0, 1.6, 2.2):
        proc = subprocess.Popen([CMOKG, "import", "--store", str(store_dir), str(folder)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        s = EvidenceStore(store_dir)
        batches = {b.iri for b in s.batches()}
        if batches == old_batches:
            assert s.quads() == before
            outcomes.add("before")
        else:
            (new,) = batches
            assert new not in old_batches
            n = s.select(f"SELECT ?n WHERE {{ GRAPH <{new}> {{ <{new}> cmo:tripleCount ?n }} }}")[0]["n"]
            assert len(graph_quads(s, new)) == int(n.value)  # type: ignore[union-attr]
            assert {q for q in s.quads() if q.graph_name != ox.NamedNode(new)} == {
                q for q in before if q.graph_name.value not in old_batches}  # type: ignore[union-attr]
            outcomes.add("after")
            # put the old revision back for the next round
            s.update(f"DROP GRAPH <{new}>")
            s.ox.extend(q for q in before if q.graph_name.value in old_batches)  # type: ignore[union-attr]
            s.flush()
        del s
    assert outcomes <= {"before", "after"}


def test_resolve_batch_by_hash_prefix(schema_store: EvidenceStore) -> None:
    result = import_workbook(schema_store, [GOOD], reviewer="r")
    assert result.batch
    short = result.batch.rsplit("/", 1)[1][:6]
    assert resolve_batch(schema_store, short) == result.batch
    assert resolve_batch(schema_store, result.batch) == result.batch
    assert resolve_batch(schema_store, "zzzz") is None
    assert dependants(schema_store, result.batch) == []


def test_validation_cost_follows_the_workbook_not_the_store(seed_store_path: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The data graph given to SHACL is the same size against an empty store and against the seed graph."""
    from graph.shacl_sparql import CompiledShapes

    sizes: list[int] = []
    real = CompiledShapes.run

    def spy(self, data, *args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(len(data))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(CompiledShapes, "run", spy)
    from graph.pipeline import load_schema

    empty = EvidenceStore(tmp_path / "empty")
    load_schema(empty)
    assert import_workbook(empty, [GOOD], reviewer="r").imported
    copy = tmp_path / "seed"
    shutil.copytree(seed_store_path, copy)
    seed = EvidenceStore(copy)
    assert import_workbook(seed, [GOOD], reviewer="r").imported
    later = later_workbook(tmp_path, "later", "fx-e9,fx-c1,fx-review,A later quote.,7,Results,supports,,,\n")
    small = validate_workbook([later], empty, reviewer="r")
    big = validate_workbook([later], seed, reviewer="r")
    assert small.report.conforms and big.report.conforms
    assert seed.quad_count() > 3 * empty.quad_count()
    assert sizes[-1] == sizes[-2]
