"""The query executor's serving path: one native serialization without a row limit, the same answers as the
row-limited path, long GET queries accepted by `cmokg serve`, and the result cache behind real gunicorn seeing
every SPARQL Update.
"""

from __future__ import annotations

import csv
import io
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pyoxigraph as ox
import pytest
import requests
from conformance.server import TOKEN, live_server

from graph.catalog import NamedQuery, bind, load_catalog
from webapp.executor import Job, run_job

ALL_CMOCS = """PREFIX cmo: <https://w3id.org/cmokg/ontology#>
SELECT ?cmoc ?label WHERE { ?cmoc a cmo:CMOConfiguration . OPTIONAL { ?cmoc cmo:authorLabel ?label } }
ORDER BY ?cmoc"""
JSON = "application/sparql-results+json"
SR = "{http://www.w3.org/2005/sparql-results#}"


def _rows(mime: str, body: bytes) -> list[tuple[str, ...]]:
    """Result rows as tuples of values, parsed per format (JSON, XML, CSV)."""
    if mime == JSON:
        data = json.loads(body)
        names = data["head"]["vars"]
        return [tuple(b.get(n, {}).get("value", "") for n in names) for b in data["results"]["bindings"]]
    if mime == "application/sparql-results+xml":
        root = ET.fromstring(body)
        names = [v.get("name") for v in root.iter(SR + "variable")]
        out = []
        for result in root.iter(SR + "result"):
            got = {b.get("name"): "".join(b.itertext()) for b in result.iter(SR + "binding")}
            out.append(tuple(got.get(n, "") for n in names))
        return out
    return [tuple(r) for r in list(csv.reader(io.StringIO(body.decode())))[1:]]


@pytest.mark.parametrize("mime", [JSON, "application/sparql-results+xml", "text/csv"])
def test_unlimited_and_limited_paths_give_the_same_rows(seed_store: ox.Store, mime: str) -> None:
    direct = run_job(seed_store, Job(ALL_CMOCS, accept=mime, max_rows=0))
    limited = run_job(seed_store, Job(ALL_CMOCS, accept=mime, max_rows=10_000))
    assert direct.status == limited.status == 200 and direct.mimetype == limited.mimetype == mime
    rows = _rows(mime, direct.body)
    assert len(rows) == 49 and rows == _rows(mime, limited.body)


def test_row_limit_still_refuses_a_larger_result(seed_store: ox.Store) -> None:
    outcome = run_job(seed_store, Job(ALL_CMOCS, accept=JSON, max_rows=10))
    assert outcome.status == 400 and b"CMOKG_MAX_ROWS" in outcome.body


@pytest.fixture(scope="module")
def server(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(seed_store_path, tmp_path_factory.mktemp("executor"), CMOKG_UPDATE_TOKEN=TOKEN,
                     CMOKG_QUERY_WORKERS="2") as url:
        yield url


def test_a_long_get_query_is_answered(server: str) -> None:
    """A catalog query of 5 KB by GET was refused with 414 by gunicorn's default request-line limit (4094
    bytes); the server's limit is gunicorn's largest finite one, 8190 (a longer query is 414: POST it)."""
    padding = "\n".join(f"# padding line {i} " + "x" * 60 for i in range(80))
    query = padding + "\n" + ALL_CMOCS
    line = len("GET /sparql?" + urlencode({"query": query}) + " HTTP/1.1")
    assert 6000 < line <= 8190, line
    r = requests.get(server + "/sparql", params={"query": query}, headers={"Accept": JSON}, timeout=30)
    assert r.status_code == 200
    assert len(_rows(JSON, r.content)) == 49


def test_cached_answer_follows_an_update(server: str) -> None:
    count = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <http://example.org/executor-test> { ?s ?p ?o } }"

    def n() -> int:
        r = requests.get(server + "/sparql", params={"query": count}, headers={"Accept": JSON}, timeout=30)
        assert r.status_code == 200
        return int(_rows(JSON, r.content)[0][0])

    assert [n(), n(), n()] == [0, 0, 0]  # the third from the cache
    r = requests.post(server + "/sparql", data={"update": "INSERT DATA { GRAPH <http://example.org/executor-test> "
                                                          "{ <http://example.org/a> <http://example.org/p> 1 } }"},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert r.status_code == 204
    assert n() == 1


def test_a_large_answer_is_sent_whole_by_gunicorn_from_its_file(server: str) -> None:
    """Over SPOOL_BYTES, an answer goes out through gunicorn's file wrapper: every row, the right length, and
    the same on the cached repeat."""
    graph = "http://example.org/executor-large"
    triples = " ".join(f"<http://example.org/s{i:04}> <http://example.org/p> \"value {i}\" ." for i in range(3000))
    r = requests.post(server + "/sparql", data={"update": f"INSERT DATA {{ GRAPH <{graph}> {{ {triples} }} }}"},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert r.status_code == 204
    listing = f"SELECT ?s ?o WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }} ORDER BY ?s"
    answers = []
    for _ in range(3):
        r = requests.get(server + "/sparql", params={"query": listing}, headers={"Accept": JSON}, timeout=60)
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.content)
        answers.append(_rows(JSON, r.content))
    assert len(answers[0]) == 3000 and answers[0][0] == ("http://example.org/s0000", "value 0")
    assert answers[0] == answers[1] == answers[2]


# -- the in-memory copy of a snapshot (CMOKG_MEMORY_QUADS) ----------------------------------------------


def _unordered(rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Rows in order, each GROUP_CONCAT cell as its sorted parts (the order of a group is undefined)."""
    return sorted(tuple(", ".join(sorted(v.split(", "))) for v in row) for row in rows)


def _example_job(q: NamedQuery) -> Job:
    """The catalog query with its example values pre-bound, as the web catalog sends it."""
    subs = tuple((v.value, t) for v, t in bind(q, q.example_values).items() if isinstance(t, ox.NamedNode | ox.Literal))
    return Job(q.text, accept=JSON, max_rows=0, substitutions=subs)


def _catalog_rows(store: ox.Store) -> dict[str, list[tuple[str, ...]]]:

    out = {}
    for name, q in load_catalog().items():
        outcome = run_job(store, _example_job(q))
        assert outcome.status == 200, (name, outcome.body)
        out[name] = _unordered(_rows(JSON, outcome.body))
    return out


def test_snapshot_copied_into_memory_answers_as_on_disk(seed_store_path: Path, tmp_path: Path) -> None:
    from webapp.executor import open_snapshot

    snapshot = tmp_path / "snapshot"
    live = ox.Store.read_only(str(seed_store_path))
    live.backup(str(snapshot))
    quads = len(live)
    copy = open_snapshot(str(snapshot), quads)
    disk = open_snapshot(str(snapshot), quads - 1)  # one quad over the limit: queried on disk
    assert len(copy) == len(disk) == quads
    # the copy is an in-memory store (it takes a write, which never reaches the snapshot); the disk one is
    # opened read-only and refuses it
    copy.update("INSERT DATA { <urn:x> <urn:y> <urn:z> }")
    with pytest.raises(RuntimeError, match="read-write"):
        disk.update("INSERT DATA { <urn:x> <urn:y> <urn:z> }")
    assert len(ox.Store.read_only(str(snapshot))) == quads
    copy.update("DELETE DATA { <urn:x> <urn:y> <urn:z> }")
    assert _catalog_rows(copy) == _catalog_rows(disk)
    assert len(open_snapshot(str(snapshot), 0)) == quads  # 0: always on disk


def test_pool_workers_answer_from_memory_copies(seed_store_path: Path, tmp_path: Path) -> None:
    """Workers started with a quad budget answer every catalog query as workers on disk do."""
    from webapp.executor import QueryPool

    store = ox.Store(str(tmp_path / "store"))
    store.bulk_extend(ox.Store.read_only(str(seed_store_path)))
    pools = [QueryPool(store, tmp_path / "store", 1, memory_quads=m) for m in (0, 10**6)]
    try:
        for name, q in load_catalog().items():
            on_disk, in_memory = (pool.run(_example_job(q), 60) for pool in pools)
            assert on_disk.status == in_memory.status == 200, name
            assert _unordered(_rows(JSON, on_disk.body)) == _unordered(_rows(JSON, in_memory.body)), name
        pools[1].store.update("INSERT DATA { GRAPH <urn:g> { <urn:x> a <https://w3id.org/cmokg/ontology#Review> } }")
        pools[1].refresh()  # a write: the worker copies the new snapshot at its next query
        ask = Job("ASK { <urn:x> a ?t }", accept=JSON, max_rows=0)
        assert json.loads(pools[1].run(ask, 60).body)["boolean"] is True
    finally:
        for pool in pools:
            pool.close()


# -- large answers travel by file; workers that grew are replaced ----------------------------------------

LISTING = "SELECT ?s ?o WHERE { ?s <urn:p> ?o } ORDER BY ?s"


@pytest.fixture()
def listing_store(tmp_path: Path) -> ox.Store:
    """3000 triples: a JSON listing of ~250 KB, over SPOOL_BYTES."""
    store = ox.Store(str(tmp_path / "store"))
    store.bulk_extend(ox.Quad(ox.NamedNode(f"urn:s{i:04}"), ox.NamedNode("urn:p"), ox.Literal(f"value {i}"),
                              ox.DefaultGraph()) for i in range(3000))
    store.flush()
    return store


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file())


def test_a_large_answer_is_spooled_sent_from_its_file_and_cached_as_one(listing_store: ox.Store,
                                                                         tmp_path: Path) -> None:
    from webapp.executor import SPOOL_BYTES, QueryPool

    expected = _rows(JSON, run_job(listing_store, Job(LISTING, accept=JSON)).body)
    assert len(expected) == 3000
    pool = QueryPool(listing_store, tmp_path / "store", 1, cache_bytes=10**7)
    try:
        for asking in range(3):
            outcome = pool.run(Job(LISTING, accept=JSON), 60)
            assert outcome.status == 200 and outcome.body == b"" and outcome.stream is not None, asking
            assert outcome.size() > SPOOL_BYTES
            assert _rows(JSON, outcome.read()) == expected, asking
            assert _files(pool.spool) == []  # handed over: nothing is left in the spool
            # admitted on the second asking: then one file in the cache, the third asking is a hit
            assert len(_files(pool.cache.directory)) == (0 if asking == 0 else 1), asking
        assert pool.cache.hits == 1
        listing_store.update("INSERT DATA { <urn:zzzz> <urn:p> \"last\" }")
        pool.refresh()  # a write empties the cache, files and all
        assert _files(pool.cache.directory) == [] and len(pool.cache) == 0
        assert len(_rows(JSON, pool.run(Job(LISTING, accept=JSON), 60).read())) == 3001
    finally:
        pool.close()


def test_a_small_answer_stays_in_memory(listing_store: ox.Store, tmp_path: Path) -> None:
    from webapp.executor import QueryPool

    pool = QueryPool(listing_store, tmp_path / "store", 1, cache_bytes=10**7)
    try:
        for _ in range(3):
            outcome = pool.run(Job("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", accept=JSON), 60)
            assert outcome.stream is None and _rows(JSON, outcome.body) == [("3000",)]
        assert pool.cache.hits == 1 and _files(pool.spool) == []
    finally:
        pool.close()


def test_a_killed_worker_leaves_no_spool_files(listing_store: ox.Store, tmp_path: Path) -> None:
    """A query stopped at its timeout while streaming rows into its spool file: the file goes with it."""
    from webapp.executor import QueryPool

    pool = QueryPool(listing_store, tmp_path / "store", 1)
    try:
        endless = Job("SELECT * WHERE { ?a <urn:p> ?x . ?b <urn:p> ?y . ?c <urn:p> ?z }", accept=JSON)
        first = pool.pids
        assert pool.run(endless, 2).status == 503
        deadline = time.monotonic() + 30
        while (pool.pids == first or _files(pool.spool)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pool.pids != first and _files(pool.spool) == []
        assert len(_rows(JSON, pool.run(Job(LISTING, accept=JSON), 60).read())) == 3000  # the new worker answers
    finally:
        pool.close()


def test_removing_a_workers_spool_files_spares_the_others(tmp_path: Path) -> None:
    """Spool files are named per worker, not per pid (which the system reuses)."""
    from webapp.executor import Spool

    ours, theirs = Spool(str(tmp_path / "a1b2")), Spool(str(tmp_path / "a1b2c3"))
    for spool in (ours, theirs):
        for _ in range(2):
            spool.emit("text/plain", lambda out: Path(out or "").write_bytes(b"x" * 70_000) and None)
    assert len(_files(tmp_path)) == 4
    Spool.remove(ours.prefix)
    assert [p.name for p in _files(tmp_path)] == ["a1b2c3-1.body", "a1b2c3-2.body"]


def test_a_worker_past_its_growth_budget_is_replaced_after_answering(listing_store: ox.Store,
                                                                       tmp_path: Path) -> None:
    from webapp.executor import QueryPool

    strict = QueryPool(listing_store, tmp_path / "store", 1, growth_bytes=1024)  # 1 KiB: every answer
    roomy = QueryPool(listing_store, tmp_path / "store", 1, growth_bytes=2**30)
    try:
        for pool, replaced in ((strict, True), (roomy, False)):
            seen = set(pool.pids)
            for _ in range(3):
                outcome = pool.run(Job(LISTING, accept=JSON), 60)
                assert outcome.retire is replaced and len(_rows(JSON, outcome.read())) == 3000
                deadline = time.monotonic() + 30
                while replaced and (not pool.pids or set(pool.pids) <= seen) and time.monotonic() < deadline:
                    time.sleep(0.05)
                seen |= set(pool.pids)
            assert len(seen) == (4 if replaced else 1)
    finally:
        strict.close()
        roomy.close()
