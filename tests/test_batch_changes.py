"""What a revision changed: worked out at import time against the graphs of the batches it supersedes, before
they are dropped, recorded in the revision's own graph (cmo:recordsChange, cmo:Change) and listed by the
catalog query batch-changes, on the CLI's import, the web import, a build and the remote stores."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from servers import OxigraphServer, VirtuosoServer, require
from webforms import (
    C3_ROW,
    CONTEXT,
    E3_QUOTE,
    NEW_CONTEXT,
    NEW_QUOTE,
    QUOTE,
    good_files,
    post,
    write,
    zipped,
)

from graph.backend import Backend
from graph.batches import dependants, retract
from graph.catalog import bind, load_catalog, run
from graph.pipeline import build, import_workbook, load_schema
from graph.remote import RemoteStore, inject_values
from graph.store import EvidenceStore
from webapp import create_app

FIXTURES = Path(__file__).parent / "fixtures" / "workbooks"
CMO = "https://w3id.org/cmokg/ontology#"
ID = "https://w3id.org/cmokg/id/"
QUERY = load_catalog()["batch-changes"]
TOKEN = "changes-token"

STUDY_TITLE = "Link workers in practice: an evaluation"

Rows = set[tuple[str, str, str]]

# What `revise` changes, against the good fixture
REVISED: Rows = {
    ("changed", "CMOC", "cmoc/fx-c1"),  # its context
    ("new", "CMOC", "cmoc/fx-c3"),
    ("changed", "evidence", "evidence/fx-e1"),  # its quote, and its source
    ("gone", "evidence", "evidence/fx-e3"),
    ("gone", "source", "source/fx-study"),
    ("changed", "source", "source/fx-review"),  # fx-study's row said it cited fx-study (cited_by)
}


def revise_files(files: dict[str, str]) -> dict[str, str]:
    """The good fixture's sheets (name -> CSV text) revised: fx-e1's quote corrected and quoted from fx-review,
    fx-c1's context reworded, a CMOC fx-c3 added, the evidence row fx-e3 and the source fx-study dropped."""
    out = dict(files)
    out["sources.csv"] = "".join(line for line in files["sources.csv"].splitlines(keepends=True)
                                 if not line.startswith("fx-study,"))
    out["cmocs.csv"] = files["cmocs.csv"].replace(CONTEXT, NEW_CONTEXT) + C3_ROW
    evidence = [line for line in files["evidence.csv"].splitlines(keepends=True) if not line.startswith("fx-e3,")]
    old, new = f"fx-e1,fx-c1,fx-study,{QUOTE}", f"fx-e1,fx-c1,fx-review,{NEW_QUOTE}"
    assert old in files["evidence.csv"]
    out["evidence.csv"] = "".join(evidence).replace(old, new)
    return out


def short(iri: str) -> str:
    return iri.removeprefix(ID).removeprefix("batch/")


def answer(store: Backend, batch: str) -> list[dict[str, ox.NamedNode | ox.BlankNode | ox.Literal | None]]:
    """batch-changes' rows: bound as terms on the embedded store (the catalog's `run`), and the same rows when
    the batch goes as a VALUES block at the top of the query (what remote stores are sent)."""
    if isinstance(store, EvidenceStore):
        found = run(store.ox, QUERY, {"batch": batch})
        assert isinstance(found, ox.QuerySolutions)
        names = [v.value for v in found.variables]
        rows = [{n: r[n] for n in names} for r in found]
        as_values = store.ox.query(inject_values(QUERY.text, bind(QUERY, {"batch": batch})),
                                   use_default_graph_as_union=True)
        assert isinstance(as_values, ox.QuerySolutions)
        assert sorted(map(comparable, ({n: r[n] for n in names} for r in as_values))) == sorted(map(comparable, rows))
        return rows
    result = store.query(QUERY.text, substitutions=dict(bind(QUERY, {"batch": batch})))
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]
    return [{n: r[n] for n in names} for r in result]


def comparable(row: dict[str, ox.NamedNode | ox.BlankNode | ox.Literal | None]) -> tuple[object, ...]:
    """A row with its labels as a set (GROUP_CONCAT's order is not fixed)."""
    return tuple(sorted((k, str(sorted(v.value.split(" | "))) if k == "labels" and v is not None else str(v))
                        for k, v in row.items()))


def changes(store: Backend, batch: str) -> Rows:
    """The (change, kind, node) rows of batch-changes, each row once."""
    rows = answer(store, batch)
    found = [(str(r["change"].value), str(r["kind"].value), short(str(r["node"].value)))  # type: ignore[union-attr]
             for r in rows]
    assert len(found) == len(set(found)), found  # no node twice
    assert len({node for _, _, node in found}) == len(found)
    return set(found)


def row_of(store: Backend, batch: str, node: str) -> dict[str, str | None]:
    (row,) = [r for r in answer(store, batch) if r["node"] == ox.NamedNode(ID + node)]
    return {k: None if v is None else v.value for k, v in row.items()}


def labels(row: dict[str, str | None]) -> set[str]:
    return set((row["labels"] or "").split(" | ")) - {""}


def recorded(store: Backend, batch: str) -> set[tuple[str, str, str]]:
    """The change record in the batch's graph: (kind of change, kind of node, node), from the triples."""
    rows = store.select(f"""SELECT ?change ?kind ?node WHERE {{ GRAPH <{batch}> {{
        <{batch}> cmo:recordsChange ?c . ?c a cmo:Change ; cmo:changeKind ?change ; cmo:nodeKind ?kind ;
        cmo:changedNode ?node }} }}""")
    return {(r["change"].value, r["kind"].value, short(r["node"].value)) for r in rows}  # type: ignore[union-attr]


def change_count(store: Backend, batch: str) -> int | None:
    rows = store.select(f"SELECT ?n WHERE {{ GRAPH <{batch}> {{ <{batch}> cmo:changeCount ?n }} }}")
    assert len(rows) <= 1
    return int(rows[0]["n"].value) if rows else None  # type: ignore[union-attr]


def graph_of(store: EvidenceStore, batch: str) -> set[ox.Quad]:
    return set(store.ox.quads_for_pattern(None, None, None, ox.NamedNode(batch)))


def triple_count(store: Backend, batch: str) -> int:
    rows = store.select(f"SELECT ?n WHERE {{ GRAPH <{batch}> {{ <{batch}> cmo:tripleCount ?n }} }}")
    return int(rows[0]["n"].value)  # type: ignore[union-attr]


def import_both(store: Backend, tmp_path: Path, keep: list[ox.Quad] | None = None) -> tuple[str, str]:
    """The good fixture as workbook `extraction`, then its revision under the same name; `keep` receives the
    quads of the first batch (on the embedded store) before the revision drops them."""
    folder = write(tmp_path / "v1" / "extraction", good_files())
    first = import_workbook(store, [folder], reviewer="Ada")  # type: ignore[arg-type]
    assert first.imported and first.batch, first.report.to_json()
    if keep is not None and isinstance(store, EvidenceStore):
        keep.extend(graph_of(store, first.batch))
    folder = write(tmp_path / "v2" / "extraction", revise_files(good_files()))
    second = import_workbook(store, [folder], reviewer="Ada")  # type: ignore[arg-type]
    assert second.imported and second.batch and second.superseded == [first.batch], second.report.to_json()
    return first.batch, second.batch


def assert_revision_rows(store: Backend, first: str, second: str) -> None:
    assert not store.has_graph(first)  # the earlier graph was dropped: only the record tells
    assert changes(store, second) == REVISED | {("revises", "batch", short(first))}
    gone_study = row_of(store, second, "source/fx-study")
    assert gone_study["identifier"] == "fx-study" and labels(gone_study) == {STUDY_TITLE}
    assert gone_study["earlier"] == first
    gone_e3 = row_of(store, second, "evidence/fx-e3")
    assert gone_e3["identifier"] == "fx-e3" and labels(gone_e3) == {E3_QUOTE}
    assert gone_e3["earlier"] == first
    e1 = row_of(store, second, "evidence/fx-e1")  # a changed quote: before and after
    assert e1["identifier"] == "fx-e1" and labels(e1) == {QUOTE, NEW_QUOTE} and e1["earlier"] is None
    assert labels(row_of(store, second, "cmoc/fx-c3")) == {"CMOC3"}
    revises = row_of(store, second, "batch/" + short(first))
    assert revises["earlier"] == first and revises["earlierInStore"] in ("false", "0")  # Virtuoso: 0


# -- the CLI's import on the embedded store ---------------------------------------------------------------


def test_a_revision_records_what_it_changed(schema_store: EvidenceStore, tmp_path: Path) -> None:
    earlier: list[ox.Quad] = []
    first, second = import_both(schema_store, tmp_path, keep=earlier)
    assert recorded(schema_store, second) == REVISED
    assert change_count(schema_store, second) == len(REVISED)
    assert triple_count(schema_store, second) == len(graph_of(schema_store, second))
    assert_revision_rows(schema_store, first, second)
    # a gone node's record keeps its identifier and text, since nothing else in the store does
    rows = schema_store.select(f"""SELECT ?id ?text ?earlier WHERE {{ GRAPH <{second}> {{ ?c cmo:changedNode
        <{ID}source/fx-study> ; cmo:formerIdentifier ?id ; cmo:formerText ?text ; cmo:formerBatch ?earlier }} }}""")
    assert [(r["id"].value, r["text"].value, r["earlier"].value) for r in rows] == [  # type: ignore[union-attr]
        ("fx-study", STUDY_TITLE, first)]
    # with the earlier graph back beside its revision (restored from a dump, say), the record is what is
    # listed, each node once (not once recorded and once compared)
    schema_store.ox.extend(earlier)
    assert changes(schema_store, second) == REVISED | {("revises", "batch", short(first))}
    assert row_of(schema_store, second, "batch/" + short(first))["earlierInStore"] == "true"


def test_an_identical_reimport_records_no_change(schema_store: EvidenceStore, tmp_path: Path) -> None:
    first, second = import_both(schema_store, tmp_path)
    record = graph_of(schema_store, second)
    # the same file again: the same batch, which keeps the record it made (its earlier graph is gone)
    again = import_workbook(schema_store, [tmp_path / "v2" / "extraction"], reviewer="Ada")
    assert again.imported and again.batch == second and again.superseded == []
    assert recorded(schema_store, second) == REVISED and change_count(schema_store, second) == len(REVISED)
    changes_of = {q for q in record if str(q.subject).startswith(f"<{second}/change/")
                  or str(q.predicate) in (f"<{CMO}changeCount>", f"<{CMO}recordsChange>")}
    assert changes_of and changes_of <= graph_of(schema_store, second)
    assert changes(schema_store, second) == REVISED | {("revises", "batch", short(first))}
    assert triple_count(schema_store, second) == len(graph_of(schema_store, second))
    # another file with the same triples (a blank line more): a revision that changed nothing
    folder = write(tmp_path / "v3" / "extraction", revise_files(good_files()))
    with (folder / "evidence.csv").open("a", encoding="utf-8") as fh:
        fh.write("\n")
    third = import_workbook(schema_store, [folder], reviewer="Ada")
    assert third.imported and third.batch and third.batch != second and third.superseded == [second]
    assert recorded(schema_store, third.batch) == set() and change_count(schema_store, third.batch) == 0
    assert changes(schema_store, third.batch) == {("revises", "batch", short(second))}


def test_a_second_revision_records_against_the_first_revision(schema_store: EvidenceStore, tmp_path: Path) -> None:
    first, second = import_both(schema_store, tmp_path)
    files = revise_files(good_files())
    files["cmocs.csv"] = files["cmocs.csv"].replace("Patients ask for help sooner", "Patients ask for help")
    files["evidence.csv"] += "fx-e3,fx-c2,fx-review,Patients came back.,14,Results,refutes,reviewer,,\n"
    third = import_workbook(schema_store, [write(tmp_path / "v3" / "extraction", files)], reviewer="Ada")
    assert third.imported and third.batch and third.superseded == [second], third.report.to_json()
    # against the original, fx-c3 would be new, fx-e3 changed and fx-c1, fx-e1, fx-study, fx-review listed
    assert changes(schema_store, third.batch) == {
        ("revises", "batch", short(second)),
        ("changed", "CMOC", "cmoc/fx-c3"),
        ("new", "evidence", "evidence/fx-e3"),
    }
    c3 = row_of(schema_store, third.batch, "cmoc/fx-c3")
    assert c3["identifier"] == "fx-c3" and labels(c3) == {"CMOC3"} and c3["earlier"] is None
    assert row_of(schema_store, third.batch, "batch/" + short(second))["earlier"] == second
    assert not schema_store.has_graph(first) and not schema_store.has_graph(second)


def test_a_batch_without_a_record_is_compared_with_the_earlier_graph_in_the_store(schema_store: EvidenceStore,
                                                                                    tmp_path: Path) -> None:
    """A revision imported before revisions recorded their changes (here: its record removed) falls back to
    comparing with the earlier graph when that is in the store, and to "recorded" when not; a source typed
    otherwise is "changed", once (it was listed as "new" and as "gone")."""
    first = import_workbook(schema_store, [write(tmp_path / "v1" / "extraction", good_files())], reviewer="Ada")
    assert first.batch
    # a first import records nothing: its nodes are listed as new
    assert change_count(schema_store, first.batch) is None and recorded(schema_store, first.batch) == set()
    assert changes(schema_store, first.batch) == {("new", kind, node) for kind, node in [
        ("CMOC", "cmoc/fx-c1"), ("CMOC", "cmoc/fx-c2"), ("source", "source/fx-review"), ("source", "source/fx-study"),
        ("evidence", "evidence/fx-e1"), ("evidence", "evidence/fx-e2"), ("evidence", "evidence/fx-e3")]}
    earlier = list(schema_store.ox.quads_for_pattern(None, None, None, ox.NamedNode(first.batch)))
    files = good_files()
    files["sources.csv"] = files["sources.csv"].replace("fx-study,study,", "fx-study,grey,")
    files["evidence.csv"] = files["evidence.csv"].replace(QUOTE, NEW_QUOTE)
    second = import_workbook(schema_store, [write(tmp_path / "v2" / "extraction", files)], reviewer="Ada")
    assert second.batch and second.superseded == [first.batch]
    retyped = {("changed", "source", "source/fx-study"), ("changed", "evidence", "evidence/fx-e1")}
    revises = {("revises", "batch", short(first.batch))}
    assert recorded(schema_store, second.batch) == retyped
    assert changes(schema_store, second.batch) == retyped | revises
    schema_store.update(f"""DELETE {{ GRAPH <{second.batch}> {{ ?s ?p ?o }} }} WHERE {{ GRAPH <{second.batch}> {{
        ?s ?p ?o
        FILTER(?p IN (<{CMO}changeCount>, <{CMO}recordsChange>) || STRSTARTS(STR(?s), "{second.batch}/change/"))
        }} }}""")
    assert change_count(schema_store, second.batch) is None
    assert changes(schema_store, second.batch) == revises | {("recorded", kind, node) for kind, node in [
        ("CMOC", "cmoc/fx-c1"), ("CMOC", "cmoc/fx-c2"), ("source", "source/fx-review"), ("source", "source/fx-study"),
        ("evidence", "evidence/fx-e1"), ("evidence", "evidence/fx-e2"), ("evidence", "evidence/fx-e3")]}
    schema_store.ox.extend(earlier)
    assert changes(schema_store, second.batch) == retyped | revises


def test_a_recorded_gone_node_is_no_reference(schema_store: EvidenceStore, tmp_path: Path) -> None:
    """A change naming a gone source another batch still defines does not hold that batch: retracting it is
    not refused for the record."""
    _, second = import_both(schema_store, tmp_path)
    other = write(tmp_path / "other" / "study-only", {
        "sources.csv": "".join(line for line in good_files()["sources.csv"].splitlines(keepends=True)
                               if not line.startswith("fx-review,")).replace(",fx-review\n", ",\n"),
        "cmocs.csv": good_files()["cmocs.csv"].splitlines(keepends=True)[0],
        "evidence.csv": good_files()["evidence.csv"].splitlines(keepends=True)[0],
    })
    imported = import_workbook(schema_store, [other], reviewer="Ada")
    assert imported.imported and imported.batch, imported.report.to_json()
    assert ("gone", "source", "source/fx-study") in recorded(schema_store, second)
    assert dependants(schema_store, imported.batch) == []
    assert retract(schema_store, imported.batch).retracted


# -- the web import ---------------------------------------------------------------------------------------


def test_the_web_import_records_the_same(schema_store: EvidenceStore) -> None:
    client = create_app({"TESTING": True, "CMOKG_STORE_OBJECT": schema_store, "CMOKG_REVIEWER_TOKEN": TOKEN,
                         "CMOKG_QUERY_WORKERS": 0}).test_client()
    batches = []
    for files in (good_files(), revise_files(good_files())):
        r = post(client, "/review/import", "extraction.zip", zipped(files), token=TOKEN, reviewer="Ada",
                 format="json")
        assert r.status_code == 201, r.data
        batches.append(r.get_json()["batch"])
    first, second = batches
    assert recorded(schema_store, second) == REVISED
    assert_revision_rows(schema_store, first, second)
    # and the catalog page over the web answers the same rows
    r = client.get(f"/queries/batch-changes?batch={second}", headers={"Accept": "application/sparql-results+json"})
    assert r.status_code == 200
    got = {(b["change"]["value"], b["kind"]["value"], short(b["node"]["value"]))
           for b in r.get_json()["results"]["bindings"]}
    assert got == REVISED | {("revises", "batch", short(first))}


# -- a build ------------------------------------------------------------------------------------------------


def test_a_revision_inside_a_build_records_its_changes(tmp_path: Path) -> None:
    """The folder `good` and the workbook `good.xlsx` share a workbook id: the second, imported after the
    first, supersedes it. Here the folder is the revised fixture, so the workbook undoes the revision."""
    data = tmp_path / "data" / "workbooks"
    write(data / "good", revise_files(good_files()))
    shutil.copy(FIXTURES / "good.xlsx", data / "good.xlsx")
    results = build(tmp_path / "store", tmp_path / "data")
    assert [(r.imported, r.replaced) for r in results] == [(True, False), (True, True)]
    folder, book = results
    assert folder.batch and book.batch and book.superseded == [folder.batch]
    store = EvidenceStore(tmp_path / "store")
    undone = {("changed" if change == "changed" else "new" if change == "gone" else "gone", kind, node)
              for change, kind, node in REVISED}
    assert recorded(store, book.batch) == undone
    assert changes(store, book.batch) == undone | {("revises", "batch", short(folder.batch))}
    assert labels(row_of(store, book.batch, "cmoc/fx-c3")) == {"CMOC3"}  # gone: its label kept
    assert triple_count(store, book.batch) == len(graph_of(store, book.batch))


# -- remote stores: the record is part of the batch's data, written as every backend writes a batch ----------


@pytest.fixture(scope="module")
def oxigraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphServer]:
    require("oxigraph")
    with OxigraphServer(tmp_path_factory.mktemp("oxigraph") / "db") as server:
        yield server


@pytest.fixture(scope="module")
def virtuoso_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtuosoServer]:
    require("virtuoso")
    with VirtuosoServer(tmp_path_factory.mktemp("virtuoso")) as server:
        yield server


def _remote(remote: RemoteStore) -> Iterator[RemoteStore]:
    remote.clear()
    load_schema(remote)  # type: ignore[arg-type]
    yield remote
    remote.clear()
    remote.close()


@pytest.fixture
def oxigraph_remote(oxigraph_server: OxigraphServer) -> Iterator[RemoteStore]:
    yield from _remote(RemoteStore(oxigraph_server.query_url))


@pytest.fixture
def virtuoso_remote(virtuoso_server: VirtuosoServer) -> Iterator[RemoteStore]:
    yield from _remote(RemoteStore(virtuoso_server.query_url, virtuoso_server.update_url,
                                   user=virtuoso_server.user, password=virtuoso_server.password))


@pytest.mark.parametrize("backend", ["oxigraph_remote", "virtuoso_remote"])
def test_a_revision_on_a_remote_store_records_the_same(backend: str, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    store: RemoteStore = request.getfixturevalue(backend)
    first, second = import_both(store, tmp_path)
    assert recorded(store, second) == REVISED and change_count(store, second) == len(REVISED)
    assert store.graph_quad_count(second) == triple_count(store, second)
    assert_revision_rows(store, first, second)
