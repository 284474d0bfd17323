"""Writing an import batch to a remote store (graph.pipeline._write -> RemoteStore.write_batch) on the Oxigraph
server and on Virtuoso: a revision replaces the batch it supersedes as on the embedded store, and a failure at
any point of the write loses no batch.

The bug fixed: a remote import went as one update, `DROP SILENT GRAPH <superseded> ; DROP SILENT GRAPH <batch> ;
INSERT DATA {...}`. One request is one transaction on the Oxigraph server, not on Virtuoso 7.2: an operation
that fails as it runs keeps what the earlier operations of its request did, so an INSERT failing there lost the
superseded batch. (And the whole batch went as one request, however large.) Now the batch is staged in chunks
and one final request moves it into place before it drops anything.

Faults: the connection cut on the Nth write (tests/servers.py DroppingProxy, in front of the update endpoint
only), an update refused by the client's endpoint on the Nth call, and, on Virtuoso, a triple it refuses as the
update runs (a language tag longer than its language table's row: `SR319: Max row length is exceeded`, HTTP
500), which it does not notice when it compiles the update.
"""

from __future__ import annotations

import datetime as dt
import shutil
import types
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from servers import DroppingProxy, OxigraphServer, VirtuosoServer, require

from graph import importer, validate
from graph.backend import STAGING_PREFIX, StoreError
from graph.namespaces import BATCH_PREFIX
from graph.pipeline import _write, import_workbook, load_schema
from graph.remote import EndpointFailure, RemoteStore
from graph.store import EvidenceStore

GOOD = Path(__file__).parent / "fixtures" / "workbooks" / "good"
EX = "http://example.org/"
OLD, NEW = BATCH_PREFIX + "rw-old", BATCH_PREFIX + "rw-new"
# A language tag pyoxigraph parses (BCP 47 private use) and Virtuoso refuses as the update runs, not when it
# compiles it: its language table's row holds ~4 KB.
LONG_TAG = "en-x-" + "-".join(["abcdefgh"] * 600)


def canonical(quads: Iterator[ox.Quad] | list[ox.Quad] | set[ox.Quad]) -> set[ox.Quad]:
    ds = ox.Dataset(list(quads))
    ds.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return set(ds)


def graph_quads(store: RemoteStore | EvidenceStore, graph: str) -> set[ox.Quad]:
    return canonical(store.ox.quads_for_pattern(None, None, None, ox.NamedNode(graph)))


def staging_graphs(store: RemoteStore) -> list[str]:
    result = store.query(f'SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(STRSTARTS(STR(?g), '
                         f'"{STAGING_PREFIX}")) }}', union=False)
    assert isinstance(result, ox.QuerySolutions)
    return [g.value for row in result if isinstance(g := row[0], ox.NamedNode)]


def nt(n: int, tag: str) -> bytes:
    return "".join(f'<{EX}s{i}> <{EX}p> "{tag} {i}" .\n' for i in range(n)).encode()


def revise(folder: Path) -> None:
    """The good fixture revised under the same folder name: a quote reworded, a row gone, a row added."""
    evidence = folder / "evidence.csv"
    lines = [line.replace("Training made conversations feel natural.", "Training made talking feel natural.")
             for line in evidence.read_text(encoding="utf-8").splitlines() if not line.startswith("fx-e3,")]
    lines.append("fx-e4,fx-c1,fx-review,Link workers who were trained felt confident.,6,Results,supports,author,,")
    evidence.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports stamp their batch with the time: a fixed one, so two stores' batches can be compared."""

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:
            return cls(2024, 5, 6, 7, 8, 9, tzinfo=tz)

    clock = types.SimpleNamespace(datetime=Frozen, date=dt.date, UTC=dt.UTC)
    monkeypatch.setattr(importer, "dt", clock)
    monkeypatch.setattr(validate, "dt", clock)


@pytest.fixture(scope="module")
def oxigraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphServer]:
    require("oxigraph")
    with OxigraphServer(tmp_path_factory.mktemp("oxigraph-writes") / "db") as server:
        yield server


@pytest.fixture(scope="module")
def virtuoso_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtuosoServer]:
    require("virtuoso")
    with VirtuosoServer(tmp_path_factory.mktemp("virtuoso-writes")) as server:
        yield server


def connect(request: pytest.FixtureRequest) -> RemoteStore:
    """A store on the server the test runs on (`request.param`)."""
    if request.param == "oxigraph":
        ox_server: OxigraphServer = request.getfixturevalue("oxigraph_server")
        return RemoteStore(ox_server.query_url, ox_server.update_url, dialect="oxigraph")
    virtuoso: VirtuosoServer = request.getfixturevalue("virtuoso_server")
    return RemoteStore(virtuoso.query_url, virtuoso.update_url, dialect="virtuoso", user=virtuoso.user,
                       password=virtuoso.password)


@pytest.fixture(params=["oxigraph", "virtuoso"])
def remote(request: pytest.FixtureRequest) -> Iterator[RemoteStore]:
    store = connect(request)
    store.clear()
    store.remove_staging()
    yield store
    store.remove_staging()
    store.clear()
    store.close()


def server_base(store: RemoteStore) -> str:
    return store.update_url.rsplit("/", 1)[0]


def update_path(store: RemoteStore) -> str:
    return "/" + store.update_url.rsplit("/", 1)[1]


def like(remote: RemoteStore, update_url: str | None = None, **kwargs: object) -> RemoteStore:
    """Another client of the same endpoint (its updates perhaps through a proxy)."""
    return RemoteStore(remote.query_url, update_url or remote.update_url, dialect=remote.dialect,
                       user=remote.user, password=remote.password, **kwargs)  # type: ignore[arg-type]


class RefusingStore(RemoteStore):
    """An endpoint that refuses one update with an HTTP 500 and runs every other: the `refuse_at`-th of the
    updates writing a staging graph, or (`refuse_at` 0) the final switch, the update that moves one into place.
    `refused` is the update it refused."""

    refuse_at = 0
    staged = 0
    refused: str | None = None

    def update(self, sparql: str) -> None:
        if self.refused is None and STAGING_PREFIX in sparql:
            moves = "MOVE SILENT GRAPH" in sparql
            self.staged += not moves
            if (moves and self.refuse_at == 0) or (not moves and self.staged == self.refuse_at):
                self.refused = sparql
                raise EndpointFailure(self.update_url, 500, "refused by the test")
        super().update(sparql)


# -- a revision imported onto a remote store ---------------------------------------------------------------


@pytest.mark.parametrize("chunk", [5000, 20], ids=["one-chunk", "staged"])
def test_revision_import_writes_what_the_embedded_store_holds(remote: RemoteStore, chunk: int, tmp_path: Path,
                                                              frozen_clock: None) -> None:
    """The good fixture, then a changed copy under the same folder name: the revision's graph holds the same
    quads as on the embedded store, the batch it supersedes is gone, and no staging graph is left. With the
    default chunk (one request on the Oxigraph server, staged on Virtuoso) and a small one (staged in 7+
    requests). Not a regression test: it shows that the staged write is the same write."""
    folder = tmp_path / "extraction"
    shutil.copytree(GOOD, folder)
    embedded = EvidenceStore(tmp_path / "store")
    remote.chunk = chunk
    load_schema(embedded)
    load_schema(remote)  # type: ignore[arg-type]
    results = {}
    for name, store in (("embedded", embedded), ("remote", remote)):
        first = import_workbook(store, [folder], "tester")  # type: ignore[arg-type]
        assert first.imported and first.batch, first.report.to_json()
        results[name] = first
    revise(folder)
    for name, store in (("embedded", embedded), ("remote", remote)):
        second = import_workbook(store, [folder], "tester")  # type: ignore[arg-type]
        assert second.imported and second.batch, second.report.to_json()
        assert second.superseded == [results[name].batch]
        results[name] = second
    batch = results["remote"].batch
    assert batch and batch == results["embedded"].batch
    assert graph_quads(remote, batch) == graph_quads(embedded, batch)
    assert len(graph_quads(remote, batch)) == results["remote"].triples
    assert remote.named_graphs() == embedded.named_graphs()
    assert staging_graphs(remote) == []


def test_a_batch_with_blank_nodes_over_many_chunks(remote: RemoteStore) -> None:
    """Blank nodes stay shared across a staged write (their triples go in one request; on Virtuoso as
    INSERT ... WHERE {}); a batch written again (its own IRI among those to drop) keeps its new content."""
    remote.chunk = 30
    remote.replace_graph(OLD, nt(10, "old"))
    lines = [f'<{EX}s{i}> <{EX}p> "{i}" .' for i in range(100)]
    lines += [f"<{EX}s0> <{EX}q> _:x .", f'_:x <{EX}p> "inside" .', f"_:x <{EX}r> _:y .", f'_:y <{EX}p> "1" .']
    data = ("\n".join(lines) + "\n").encode()
    expected = canonical([ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(NEW))
                          for t in ox.parse(data, ox.RdfFormat.N_TRIPLES)])
    remote.write_batch(NEW, data, [OLD])
    assert graph_quads(remote, NEW) == expected
    assert remote.named_graphs() == [NEW] and staging_graphs(remote) == []
    remote.write_batch(NEW, data, [OLD, NEW])
    assert graph_quads(remote, NEW) == expected
    assert remote.named_graphs() == [NEW] and staging_graphs(remote) == []


def test_a_batch_larger_than_virtuoso_takes_in_one_update(remote: RemoteStore) -> None:
    """3000 triples with the default chunk: Virtuoso 7.2 refuses an INSERT DATA of more than 1426 triples
    (SP031, its generated SQL past 10000 lines), which a 100-CMOC workbook's batch (5265 triples) was, sent as
    one request; now it is staged in chunks it takes."""
    remote.replace_graph(OLD, nt(10, "old"))
    _write(remote, NEW, nt(3000, "new"), [OLD])
    assert remote.named_graphs() == [NEW] and remote.graph_quad_count(NEW) == 3000
    assert staging_graphs(remote) == []


# -- failures while the batch is staged --------------------------------------------------------------------


def test_connection_cut_while_staging_keeps_the_superseded_batch(remote: RemoteStore, tmp_path: Path) -> None:
    """The server goes away after a few of a revision's staging writes: the store still holds the batch the
    revision supersedes, as it was, and not the revision; what was staged is a staging graph no listing shows,
    which the next push (remove_staging) removes. (The old single request had no writes to cut between.)"""
    folder = tmp_path / "extraction"
    shutil.copytree(GOOD, folder)
    load_schema(remote)  # type: ignore[arg-type]
    first = import_workbook(remote, [folder], "tester")  # type: ignore[arg-type]
    assert first.imported and first.batch
    before, graphs = graph_quads(remote, first.batch), remote.named_graphs()
    revise(folder)
    # Virtuoso's digest authentication costs one more POST (the challenge) on a client's first update
    allowed = 2 if remote.dialect == "oxigraph" else 3
    with DroppingProxy(server_base(remote), writes_allowed=allowed, query_path="/no-queries-here") as proxy:
        broken = like(remote, proxy.url + update_path(remote), chunk=20, timeout=10)
        with pytest.raises(StoreError):
            import_workbook(broken, [folder], "tester")  # type: ignore[arg-type]
        assert proxy.dead
    assert remote.named_graphs() == graphs
    assert graph_quads(remote, first.batch) == before
    assert [remote.graph_quad_count(g) for g in staging_graphs(remote)] == [40]  # two chunks, then the cut
    assert remote.remove_staging()
    assert remote.named_graphs() == graphs and staging_graphs(remote) == []


@pytest.mark.parametrize("refuse_at", [3, 0], ids=["while-staging", "at-the-switch"])
def test_an_update_refused_loses_no_batch(remote: RemoteStore, tmp_path: Path, refuse_at: int) -> None:
    """The endpoint refuses one of a revision's updates, its third staging write or the final switch, and
    stays up: the superseded batch is as it was and the revision is absent. The staging graph is dropped,
    except after a switch refused on Virtuoso (where an update failing may have run in part, so the staged
    copy of the revision stays there for the next push to remove)."""
    folder = tmp_path / "extraction"
    shutil.copytree(GOOD, folder)
    load_schema(remote)  # type: ignore[arg-type]
    first = import_workbook(remote, [folder], "tester")  # type: ignore[arg-type]
    assert first.imported and first.batch
    before, graphs = graph_quads(remote, first.batch), remote.named_graphs()
    revise(folder)
    refusing = RefusingStore(remote.query_url, remote.update_url, dialect=remote.dialect, user=remote.user,
                             password=remote.password, chunk=20)
    refusing.refuse_at = refuse_at
    with pytest.raises(StoreError):
        import_workbook(refusing, [folder], "tester")  # type: ignore[arg-type]
    assert refusing.refused is not None
    assert graph_quads(remote, first.batch) == before
    assert remote.named_graphs() == graphs
    left = staging_graphs(remote)
    if refuse_at == 0 and remote.dialect == "virtuoso":
        assert len(left) == 1 and remote.graph_quad_count(left[0]) > 100  # the whole revision, staged
    else:
        assert left == []


# -- Virtuoso: an update failing as it runs ----------------------------------------------------------------


@pytest.fixture
def virtuoso(virtuoso_server: VirtuosoServer) -> Iterator[RemoteStore]:
    store = RemoteStore(virtuoso_server.query_url, virtuoso_server.update_url, dialect="virtuoso",
                        user=virtuoso_server.user, password=virtuoso_server.password)
    store.clear()
    store.remove_staging()
    yield store
    store.remove_staging()
    store.clear()
    store.close()


@pytest.mark.parametrize("chunk", [5000, 20], ids=["one-chunk", "staged"])
def test_virtuoso_insert_failing_as_it_runs_keeps_the_superseded_batch(virtuoso: RemoteStore, chunk: int) -> None:
    """A batch holding a triple Virtuoso refuses as the update runs (a language tag too long for its table):
    sent as one `DROP ... ; INSERT DATA` request, as `_write` did, the superseded batch is gone although the
    write failed; written now, it is kept as it was, and no staging graph is left."""
    bad = f'<{EX}s> <{EX}p> "x"@{LONG_TAG} .\n'.encode()
    virtuoso.replace_graph(OLD, nt(10, "old"))
    with pytest.raises(EndpointFailure) as failed:  # the trigger: run (HTTP 500), not refused unread (400)
        virtuoso.update(f"DROP SILENT GRAPH <{OLD}> ;\nINSERT DATA {{ GRAPH <{NEW}> {{\n{bad.decode()}}} }}")
    assert failed.value.status == 500
    assert not virtuoso.has_graph(OLD) and not virtuoso.has_graph(NEW)  # what the one request lost

    virtuoso.replace_graph(OLD, nt(10, "old"))
    before = graph_quads(virtuoso, OLD)
    virtuoso.chunk = chunk
    with pytest.raises(StoreError):
        _write(virtuoso, NEW, nt(50, "new") + bad, [OLD])
    assert graph_quads(virtuoso, OLD) == before
    assert virtuoso.named_graphs() == [OLD] and staging_graphs(virtuoso) == []


ABSENT = "urn:cmokg:test:never-created"


class SwitchFailingStore(RemoteStore):
    """Virtuoso, with the final switch's `fails` operation (the move, or the drop of a superseded graph)
    replaced by one Virtuoso fails as it runs (`DROP GRAPH` of a graph never created: HTTP 500), the other
    operations of that request sent as they are, in their order."""

    fails = "MOVE"

    def update(self, sparql: str) -> None:
        if f"MOVE SILENT GRAPH <{STAGING_PREFIX}" in sparql:
            ops = sparql.split(" ;\n")
            at = next(i for i, op in enumerate(ops) if op.startswith(self.fails))
            ops[at] = f"DROP GRAPH <{ABSENT}>"
            sparql = " ;\n".join(ops)
        super().update(sparql)


@pytest.mark.parametrize("fails", ["MOVE", "DROP"], ids=["the-move", "a-drop"])
def test_virtuoso_switch_moves_before_it_drops(virtuoso_server: VirtuosoServer, virtuoso: RemoteStore,
                                               fails: str) -> None:
    """The final switch failing as it runs on Virtuoso, which keeps what the operations before the failing
    one did: failing at the move, the superseded batch is kept (the move comes first, so nothing was dropped)
    and the staged batch stays for the next push; failing at the drop, both the new batch and the superseded
    one are there. Either way no batch is lost."""
    virtuoso.replace_graph(OLD, nt(10, "old"))
    before = graph_quads(virtuoso, OLD)
    data = nt(50, "new")
    store = SwitchFailingStore(virtuoso_server.query_url, virtuoso_server.update_url, dialect="virtuoso",
                               user=virtuoso_server.user, password=virtuoso_server.password, chunk=20)
    store.fails = fails
    with pytest.raises(StoreError):
        _write(store, NEW, data, [OLD])
    assert graph_quads(virtuoso, OLD) == before
    if fails == "MOVE":
        assert virtuoso.named_graphs() == [OLD]
        assert [virtuoso.graph_quad_count(g) for g in staging_graphs(virtuoso)] == [50]
    else:
        assert virtuoso.named_graphs() == sorted([OLD, NEW]) and virtuoso.graph_quad_count(NEW) == 50
        assert staging_graphs(virtuoso) == []
