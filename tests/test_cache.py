"""The result cache of the query pool (webapp.executor): hits, the byte budget, and invalidation by writes.

The integration tests run the real app on a real on-disk store with a real query worker process; a write
through SPARQL Update, and a write that only holds the app's write lock (as a web import does), must both
make the next answer reflect the store, never a cached one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from flask import Flask
from flask.testing import FlaskClient

from graph.store import EvidenceStore
from webapp import create_app, get_pool
from webapp.executor import Job, Outcome, ResultCache, cache_key, cacheable

TOKEN = "cache-test-token"
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s <http://example.org/p> ?o }"
JSON = "application/sparql-results+json"


def _outcome(size: int, status: int = 200) -> Outcome:
    return Outcome(status, "text/plain", b"x" * size)


def _put(cache: ResultCache, key: tuple[object, ...], outcome: Outcome) -> None:
    """Put twice: an answer is admitted on its key's second asking."""
    cache.put(key, outcome)
    cache.put(key, outcome)


def test_cache_hit_returns_the_stored_answer(tmp_path: Path) -> None:
    cache = ResultCache(1000, tmp_path)
    key = cache_key(0, Job(COUNT, accept=JSON))
    assert cache.get(key) is None
    _put(cache, key, _outcome(10))
    got = cache.get(key)
    assert got is not None and got.body == b"x" * 10
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_one_off_query_is_not_admitted(tmp_path: Path) -> None:
    cache = ResultCache(1000, tmp_path)
    once, twice = cache_key(0, Job("ASK { ?s ?p 1 }")), cache_key(0, Job("ASK { ?s ?p 2 }"))
    cache.put(once, _outcome(10))
    _put(cache, twice, _outcome(10))
    assert cache.get(once) is None and cache.get(twice) is not None


def test_key_separates_format_dataset_and_row_limit() -> None:
    base = Job(COUNT, accept=JSON)
    variants = [Job(COUNT, accept="text/csv"), Job(COUNT, accept=JSON, format_param="xml"),
                Job(COUNT, accept=JSON, default_graph=["http://g"]), Job(COUNT, accept=JSON, named_graphs=[]),
                Job(COUNT, accept=JSON, union=False), Job(COUNT, accept=JSON, max_rows=5),
                Job(COUNT + " ", accept=JSON)]
    keys = {cache_key(0, base)} | {cache_key(0, v) for v in variants} | {cache_key(1, base)}
    assert len(keys) == len(variants) + 2


def test_key_separates_substitutions_by_value_and_kind() -> None:
    """Catalog parameters travel as substitutions: a cached answer for keyword=trust was served for
    keyword=isolation."""
    q = "SELECT ?x WHERE { ?x ?p ?keyword }"
    variants = [Job(q, accept=JSON, substitutions=subs) for subs in (
        (), (("keyword", ox.Literal("trust")),), (("keyword", ox.Literal("isolation")),),
        (("keyword", ox.Literal("trust", language="en")),), (("keyword", ox.NamedNode("http://x/trust")),),
        (("keyword", ox.Literal("http://x/trust")),), (("other", ox.Literal("trust")),),
    )]
    assert len({cache_key(0, v) for v in variants}) == len(variants)
    same = Job(q, accept=JSON, substitutions=(("keyword", ox.Literal("trust")),))
    assert cache_key(0, same) == cache_key(0, variants[1])  # equal values still hit


def test_key_changes_with_every_field_of_the_job() -> None:
    """The key is made from every field a worker receives: none can be forgotten again."""
    base = Job(COUNT)
    changed = {"sparql": COUNT + " ", "accept": "text/csv", "format_param": "xml", "base_iri": "http://b/",
               "default_graph": ["http://g"], "named_graphs": ["http://g"], "union": False, "max_rows": 5,
               "substitutions": (("n", ox.Literal(1)),)}
    assert set(changed) == {f.name for f in dataclasses.fields(Job)}
    for name, value in changed.items():
        assert cache_key(0, dataclasses.replace(base, **{name: value})) != cache_key(0, base), name


def test_budget_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = ResultCache(100, tmp_path)
    a, b, c = (cache_key(0, Job(f"ASK {{ ?s ?p {i} }}")) for i in range(3))
    _put(cache, a, _outcome(40))
    _put(cache, b, _outcome(40))
    assert cache.get(a) is not None  # a is now the most recent
    _put(cache, c, _outcome(40))
    assert cache.size <= 100 and len(cache) == 2
    assert len(list(tmp_path.iterdir())) == 2  # the evicted answer's file is gone too
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None


def test_too_large_errors_and_stale_generations_are_not_kept(tmp_path: Path) -> None:
    cache = ResultCache(100, tmp_path)
    _put(cache, cache_key(0, Job("ASK {}")), _outcome(101))
    _put(cache, cache_key(0, Job("ASK { ?s ?p ?o }")), _outcome(5, status=503))
    cache.clear(1)
    _put(cache, cache_key(0, Job("SELECT * {}")), _outcome(5))  # started before the write, finished after
    assert len(cache) == 0 and cache.size == 0 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["SELECT (NOW() AS ?t) {}", "SELECT (rand() AS ?r) {}",
                                  "SELECT * { SERVICE <http://x/sparql> { ?s ?p ?o } }",
                                  "SELECT (STRUUID() AS ?u) {}",
                                  "CONSTRUCT { _:b ?p ?o } WHERE { BIND(BNODE() AS ?b) }"])
def test_answers_that_do_not_depend_on_the_store_alone_are_not_cacheable(text: str) -> None:
    assert not cacheable(Job(text))


def test_store_queries_are_cacheable() -> None:
    assert cacheable(Job("SELECT ?now WHERE { ?s <http://example.org/nowhere> ?now }"))


# -- the real app: worker process, SPARQL Update, write lock --------------------------------------------


@pytest.fixture()
def app(tmp_path: Path) -> Iterator[Flask]:
    path = tmp_path / "store"
    store = EvidenceStore(path)
    store.add_quads(b"<http://example.org/a> <http://example.org/p> <http://example.org/b> <http://g/1> .\n")
    store.flush()
    del store
    app = create_app({"CMOKG_STORE": str(path), "CMOKG_UPDATE_TOKEN": TOKEN, "CMOKG_QUERY_WORKERS": 1,
                      "CMOKG_RESULT_CACHE": 1 << 20, "TESTING": True})
    yield app
    with app.app_context():
        get_pool().close()


def _count(client: FlaskClient) -> int:
    r = client.get("/sparql", query_string={"query": COUNT}, headers={"Accept": JSON})
    assert r.status_code == 200
    return int(json.loads(r.data)["results"]["bindings"][0]["n"]["value"])


def test_repeated_query_is_a_hit(app: Flask) -> None:
    client = app.test_client()
    assert [_count(client) for _ in range(3)] == [1, 1, 1]
    with app.app_context():
        cache = get_pool().cache
    assert (cache.hits, cache.misses) == (1, 2)  # admitted on the second asking, served on the third


def test_sparql_update_invalidates(app: Flask) -> None:
    client = app.test_client()
    assert _count(client) == 1 and _count(client) == 1  # now cached
    r = client.post("/sparql", data={"update": "INSERT DATA { GRAPH <http://g/2> { <http://example.org/c> "
                                               "<http://example.org/p> <http://example.org/d> } }"},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 204
    assert _count(client) == 2
    with app.app_context():
        pool = get_pool()
    assert pool.generation == 2  # one snapshot at start, one for the update (not two)


def test_any_write_under_the_write_lock_invalidates(app: Flask) -> None:
    """A writer that only holds the lock (as /review's import does) still makes its write visible."""
    client = app.test_client()
    assert _count(client) == 1 and _count(client) == 1  # now cached
    with app.app_context():
        store = app.extensions["cmokg_store"]
        with app.extensions["cmokg_write_lock"]:
            store.add_quads(b"<http://example.org/e> <http://example.org/p> <http://example.org/f> <http://g/3> .\n")
            store.flush()
    assert _count(client) == 2
