"""One backend test suite, run on every backend: the embedded store, the Oxigraph server and Virtuoso.

`BackendSuite` holds the tests; each subclass provides an empty `store`. The servers are real programs
started on loopback ports for the session (tests/servers.py) and stopped afterwards; a missing program skips
its class with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyoxigraph as ox
import pytest
from servers import OxigraphServer, VirtuosoServer, require

from graph.backend import Backend, StoreError
from graph.catalog import bind, load_catalog
from graph.namespaces import BASE, BATCH_PREFIX
from graph.pipeline import import_workbook, load_schema
from graph.remote import RemoteStore, inject_values
from graph.store import EvidenceStore

ROOT = Path(__file__).resolve().parent.parent
G1, G2 = BASE + "test/g1", BASE + "test/g2"
EX = "http://example.org/"


def canonical(quads: set[ox.Quad] | list[ox.Quad]) -> set[ox.Quad]:
    """Quads with blank nodes relabelled canonically (RDFC-1.0): equal sets mean isomorphic datasets."""
    ds = ox.Dataset(quads)
    ds.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return set(ds)


def rows(result: object) -> list[tuple[object, ...]]:
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]
    return [tuple(r[n] for n in names) for r in result]


# `GROUP_CONCAT(... ; separator="s") AS ?v`: the order of the concatenated values is not defined by SPARQL
_GROUP_CONCAT = re.compile(
    r'GROUP_CONCAT\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*?;\s*separator\s*=\s*"([^"]*)"\s*\)\s+AS\s+\?(\w+)', re.I)


def group_concats(sparql: str) -> dict[str, str]:
    """The query's GROUP_CONCAT results: variable name -> separator."""
    return {var: sep for sep, var in _GROUP_CONCAT.findall(sparql)}


def _cell(term: object, separator: str | None) -> str:
    if separator is not None and term is None:  # GROUP_CONCAT of no value: "" by SPARQL 1.1 (and on Virtuoso),
        return str(ox.Literal(""))               # unbound on Oxigraph 0.5
    if separator and isinstance(term, ox.Literal):
        return str(ox.Literal(separator.join(sorted(term.value.split(separator)))))
    return str(term)


def sorted_rows(result: object, concats: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    """The rows as sorted tuples of strings; GROUP_CONCAT values (``concats``) with their parts sorted."""
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]
    seps = [(concats or {}).get(n) for n in names]
    return sorted(tuple(_cell(r[n], sep) for n, sep in zip(names, seps, strict=True)) for r in result)


@pytest.fixture(scope="session")
def seed_nquads(seed_evidence_store: EvidenceStore) -> bytes:
    buf = io.BytesIO()
    seed_evidence_store.dump(buf, ox.RdfFormat.N_QUADS)
    return buf.getvalue()


@pytest.fixture(scope="session")
def oxigraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphServer]:
    require("oxigraph")
    with OxigraphServer(tmp_path_factory.mktemp("oxigraph") / "db") as server:
        yield server


@pytest.fixture(scope="session")
def virtuoso_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtuosoServer]:
    require("virtuoso")
    with VirtuosoServer(tmp_path_factory.mktemp("virtuoso")) as server:
        yield server


XSD = "http://www.w3.org/2001/XMLSchema#"
# Virtuoso stores xsd:boolean values as integers and answers them as 1 and 0.
AS_INTEGERS = {f'"true"^^<{XSD}boolean>': f'"1"^^<{XSD}integer>', f'"false"^^<{XSD}boolean>': f'"0"^^<{XSD}integer>'}


class BackendSuite:
    booleans_as_integers: ClassVar[bool] = False
    without_parameters: ClassVar[bool] = True

    @pytest.fixture
    def store(self) -> Iterator[Backend]:
        raise NotImplementedError

    @pytest.fixture
    def seeded(self, store: Backend, seed_nquads: bytes) -> Backend:
        store.add_quads(seed_nquads, ox.RdfFormat.N_QUADS)
        return store

    # -- the seed graph through the interface --------------------------------------------------------
    def test_seed_round_trip(self, seeded: Backend, seed_evidence_store: EvidenceStore) -> None:
        assert seeded.quad_count() == seed_evidence_store.quad_count()
        assert seeded.named_graphs() == seed_evidence_store.named_graphs()
        assert canonical(seeded.quads()) == canonical(seed_evidence_store.quads())
        assert seeded.counts() == seed_evidence_store.counts()
        # batches are ordered by time, then name, then IRI: a build imports many within one second, and the
        # home page listed those in another order on Virtuoso
        assert seeded.batches() == seed_evidence_store.batches()
        assert [(b.generated, b.label, b.iri) for b in seeded.batches()] == sorted(
            (b.generated, b.label, b.iri) for b in seeded.batches())
        assert seeded.concept_index().__dict__ == seed_evidence_store.concept_index().__dict__
        batch = seed_evidence_store.batches()[0].iri
        assert seeded.is_batch(batch) and not seeded.is_batch(BATCH_PREFIX + "nope")
        assert seeded.graph_quad_count(batch) == seed_evidence_store.graph_quad_count(batch)

    def test_catalog_answers_as_embedded(self, seeded: Backend, seed_evidence_store: EvidenceStore) -> None:
        """Every catalog query, without parameters and with its example's, answers the same rows on every
        backend (cmo-chains, cmocs-by-framework and documents answered none or wrong ones on Virtuoso before
        they were written in forms both engines evaluate alike)."""
        for name, nq in load_catalog().items():
            example = bind(nq, nq.example_values) or None
            for subs in ((None, example) if self.without_parameters else (example,)):
                expected = seed_evidence_store.query(nq.text, substitutions=subs)
                got = seeded.query(nq.text, substitutions=subs)
                if isinstance(expected, ox.QueryBoolean):
                    assert bool(got) == bool(expected), name
                    continue
                concats = group_concats(nq.text)
                want = sorted_rows(expected, concats)
                if self.booleans_as_integers:
                    want = sorted(tuple(AS_INTEGERS.get(c, c) for c in row) for row in want)
                assert sorted_rows(got, concats) == want, (name, subs)

    def test_import_workbook_on_backend(self, store: Backend) -> None:
        load_schema(store)
        for name in ("01-bibliography", "02-calderon2021"):
            result = import_workbook(store, [ROOT / "data/workbooks" / name], "tester")  # type: ignore[arg-type]
            assert result.imported, result.report.to_json()
            assert store.graph_quad_count(result.batch or "") == result.triples
        assert store.counts()["batches"] == 2

    def test_batch_changes_of_a_revision_with_the_earlier_graph_back(self, store: Backend, tmp_path: Path) -> None:
        """batch-changes compares a revision with the earlier graph when that is in the store (restored from a
        dump, say): on a remote store the batch goes as a VALUES block, and the answer must be the same."""
        load_schema(store)
        folder = tmp_path / "extraction"
        shutil.copytree(ROOT / "tests/fixtures/workbooks/good", folder)
        first = import_workbook(store, [folder], "tester")  # type: ignore[arg-type]
        assert first.batch
        earlier = io.BytesIO()
        store.dump(earlier, ox.RdfFormat.N_QUADS, first.batch)
        evidence = folder / "evidence.csv"
        lines = [line.replace("Training made conversations feel natural.", "Training made talking feel natural.")
                 for line in evidence.read_text(encoding="utf-8").splitlines() if not line.startswith("fx-e3,")]
        lines.append("fx-e4,fx-c1,fx-review,Link workers who were trained felt confident.,6,Results,supports,author,,")
        evidence.write_text("\n".join(lines) + "\n", encoding="utf-8")
        second = import_workbook(store, [folder], "tester")  # type: ignore[arg-type]
        assert second.batch and second.superseded == [first.batch]
        earlier_quads = [ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(first.batch))
                         for t in ox.parse(earlier.getvalue(), ox.RdfFormat.N_TRIPLES)]
        store.add_quads(b"".join(str(q).encode() + b" .\n" for q in earlier_quads))

        query = load_catalog()["batch-changes"]
        found = store.query(query.text, substitutions=bind(query, {"batch": second.batch}))
        assert isinstance(found, ox.QuerySolutions)
        assert {(r["change"].value, r["kind"].value, r["node"].value.rsplit("/", 1)[-1]) for r in found} == {
            ("revises", "batch", first.batch.rsplit("/", 1)[-1]),
            ("changed", "evidence", "fx-e1"), ("gone", "evidence", "fx-e3"), ("new", "evidence", "fx-e4"),
        }

    # -- queries ----------------------------------------------------------------------------------------
    def test_query_forms(self, store: Backend) -> None:
        store.update(f'INSERT DATA {{ GRAPH <{G1}> {{ <{EX}s> <{EX}p> "v", 3 . }} }}')
        assert sorted_rows(store.query(f"SELECT ?o WHERE {{ <{EX}s> <{EX}p> ?o }}")) == [
            ('"3"^^<http://www.w3.org/2001/XMLSchema#integer>',), ('"v"',)]
        ask = store.query(f"ASK {{ <{EX}s> <{EX}p> 3 }}")
        assert isinstance(ask, ox.QueryBoolean) and bool(ask)
        construct = store.query(f"CONSTRUCT {{ ?s <{EX}q> ?o }} WHERE {{ ?s <{EX}p> ?o }}")
        assert isinstance(construct, ox.QueryTriples)
        assert {str(t.object) for t in construct} == {'"v"', '"3"^^<http://www.w3.org/2001/XMLSchema#integer>'}
        with pytest.raises(SyntaxError):
            store.query("SELEC ?x WHERE { ?x ?y ?z }")
        with pytest.raises(SyntaxError):
            store.update("INSERT DAT { }")

    def test_substitutions(self, store: Backend) -> None:
        store.update(f'INSERT DATA {{ GRAPH <{G1}> {{ <{EX}a> <{EX}label> "Trust in link workers" . '
                     f'<{EX}b> <{EX}label> "Stigma" . <{EX}a> <{EX}cites> <{EX}b> }} }}')
        q = f"""SELECT ?s ?keyword WHERE {{ ?s <{EX}label> ?l
                FILTER(CONTAINS(LCASE(?l), LCASE(?keyword))) }}"""
        got = rows(store.query(q, substitutions={ox.Variable("keyword"): ox.Literal("trust")}))
        assert got == [(ox.NamedNode(EX + "a"), ox.Literal("trust"))]
        got = rows(store.query(f"SELECT ?c ?t WHERE {{ ?c <{EX}cites> ?t }}",
                               substitutions={ox.Variable("c"): ox.NamedNode(EX + "a")}))
        assert got == [(ox.NamedNode(EX + "a"), ox.NamedNode(EX + "b"))]

    def test_dataset_parameters(self, store: Backend) -> None:
        store.update(f"INSERT DATA {{ GRAPH <{G1}> {{ <{EX}s> <{EX}p> 1 }} GRAPH <{G2}> {{ <{EX}s> <{EX}p> 2 }} }}")
        q = f"SELECT ?o WHERE {{ <{EX}s> <{EX}p> ?o }}"
        assert len(rows(store.query(q))) == 2  # the union of the named graphs
        assert rows(store.query(q, default_graph=[G1])) == [(ox.Literal(1),)]
        assert rows(store.query(q, union=False)) == []
        got = rows(store.query("SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", named_graphs=[G2]))
        assert got == [(ox.NamedNode(G2),)]

    # -- writes ---------------------------------------------------------------------------------------
    def test_replace_graph_replaces(self, store: Backend) -> None:
        store.replace_graph(G1, f'<{EX}s> <{EX}p> "old" .\n<{EX}s> <{EX}p> "both" .\n'.encode())
        store.replace_graph(G1, f'<{EX}s> <{EX}p> "new" .\n<{EX}s> <{EX}p> "both" .\n'.encode())
        assert {str(q.object) for q in store.quads()} == {'"new"', '"both"'}
        assert store.has_graph(G1) and store.named_graphs() == [G1]
        store.drop_graph(G1)
        assert not store.has_graph(G1) and store.quad_count() == 0

    def test_large_graph_and_blank_nodes(self, store: Backend) -> None:
        """More triples than one chunk (remote stores stage and MOVE), with blank nodes that must stay shared."""
        if isinstance(store, RemoteStore):
            store.chunk = 40
        lines = [f'<{EX}s{i}> <{EX}p> "{i}" .' for i in range(150)]
        lines += [f"<{EX}s0> <{EX}q> _:x .", f'_:x <{EX}p> "inside" .', f"_:x <{EX}r> _:y .", f'_:y <{EX}p> "1" .']
        data = ("\n".join(lines) + "\n").encode()
        store.replace_graph(G1, data)
        expected = [ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(G1))
                    for t in ox.parse(data, ox.RdfFormat.N_TRIPLES)]
        assert canonical(store.quads()) == canonical(expected)
        store.replace_graph(G1, lines[0].encode())
        assert store.quad_count() == 1 and store.named_graphs() == [G1]

    def test_non_ascii_round_trip(self, store: Backend) -> None:
        text = "“good” practice — café 😀 ‘link worker’"
        store.replace_graph(G1, f"<{EX}s> <{EX}p> {ox.Literal(text)} .\n".encode())
        assert rows(store.query(f"SELECT ?o WHERE {{ <{EX}s> <{EX}p> ?o }}")) == [(ox.Literal(text),)]

    def test_dump_one_graph_and_all(self, store: Backend) -> None:
        store.update(f"INSERT DATA {{ GRAPH <{G1}> {{ <{EX}s> <{EX}p> 1 }} GRAPH <{G2}> {{ <{EX}s> <{EX}p> 2 }} }}")
        buf = io.BytesIO()
        store.dump(buf, ox.RdfFormat.N_TRIPLES, G2)
        assert [str(t.object) for t in ox.parse(buf.getvalue(), ox.RdfFormat.N_TRIPLES)] == [
            '"2"^^<http://www.w3.org/2001/XMLSchema#integer>']
        buf = io.BytesIO()
        store.dump(buf, ox.RdfFormat.N_QUADS)
        assert set(ox.parse(buf.getvalue(), ox.RdfFormat.N_QUADS)) == store.quads()

    def test_backup_restore_round_trip(self, seeded: Backend, tmp_path: Path) -> None:
        before = canonical(seeded.quads())
        manifest = seeded.backup(tmp_path / "backup")
        assert manifest["quads"] == len(before)
        seeded.clear()
        assert seeded.quad_count() == 0
        assert seeded.restore(tmp_path / "backup") == len(before)
        assert canonical(seeded.quads()) == before
        with pytest.raises(StoreError):
            seeded.backup(tmp_path / "backup")  # never overwrites a backup

    def test_restore_refuses_a_damaged_backup(self, store: Backend, tmp_path: Path) -> None:
        store.update(f"INSERT DATA {{ GRAPH <{G1}> {{ <{EX}s> <{EX}p> 1 }} }}")
        store.backup(tmp_path / "b")
        manifest = json.loads((tmp_path / "b/manifest.json").read_text())
        manifest["sha256"] = "0" * 64
        (tmp_path / "b/manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(StoreError):
            store.restore(tmp_path / "b")
        assert store.quad_count() == 1  # nothing was cleared

    def test_restore_refuses_a_truncated_backup_before_touching_the_store(self, store: Backend,
                                                                          tmp_path: Path) -> None:
        """A backup cut short whose manifest was made to match (checksum recomputed) is parsed whole before
        anything is dropped: the store keeps every quad."""
        store.update(f"INSERT DATA {{ GRAPH <{G1}> {{ <{EX}s> <{EX}p> 1, 2, 3 }} "
                     f"GRAPH <{G2}> {{ <{EX}s> <{EX}p> 4 }} }}")
        store.backup(tmp_path / "b")
        before = store.quads()
        data = tmp_path / "b/quads.nq"
        data.write_bytes(data.read_bytes()[:-20])  # the last quad loses its end
        manifest = json.loads((tmp_path / "b/manifest.json").read_text())
        manifest["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
        (tmp_path / "b/manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(StoreError):
            store.restore(tmp_path / "b")
        assert store.quads() == before

    def test_restore_replaces_the_content_and_leaves_no_staging_graph(self, store: Backend, tmp_path: Path) -> None:
        store.update(f"INSERT DATA {{ GRAPH <{G1}> {{ <{EX}s> <{EX}p> 1 }} }}")
        store.backup(tmp_path / "b")
        expected = store.quads()
        store.update(f"INSERT DATA {{ GRAPH <{G2}> {{ <{EX}s> <{EX}p> 2 }} GRAPH <{G1}> {{ <{EX}s> <{EX}p> 3 }} }}")
        assert store.restore(tmp_path / "b") == 1
        assert store.quads() == expected and store.named_graphs() == [G1]
        assert store.remove_staging() == []

    def test_quads_for_pattern_through_ox(self, store: Backend) -> None:
        """`store.ox.quads_for_pattern` (the linked-data pages' path) answers as pyoxigraph does."""
        s, o = ox.NamedNode(EX + "s"), ox.NamedNode(EX + "o")
        store.update(f"INSERT DATA {{ GRAPH <{G1}> {{ <{EX}s> <{EX}p> <{EX}o>, 1 . <{EX}x> <{EX}p> <{EX}o> }} "
                     f"GRAPH <{G2}> {{ <{EX}s> <{EX}q> \"two\" }} }}")
        everything = store.quads()
        for pattern in ([s, None, None, None], [None, None, o, None], [s, None, None, ox.NamedNode(G2)],
                        [None, ox.NamedNode(EX + "p"), None, None], [s, ox.NamedNode(EX + "p"), o, None],
                        [None, None, None, None]):
            expected = {q for q in everything if all(t is None or t == v for t, v in zip(pattern, q, strict=True))}
            assert set(store.ox.quads_for_pattern(*pattern)) == expected, pattern

    def test_dump_through_ox(self, store: Backend) -> None:
        """`store.ox.dump(out, format)` (the web app's /dump) writes every quad, as pyoxigraph's Store.dump."""
        store.update(f"INSERT DATA {{ GRAPH <{G1}> {{ <{EX}s> <{EX}p> 1 }} GRAPH <{G2}> {{ <{EX}s> <{EX}p> 2 }} }}")
        for fmt in (ox.RdfFormat.N_QUADS, ox.RdfFormat.TRIG):
            buf = io.BytesIO()
            store.ox.dump(buf, fmt)
            assert set(ox.parse(buf.getvalue(), fmt)) == store.quads()


class TestEmbeddedStore(BackendSuite):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Backend]:
        yield EvidenceStore(tmp_path / "store")


class TestOxigraphServer(BackendSuite):
    @pytest.fixture
    def store(self, oxigraph_server: OxigraphServer) -> Iterator[Backend]:
        remote = RemoteStore(oxigraph_server.query_url)
        assert remote.dialect == "oxigraph"
        remote.clear()
        yield remote
        remote.clear()
        remote.close()


class TestVirtuoso(BackendSuite):
    booleans_as_integers = True
    # Only with their examples' parameters: after the catalog's unparameterised queries (all batches' changes,
    # all chains...), Virtuoso 7.2 (07.20.3229) crashed (segfault, in dmesg) in a later test of this class in
    # 4 of 10 runs; asked with their examples only, in 0 of 10. cmo-chains without a start also counts no CMOC
    # between a chain's ends there (README). The examples bind some parameters and leave others unbound, which
    # is what cmocs-by-framework and documents needed rewriting for.
    without_parameters = False

    @pytest.fixture
    def store(self, virtuoso_server: VirtuosoServer) -> Iterator[Backend]:
        remote = RemoteStore(virtuoso_server.query_url, virtuoso_server.update_url,
                             user=virtuoso_server.user, password=virtuoso_server.password)
        assert remote.dialect == "virtuoso"
        remote.clear()
        yield remote
        remote.clear()
        remote.close()


def test_inject_values_skips_comments_strings_iris_and_templates() -> None:
    subs = {ox.Variable("k"): ox.Literal("x")}
    q = '# a comment with { braces }\nPREFIX e: <http://e/x>\nSELECT (?a < ?b AS ?k) WHERE { ?s ?p "{" }'
    assert inject_values(q, subs).endswith('WHERE { VALUES (?k) { ("x") }  ?s ?p "{" }')
    c = "CONSTRUCT { ?s ?p ?k } WHERE { ?s ?p ?o }"
    assert inject_values(c, subs) == 'CONSTRUCT { ?s ?p ?k } WHERE { VALUES (?k) { ("x") }  ?s ?p ?o }'


def _cmokg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "cmokg"), *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_push_backup_restore_commands(oxigraph_server: OxigraphServer, seed_store_path: Path,
                                      seed_evidence_store: EvidenceStore, tmp_path: Path) -> None:
    """`cmokg push` publishes and verifies; `backup` from the endpoint and `restore` into a new embedded store
    give back the same quad set."""
    remote = RemoteStore(oxigraph_server.query_url)
    remote.clear()
    pushed = _cmokg("push", "--endpoint", oxigraph_server.query_url, "--store", str(seed_store_path),
                    "--chunk", "100")
    assert pushed.returncode == 0, pushed.stderr
    assert canonical(remote.quads()) == canonical(seed_evidence_store.quads())
    backed = _cmokg("backup", str(tmp_path / "bk"), "--endpoint", oxigraph_server.query_url)
    assert backed.returncode == 0, backed.stderr
    restored = _cmokg("restore", str(tmp_path / "bk"), "--store", str(tmp_path / "restored"))
    assert restored.returncode == 0, restored.stderr
    assert canonical(EvidenceStore(tmp_path / "restored", read_only=True).quads()) == canonical(
        seed_evidence_store.quads())
    again = _cmokg("backup", str(tmp_path / "bk"), "--store", str(seed_store_path))
    assert again.returncode == 2 and "exists" in again.stderr
    remote.clear()


def test_web_app_configured_with_an_endpoint_serves_the_remote_store(oxigraph_server: OxigraphServer,
                                                                     seed_nquads: bytes) -> None:
    """CMOKG_ENDPOINT alone (as `cmokg serve --endpoint` and the environment set it) selects the remote store."""
    from webapp import create_app

    remote = RemoteStore(oxigraph_server.query_url)
    remote.clear()
    remote.add_quads(seed_nquads)
    app = create_app({"CMOKG_ENDPOINT": oxigraph_server.query_url, "CMOKG_QUERY_WORKERS": 0, "TESTING": True})
    assert isinstance(app.extensions["cmokg_store"], RemoteStore)
    response = app.test_client().get("/sparql", query_string={
        "query": "SELECT (COUNT(*) AS ?n) WHERE { ?c a <https://w3id.org/cmokg/ontology#CMOConfiguration> }"},
        headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.data
    assert rows(ox.parse_query_results(response.data, ox.QueryResultsFormat.JSON)) == [(ox.Literal(49),)]
    remote.clear()


def test_web_app_on_a_remote_store(oxigraph_server: OxigraphServer, seed_nquads: bytes) -> None:
    """The web app's SPARQL endpoint answers from the remote store (CMOKG_STORE_OBJECT = a RemoteStore)."""
    from webapp import create_app

    remote = RemoteStore(oxigraph_server.query_url)
    remote.clear()
    remote.add_quads(seed_nquads)
    app = create_app({"CMOKG_STORE_OBJECT": remote, "CMOKG_QUERY_WORKERS": 0, "TESTING": True})
    response = app.test_client().get("/sparql", query_string={
        "query": "SELECT (COUNT(*) AS ?n) WHERE { ?c a <https://w3id.org/cmokg/ontology#CMOConfiguration> }"},
        headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.data
    got = rows(ox.parse_query_results(response.data, ox.QueryResultsFormat.JSON))
    assert got == [(ox.Literal(49),)]
    remote.clear()
