"""Browse pages on the seed graph: home, reviews, a review page, the framework, the CMOC list and search.

Pages are parsed as HTML (elements found by their data- attributes and classes) and what they show is compared
with the same question put to the store directly, in SPARQL written independently of the pages' queries (plain
patterns, counted in Python). Bad parameters must be 400s (404 for a review that is not there), and hostile
search text must be bound, not pasted: it finds nothing and leaves the store unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyoxigraph as ox
import pytest
from flask import Flask
from flask.testing import FlaskClient
from servers import OxigraphServer, require

from graph.cli import main
from graph.namespaces import BASE, sparql_prologue
from graph.store import EvidenceStore
from webapp import browse, create_app

ID = BASE + "id/"
VOID = {"area", "br", "hr", "img", "input", "link", "meta", "source", "wbr", "col", "embed", "param", "track"}


# -- HTML as a tree of elements -------------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str | None) -> list[Element]:
        """Descendants with the tag and attributes (value None: the attribute is present; `class_`: one class)."""
        found = []
        for el in self.iter():
            if tag is not None and el.tag != tag:
                continue
            ok = True
            for name, value in attrs.items():
                if name == "class_":
                    ok = ok and value in el.attrs.get("class", "").split()
                elif value is None:
                    ok = ok and name.replace("_", "-") in el.attrs
                else:
                    ok = ok and el.attrs.get(name.replace("_", "-")) == value
            if ok:
                found.append(el)
        return found

    def one(self, tag: str | None = None, **attrs: str | None) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(el)
        if tag not in VOID:
            self.stack.append(el)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        for el in self.stack:
            el.parts.append(data)


def parse_html(text: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


# -- fixtures and the independent answers ------------------------------------------------------------------


def pairs(store: EvidenceStore, where: str, *names: str) -> set[tuple[str, ...]]:
    """Distinct tuples of the named variables (term values) of a plain pattern."""
    result = store.query(f"{sparql_prologue()}SELECT DISTINCT {' '.join('?' + n for n in names)} WHERE {{ {where} }}")
    assert isinstance(result, ox.QuerySolutions)
    return {tuple("" if row[n] is None else row[n].value for n in names) for row in result}


def page(client: FlaskClient, url: str, status: int = 200) -> Element:
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code, r.get_data(as_text=True)[:500])
    assert r.mimetype == "text/html"
    return parse_html(r.get_data(as_text=True))


def review_cmocs(store: EvidenceStore) -> dict[str, set[str]]:
    """Review -> its CMOCs: stated in it, or in a document it cites."""
    out: dict[str, set[str]] = defaultdict(set)
    for r, c in pairs(store, "?r a cmo:Review . ?c a cmo:CMOConfiguration ; cmo:statedIn ?r", "r", "c"):
        out[r].add(c)
    for r, c in pairs(store, "?r a cmo:Review ; cito:cites ?d . ?c a cmo:CMOConfiguration ; cmo:statedIn ?d",
                      "r", "c"):
        out[r].add(c)
    return out


def path_of(iri: str) -> str:
    return "/id/" + iri.removeprefix(ID)


# -- home -----------------------------------------------------------------------------------------------


def test_home_counts_link_to_their_lists(client: FlaskClient, seed_evidence_store: EvidenceStore) -> None:
    doc = page(client, "/")
    shown = {a.attrs["data-count"]: (int(a.text), a.attrs["href"]) for a in doc.find_all("a", data_count=None)}
    store = seed_evidence_store
    assert shown["reviews"] == (len(pairs(store, "?r a cmo:Review", "r")), "/reviews")
    assert shown["cmocs"] == (len(pairs(store, "?c a cmo:CMOConfiguration", "c")), "/cmocs")
    assert shown["evidence"][0] == len(pairs(store, "?e a cmo:EvidenceFragment", "e"))
    assert set(shown) == {"reviews", "sources", "cmocs", "evidence", "batches", "quads"}
    # the statements: a triple once per batch graph stating it (a count of distinct triples over the union would
    # scan and hash the whole store on every visit: 9 s and 1.1 GiB at 100k CMOCs)
    assert shown["quads"] == (len(store.ox), "/dump.nq")
    entry = {a.attrs["href"] for a in doc.one("ul", id="entry-points").find_all("a")}
    for href in ("/reviews", "/framework", "/maps/matrix", "/maps/network", "/cmocs", "/search"):
        assert href in entry
        assert client.get(href).status_code == 200, href


# -- reviews ----------------------------------------------------------------------------------------------


def test_reviews_list_counts_equal_the_store(client: FlaskClient, seed_evidence_store: EvidenceStore) -> None:
    store = seed_evidence_store
    cmocs = review_cmocs(store)
    evidence: dict[str, set[str]] = defaultdict(set)
    for e, c in pairs(store, "?e cmo:supports|cmo:refutes ?c", "e", "c"):
        for r, members in cmocs.items():
            if c in members:
                evidence[r].add(e)
    sources: dict[str, set[str]] = defaultdict(set)
    for e, s in pairs(store, "?e oa:hasTarget/oa:hasSource ?s", "e", "s"):
        for r, fragments in evidence.items():
            if e in fragments:
                sources[r].add(s)
    for r, s in pairs(store, "?r a cmo:Review ; cito:cites ?s", "r", "s"):
        sources[r].add(s)

    rows = page(client, "/reviews").one("table", id="reviews").find_all("tr", data_review=None)
    reviews = {r for (r,) in pairs(store, "?r a cmo:Review", "r")}
    assert {row.attrs["data-review"] for row in rows} == reviews
    for row in rows:
        r = row.attrs["data-review"]
        got = {td.attrs["data-count"]: int(td.text) for td in row.find_all("td", data_count=None)}
        assert got == {"cmocs": len(cmocs[r]), "sources": len(sources[r]), "evidence": len(evidence[r])}, r
        [link] = row.find_all("a", class_="review")
        assert link.attrs["href"] == "/reviews/" + r.rsplit("/", 1)[-1]
    assert sum(int(td.text) for row in rows for td in row.find_all("td", data_count="cmocs")) > 0


def test_review_page_groups_cmocs_by_programme_theory(client: FlaskClient,
                                                       seed_evidence_store: EvidenceStore) -> None:
    store = seed_evidence_store
    review = ID + "source/calderon2021"
    expected = review_cmocs(store)[review]
    theory_of: dict[str, set[str]] = defaultdict(set)
    for c, t in pairs(store, "?c cmo:refines ?t", "c", "t"):
        theory_of[c].add(t)
    groups: dict[str, set[str]] = defaultdict(set)
    for c in expected:
        for t in theory_of.get(c) or {""}:
            groups[t].add(c)

    doc = page(client, "/reviews/calderon2021")
    sections = doc.one("div", id="theories").find_all("section", class_="theory")
    shown = {s.attrs["data-theory"]: {a.attrs["data-iri"] for a in s.find_all("a", class_="cmoc")} for s in sections}
    assert shown == groups
    assert len(shown) > 1
    for s in sections:
        for a in s.find_all("a", class_="cmoc"):
            assert a.attrs["href"] == path_of(a.attrs["data-iri"])
    sources = {row.attrs["data-source"] for row in doc.one("table", id="sources").find_all("tr", data_source=None)}
    quoted = {s for e, c, s in pairs(store, "?e cmo:supports|cmo:refutes ?c ; oa:hasTarget/oa:hasSource ?s",
                                     "e", "c", "s") if c in expected}
    cited = {s for (s,) in pairs(store, f"<{review}> cito:cites ?s", "s")}
    assert sources == quoted | cited


def test_review_without_cmocs_and_unknown_reviews(client: FlaskClient, seed_evidence_store: EvidenceStore) -> None:
    empty = sorted(r for (r,) in pairs(seed_evidence_store, "?r a cmo:Review", "r")
                   if not review_cmocs(seed_evidence_store)[r])[0]
    doc = page(client, "/reviews/" + empty.rsplit("/", 1)[-1])
    assert doc.one("div", id="theories").find_all("a", class_="cmoc") == []
    study = sorted(s for (s,) in pairs(seed_evidence_store, "?s a cmo:Study", "s"))[0]
    for slug in ("no-such-review", study.rsplit("/", 1)[-1], "Calderon2021", "x" * 300, "a%20b", "%3E"):
        doc = page(client, "/reviews/" + slug, 404)
        assert "no review" in doc.one(id="message").text


# -- framework --------------------------------------------------------------------------------------------


def test_framework_lists_resources_with_the_cmocs_drawing_on_them(client: FlaskClient,
                                                                    seed_evidence_store: EvidenceStore) -> None:
    store = seed_evidence_store
    draws: dict[str, set[str]] = defaultdict(set)
    for c, r in pairs(store, "?c a cmo:CMOConfiguration ; cmo:drawsOn ?r", "c", "r"):
        draws[r].add(c)
    dimension_of = {r: d for r, d in pairs(store, "?r a cmo:FrameworkResource ; skos:broader ?d", "r", "d")}
    doc = page(client, "/framework")
    seen = {}
    for section in doc.find_all("section", class_="dimension"):
        dts = section.find_all("dt", data_resource=None)
        for dt in dts:
            r = dt.attrs["data-resource"]
            assert dimension_of[r] == section.attrs["data-dimension"]
            seen[r] = int(dt.one("span", data_count=None).attrs["data-count"])
    assert seen == {r: len(draws[r]) for r in dimension_of}
    links = doc.find_all("a", class_="cmoc")
    assert links, "the browser test clicks one of these"
    by_iri: dict[str, int] = defaultdict(int)
    for a in links:
        assert a.attrs["href"] == path_of(a.attrs["data-iri"])
        by_iri[a.attrs["data-iri"]] += 1
    assert sum(by_iri.values()) == sum(min(len(v), browse.PER_RESOURCE) for v in draws.values())
    assert client.get(links[0].attrs["href"]).status_code == 200


# -- the CMOC list ----------------------------------------------------------------------------------------


def _listed(doc: Element) -> list[str]:
    return [row.attrs["data-cmoc"] for row in doc.one("table", id="cmocs").find_all("tr", data_cmoc=None)]


def test_cmoc_list_pages(client: FlaskClient, seed_evidence_store: EvidenceStore,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = seed_evidence_store
    everything = {c for (c,) in pairs(store, "?c a cmo:CMOConfiguration", "c")}
    monkeypatch.setattr(browse, "PAGE_SIZE", 10)
    listed: list[str] = []
    for number in range(1, 20):
        doc = page(client, f"/cmocs?page={number}")
        assert int(doc.one(id="total").attrs["data-total"]) == len(everything)
        listed += _listed(doc)
        if not doc.find_all("a", rel="next"):
            break
    assert sorted(listed) == sorted(everything)


@pytest.mark.parametrize("path", ["/cmocs", "/reviews", "/reviews/tierney2020", "/search?q=link"])
def test_a_page_past_the_last_is_400_naming_the_last(client: FlaskClient, monkeypatch: pytest.MonkeyPatch,
                                                     path: str) -> None:
    """/reviews?page=99 was a 200 saying "No reviews in the graph." of a graph with 11 reviews."""
    monkeypatch.setattr(browse, "PAGE_SIZE", 10)
    joiner = "&" if "?" in path else "?"
    last = 1
    while page(client, f"{path}{joiner}page={last}").find_all("a", rel="next"):
        last += 1
    doc = page(client, f"{path}{joiner}page={last + 1}", 400)
    assert doc.one(id="message").text == f"page: there is no page {last + 1}; the last page is {last}"


def test_cmoc_list_filters(client: FlaskClient, seed_evidence_store: EvidenceStore) -> None:
    store = seed_evidence_store
    expected = {c for (c,) in pairs(store, f"""?c a cmo:CMOConfiguration ;
        cmo:inSetting <{ID}concept/setting/link-workers> ; cmo:drawsOn ?r .
        ?r skos:broader <{ID}concept/framework/interpersonal-relations>""", "c")}
    doc = page(client, "/cmocs?dimension=interpersonal-relations&setting=link-workers")
    assert set(_listed(doc)) == expected and expected
    by_resource = {c for (c,) in pairs(store, f"?c cmo:drawsOn <{ID}concept/framework/stable-funding>", "c")}
    assert set(_listed(page(client, "/cmocs?resource=stable-funding"))) == by_resource


@pytest.mark.parametrize("query", [
    "dimension=Policy%20Structures", "dimension=stable-funding", "setting=policy-structures", "resource=nope",
    "dimension=%22%3E%3Cscript%3E", "page=0", "page=-1", "page=abc", "page=1e3", "page=999999999",
    "setting=" + "a" * 250,
])
def test_cmoc_list_bad_parameters_are_400(client: FlaskClient, query: str) -> None:
    doc = page(client, "/cmocs?" + query, 400)
    name = query.split("=")[0]
    assert doc.one(id="message").text.startswith(name + ":")
    assert doc.find_all("script") == []


# -- search -----------------------------------------------------------------------------------------------


def _hits(doc: Element) -> dict[str, list[Element]]:
    return {li.attrs["data-cmoc"]: li.find_all("li", class_="match") for li in doc.find_all("li", class_="hit")}


def test_search_finds_a_known_quote(client: FlaskClient, seed_evidence_store: EvidenceStore) -> None:
    quotes = sorted(pairs(seed_evidence_store, "?e cmo:supports ?c ; oa:hasTarget/oa:hasSelector/oa:exact ?q",
                          "e", "c", "q"))
    e, c, quote = next(t for t in quotes if len(t[2]) > 80)
    needle = quote[20:60].strip()
    doc = page(client, "/search?q=" + needle.upper().replace(" ", "+"))
    hits = _hits(doc)
    assert c in hits
    quoted = [m for m in hits[c] if m.attrs["data-field"] == "quote"]
    assert any(m.one("mark").text.lower() == needle.lower() for m in quoted)
    assert any(a.attrs["href"] == path_of(e) for m in quoted for a in m.find_all("a"))
    [link] = doc.find_all("a", class_="cmoc", data_iri=c)
    assert link.attrs["href"] == path_of(c)


def test_search_counts_equal_an_independent_match(client: FlaskClient, seed_evidence_store: EvidenceStore,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    texts = pairs(seed_evidence_store, """?c a cmo:CMOConfiguration .
        { ?c cmo:hasContext/cmo:description ?t } UNION { ?c cmo:hasMechanism/cmo:hasResource/cmo:description ?t }
        UNION { ?c cmo:hasMechanism/cmo:hasReasoning/cmo:description ?t } UNION { ?c cmo:hasOutcome/cmo:description ?t }
        UNION { ?e cmo:supports|cmo:refutes ?c ; oa:hasTarget/oa:hasSelector/oa:exact ?t }""", "c", "t")
    monkeypatch.setattr(browse, "PAGE_SIZE", 10)  # 5 CMOCs a page
    for word in ("trust", "Link Worker", "funding"):
        expected = {c for c, t in texts if word.lower() in t.lower()}
        found: list[str] = []
        for number in range(1, 40):
            doc = page(client, f"/search?q={word}&page={number}")
            assert int(doc.one(id="total").attrs["data-total"]) == len(expected)
            found += list(_hits(doc))
            if not doc.find_all("a", rel="next"):
                break
        assert sorted(found) == sorted(expected), word
        assert expected


HOSTILE = ['") } ; DROP ALL ; #', "' OR '1'='1", '"""', "\\", "\\u0022", "<script>alert(1)</script>",
           "} UNION { ?c ?p ?text }", ".*", "?q", "%00", "\u202e\u0000x", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]


@pytest.mark.parametrize("text", HOSTILE)
def test_search_binds_hostile_text(client: FlaskClient, seed_evidence_store: EvidenceStore, text: str) -> None:
    before = seed_evidence_store.quad_count()
    r = client.get("/search", query_string={"q": text})
    assert r.status_code in (200, 400)
    doc = parse_html(r.get_data(as_text=True))
    assert doc.find_all("script") == []
    if r.status_code == 200:
        assert int(doc.one(id="total").attrs["data-total"]) == 0
        # control characters (a NUL) are read as spaces, as whitespace is
        assert doc.one("input", name="q").attrs["value"] == " ".join(browse.CONTROL.sub(" ", text).split())
    assert seed_evidence_store.quad_count() == before


def test_search_messages_for_empty_short_and_long_text(client: FlaskClient) -> None:
    doc = page(client, "/search")
    assert doc.one(id="message").text and not doc.find_all(id="total")
    assert doc.one("form", action="/search").attrs["method"] == "get"
    page(client, "/search?q=+++")
    assert "at least" in page(client, "/search?q=x", 400).one(id="message").text
    doc = page(client, "/search?q=" + "a" * 201, 400)
    assert "at most 200" in doc.one(id="message").text
    assert "page:" in page(client, "/search?q=trust&page=nope", 400).one(id="message").text


def test_pager_links_keep_the_parameters(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browse, "PAGE_SIZE", 4)
    doc = page(client, "/search?q=link&page=2")
    pager = doc.one("nav", class_="pager")
    assert pager.attrs["data-page"] == "2"
    for rel, number in (("prev", "1"), ("next", "3")):
        [a] = pager.find_all("a", rel=rel)
        parts = urlsplit(a.attrs["href"])
        assert parts.path == "/search" and parse_qs(parts.query) == {"q": ["link"], "page": [number]}


# -- the same pages on a remote store -----------------------------------------------------------------------

REMOTE_PAGES = ["/", "/reviews", "/reviews/calderon2021", "/framework", "/cmocs?dimension=policy-structures",
                "/cmocs?setting=link-workers&resource=supervision", "/search?q=trust", "/search?q=%22%29+%7D",
                "/maps/matrix", "/maps/network.json", "/maps/matrix.svg"]


def test_pages_are_the_same_on_a_remote_store(app: Flask, seed_store_path: Path,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """Parameters reach a remote endpoint as a VALUES block (graph.remote), so no page may bind one inside a
    subquery; served from an Oxigraph server holding the seed graph, every page is byte for byte the same."""
    require("oxigraph")
    with OxigraphServer(tmp_path_factory.mktemp("browse-remote") / "db") as server:
        assert main(["push", "--endpoint", server.query_url, "--store", str(seed_store_path)]) == 0
        remote = create_app({"TESTING": True, "CMOKG_ENDPOINT": server.query_url, "CMOKG_QUERY_WORKERS": 0})
        for url in REMOTE_PAGES:
            here, there = app.test_client().get(url), remote.test_client().get(url)
            assert (there.status_code, there.data) == (here.status_code, here.data), url
