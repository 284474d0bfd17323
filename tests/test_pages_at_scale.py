"""Pages that must stay usable as the evidence base grows: regressions of the query rewrites that took the home
page, the CMOC list, the framework, a review, the search and the maps from seconds (up to 28 s) to about one at
the benchmark's 100k CMOCs. The timings are not tested; what each rewrite must keep is: the same answers, in
the same order, on the embedded store and on a remote one, each checked against an independent answer on the
seed graph (plain patterns, counted and sorted in Python).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest
from flask import Flask
from flask.testing import FlaskClient
from servers import OxigraphServer, require
from test_browse import ID, page, pairs, path_of

from graph.cli import main
from graph.ordering import iri_order
from graph.store import EvidenceStore
from webapp import browse, create_app, maps, memo


@pytest.fixture(autouse=True)
def nothing_kept(app: Flask) -> None:
    """Each test computes its pages afresh (webapp.memo keeps answers per store version, and the seed app is
    shared by the module)."""
    app.extensions.pop(memo.KEY, None)


# -- IRI order ------------------------------------------------------------------------------------------------


def test_iri_order_sorts_as_order_by_the_iri() -> None:
    """The key must order IRIs exactly as ORDER BY ?c does, also an IRI before the longer ones it begins (a key
    appending any character above the space, "~" say, would put .../a~ after .../a-b)."""
    iris = [ID + tail for tail in ("a", "a-b", "a/b", "a0", "aé", "A", "a%20b", "ab", "a-", "研究", "a.b", "a_b")]
    values = " ".join(f"<{i}>" for i in iris)
    store = ox.Store()

    def ordered(key: str) -> list[str]:
        result = store.query(f"SELECT ?c WHERE {{ VALUES ?c {{ {values} }} }} ORDER BY {key}")
        assert isinstance(result, ox.QuerySolutions)
        return [str(row["c"].value) for row in result]

    assert ordered(iri_order("c")) == ordered("?c") == sorted(iris)


def test_cmoc_lists_page_in_iri_order(client: FlaskClient, seed_evidence_store: EvidenceStore,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages of /cmocs, filtered or not, list the CMOCs once each, in IRI order from the first page to the
    last (the page query sorts by `iri_order`; the rows of a page are then described by IRI)."""
    monkeypatch.setattr(browse, "PAGE_SIZE", 4)
    store = seed_evidence_store
    lists = {
        "/cmocs": {c for (c,) in pairs(store, "?c a cmo:CMOConfiguration", "c")},
        "/cmocs?setting=link-workers": {c for (c,) in pairs(
            store, f"?c cmo:inSetting <{ID}concept/setting/link-workers>", "c")},
        "/cmocs?dimension=interpersonal-relations": {c for (c,) in pairs(
            store, f"?c cmo:drawsOn/skos:broader <{ID}concept/framework/interpersonal-relations>", "c")},
    }
    for url, expected in lists.items():
        listed: list[str] = []
        for number in range(1, 100):
            doc = page(client, f"{url}{'&' if '?' in url else '?'}page={number}")
            listed += [row.attrs["data-cmoc"] for row in doc.one("table", id="cmocs").find_all("tr", data_cmoc=None)]
            if not doc.find_all("a", rel="next"):
                break
        assert listed == sorted(expected), url
        assert len(expected) > 4, url


# -- the framework ------------------------------------------------------------------------------------------


def test_framework_shows_the_first_cmocs_by_iri_with_their_labels(client: FlaskClient,
                                                                   seed_evidence_store: EvidenceStore,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each resource shows its first PER_RESOURCE CMOCs by IRI, each named by its own label (the labels are read
    for all resources at once, after the CMOCs: a label must not land on another resource's CMOC)."""
    monkeypatch.setattr(browse, "PER_RESOURCE", 2)
    store = seed_evidence_store
    draws: dict[str, set[str]] = defaultdict(set)
    for c, r in pairs(store, "?c cmo:drawsOn ?r", "c", "r"):
        draws[r].add(c)
    labels = {c: label for c, label in pairs(store, "?c a cmo:CMOConfiguration OPTIONAL { ?c cmo:authorLabel ?l }",
                                             "c", "l")}
    keys = {c: key for c, key in pairs(store, "?c a cmo:CMOConfiguration ; dcterms:identifier ?k", "c", "k")}
    doc = page(client, "/framework")
    shown = 0
    for section in doc.find_all("section", class_="dimension"):
        for dl in section.find_all("dl"):
            terms = [el for el in dl.children if el.tag in ("dt", "dd")]
            for dt, dd in zip(terms[::2], terms[1::2], strict=True):
                r = dt.attrs["data-resource"]
                links = dd.find_all("a", class_="cmoc")
                assert [a.attrs["data-iri"] for a in links] == sorted(draws[r])[:2], r
                for a in links:
                    c = a.attrs["data-iri"]
                    assert a.text == (labels.get(c) or keys.get(c) or c.rsplit("/", 1)[-1]), c
                    assert a.attrs["href"] == path_of(c)
                shown += len(links)
    assert shown == sum(min(len(v), 2) for v in draws.values()) > 2


# -- search ---------------------------------------------------------------------------------------------------

WORDS = ("trust", "Link Worker", "funding", "social", "zzz-nowhere")


def _found(client: FlaskClient, word: str) -> list[str]:
    found: list[str] = []
    for number in range(1, 100):
        doc = page(client, f"/search?q={word}&page={number}")
        found += [li.attrs["data-cmoc"] for li in doc.find_all("li", class_="hit")]
        if not doc.find_all("a", rel="next"):
            return found
    raise AssertionError(f"more than 99 pages for {word!r}")


@pytest.mark.parametrize("lateral_max", [0, 1, 10_000])
def test_search_finds_the_same_by_lookups_and_by_hash_joins(client: FlaskClient, seed_evidence_store: EvidenceStore,
                                                            monkeypatch: pytest.MonkeyPatch, lateral_max: int) -> None:
    """Few matching texts are followed back to their CMOCs by lookups, many by hash joins with every CMOC's parts
    and quotes (LATERAL_MAX between them): both must find what an independent match finds, in IRI order."""
    monkeypatch.setattr(browse, "LATERAL_MAX", lateral_max)
    texts = pairs(seed_evidence_store, """?c a cmo:CMOConfiguration .
        { ?c cmo:hasContext/cmo:description ?t } UNION { ?c cmo:hasMechanism/cmo:hasResource/cmo:description ?t }
        UNION { ?c cmo:hasMechanism/cmo:hasReasoning/cmo:description ?t } UNION { ?c cmo:hasOutcome/cmo:description ?t }
        UNION { ?e cmo:supports|cmo:refutes ?c ; oa:hasTarget/oa:hasSelector/oa:exact ?t }""", "c", "t")
    for word in WORDS:
        expected = sorted({c for c, t in texts if word.lower() in t.lower()})
        assert _found(client, word) == expected, word
    assert sum(len(_found(client, w)) for w in WORDS) > 10


def test_paged_lists_are_the_same_on_a_remote_store(app: Flask, seed_store_path: Path,
                                                   tmp_path_factory: pytest.TempPathFactory,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """From the app's own store a list's pages are slices of the whole list kept in IRI order (webapp.memo); from a
    remote store, which nothing is kept for, each page is asked for (ORDER BY `iri_order`): every page must be
    the same, byte for byte. And the search: a remote store gets the text as a VALUES block at the top of the
    WHERE clause, which a FILTER in a nested group does not see: written so, the hash-join search found nothing
    on the Oxigraph server (the first version of the rewrite) while it found 11 CMOCs in the embedded store."""
    require("oxigraph")
    monkeypatch.setattr(browse, "LATERAL_MAX", 0)
    monkeypatch.setattr(browse, "PAGE_SIZE", 4)
    monkeypatch.setattr(maps, "NETWORK_PAGE", 7)
    urls = [f"/cmocs?page={n}" for n in range(1, 14)] + [f"/maps/network?page={n}" for n in range(1, 8)] + [
        "/cmocs?setting=link-workers&page=2", "/cmocs?dimension=interpersonal-relations&page=3",
        "/search?q=trust", "/search?q=link&page=2", "/maps/network.json?page=2", "/cmocs?page=14"]
    with OxigraphServer(tmp_path_factory.mktemp("paged-remote") / "db") as server:
        assert main(["push", "--endpoint", server.query_url, "--store", str(seed_store_path)]) == 0
        remote = create_app({"TESTING": True, "CMOKG_ENDPOINT": server.query_url, "CMOKG_QUERY_WORKERS": 0})
        for url in urls:
            here, there = app.test_client().get(url), remote.test_client().get(url)
            assert (there.status_code, there.data) == (here.status_code, here.data), url
        assert b'class="hit"' in app.test_client().get("/search?q=trust").data
        assert app.test_client().get("/cmocs?page=14").status_code == 400  # 49 CMOCs: the last page is 13


# -- answers kept until the next write ------------------------------------------------------------------------


@pytest.fixture
def writable(seed_evidence_store: EvidenceStore) -> EvidenceStore:
    """An in-memory copy of the seed graph, to write to."""
    store = EvidenceStore()
    store.ox.extend(seed_evidence_store.ox.quads_for_pattern(None, None, None, None))
    return store


def test_whole_store_answers_are_computed_once_per_store_version(writable: EvidenceStore,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The home page's counts (len() of the store reads every quad: 1 s at 100k CMOCs), the framework, the matrix
    (page and SVG), a search and the CMOCs in IRI order (each page of /cmocs and of the network a slice of them)
    are computed once per version of the app's store and kept
    until the next write under the app's write lock, which every writer of that store holds; the write shows on
    the next visit."""
    app = create_app({"TESTING": True, "CMOKG_STORE_OBJECT": writable, "CMOKG_QUERY_WORKERS": 0})
    calls: dict[str, int] = defaultdict(int)

    def counting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(writable, "quad_count", counting("home", writable.quad_count))
    monkeypatch.setattr(browse, "_framework", counting("framework", browse._framework))
    monkeypatch.setattr(browse, "matching_cmocs", counting("search", browse.matching_cmocs))
    monkeypatch.setattr(maps, "evidence_matrix", counting("matrix", maps.evidence_matrix))
    monkeypatch.setattr(browse, "_cmoc_list", counting("cmocs", browse._cmoc_list))
    monkeypatch.setattr(browse, "PAGE_SIZE", 4)
    monkeypatch.setattr(maps, "NETWORK_PAGE", 5)
    client = app.test_client()
    urls = ["/", "/framework", "/maps/matrix", "/maps/matrix.svg", "/search?q=trust", "/search?q=trust&page=2",
            "/cmocs", "/cmocs?page=2", "/maps/network?page=2", "/maps/network.json?page=3"]

    def visit() -> dict[str, bytes]:
        answers = {}
        for url in urls:
            r = client.get(url)
            assert r.status_code == 200, url
            answers[url] = r.data
        return answers

    def home_counts() -> dict[str, int]:
        doc = page(client, "/")
        return {a.attrs["data-count"]: int(a.text) for a in doc.find_all("a", data_count=None)}

    once = {"home": 1, "framework": 1, "matrix": 1, "search": 1, "cmocs": 1}  # the CMOC list: /cmocs and network
    first = visit()
    assert dict(calls) == once
    assert visit() == first and dict(calls) == once
    before = home_counts()
    assert before["quads"] == len(writable.ox)
    with app.extensions["cmokg_write_lock"]:
        writable.update("INSERT DATA { GRAPH <urn:x:g> { <urn:x:a> <urn:x:b> <urn:x:c> } }")
    visit()
    assert dict(calls) == {name: 2 for name in once}
    assert home_counts() == {**before, "quads": before["quads"] + 1}


def test_void_is_computed_once_per_store_version(writable: EvidenceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """/void's statistics scan every quad (~30 s at 100k CMOCs): computed once per store version, and a write
    shows in its counts on the next request."""
    from webapp import docs

    app = create_app({"TESTING": True, "CMOKG_STORE_OBJECT": writable, "CMOKG_QUERY_WORKERS": 0})
    calls = []
    compute = docs._void_triples
    monkeypatch.setattr(docs, "_void_triples", lambda: calls.append(1) or compute())
    client = app.test_client()

    def dataset_triples() -> int:
        r = client.get("/void.nt")
        assert r.status_code == 200
        counts = [int(t.object.value) for t in ox.parse(r.data, format=ox.RdfFormat.N_TRIPLES)
                  if t.predicate.value == "http://rdfs.org/ns/void#triples" and t.subject.value.endswith("#dataset")]
        assert len(counts) == 1
        return counts[0]

    before = dataset_triples()
    assert dataset_triples() == before and len(calls) == 1
    with app.extensions["cmokg_write_lock"]:
        writable.update("INSERT DATA { GRAPH <urn:x:g> { <urn:x:a> <urn:x:b> <urn:x:c> } }")
    assert dataset_triples() == before + 1 and len(calls) == 2


def test_the_memo_keeps_its_budget_and_one_version() -> None:
    kept = memo.Memo(budget=10)
    kept.put(1, "a", "A", 6)
    kept.put(1, "b", "B", 3)
    assert kept.get(1, "a") == (True, "A")  # a used last: b goes first
    kept.put(1, "c", "C", 4)
    assert [kept.get(1, k)[0] for k in "abc"] == [True, False, True] and kept.used == 10
    kept.put(1, "big", "X", 11)
    assert kept.get(1, "big") == (False, None)
    assert kept.get(2, "a") == (False, None), "another version of the store: nothing kept answers it"
    kept.put(2, "d", "D", 1)
    assert [kept.get(2, k)[0] for k in "acd"] == [False, False, True] and kept.used == 1


def test_nothing_is_kept_for_a_remote_store(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A remote store can change behind the app's back: its answers are computed on every visit."""
    require("oxigraph")
    with OxigraphServer(tmp_path_factory.mktemp("memo-remote") / "db") as server:
        assert main(["push", "--endpoint", server.query_url, "--store", str(seed_store_path)]) == 0
        remote = create_app({"TESTING": True, "CMOKG_ENDPOINT": server.query_url, "CMOKG_QUERY_WORKERS": 0})
        for url in ("/", "/framework", "/maps/matrix", "/search?q=trust"):
            assert remote.test_client().get(url).status_code == 200, url
        assert memo.KEY not in remote.extensions
