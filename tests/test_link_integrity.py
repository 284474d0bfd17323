"""Link integrity: crawl the web app over the seed graph from `/` and follow every internal link.

The mission promises "a page for every resource that links each claim back to its quotes and sources". The
crawl checks that promise link by link. It starts at `/` with the Accept header a browser sends and follows
`<a href>`, `<area href>`, `<link href>`, `<img src>`, `<script src>`, `<iframe src>`, `<source src>`, GET forms
(submitted with their default values, as a reader pressing the button would), the links inside SVG (inline
and served: `<a href>`, `<a xlink:href>`, `<image>`, `<use>`) and the `href`s of the network's JSON, query
strings (paging, filters, formats) included, up to MAX_URLS URLs and MAX_VARIANTS query strings per path.

Then, over what it fetched:
- every internal URL answers 2xx, or redirects to one that does; no link is a placeholder ("#", empty) and no
  `#fragment` points at an element the target page does not have;
- external links (doi.org, publishers' pages, vocabularies) are not fetched but are well-formed http(s) URLs;
- every IRI under id/ that is a subject in the store has an HTML page reached from `/` by links, and every
  page route without parameters is linked from somewhere;
- a CMOC's page links each evidence fragment that supports or refutes it (next to its quote, with the
  relation of the triple) and the document it is stated in; an evidence fragment's page shows its quote and
  links its CMOC and its source document; a document's page links its CMOCs and the fragments quoting it.
  All checked against the store's triples, not against page text;
- every HTML page has `lang` on <html>, one <h1>, a <title> naming the resource, labels on its form controls
  and header cells in its tables.

A second, smaller crawl shrinks the page sizes so that the seed graph's lists page, and follows the pagers.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_browse import ID, Element, pairs, parse_html, path_of

from graph.store import EvidenceStore
from webapp import browse, catalog, maps

ORIGIN = "http://localhost"
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what a browser sends
MAX_URLS = 6000  # the seed graph (~900 resources, each with 4 RDF alternates) crawls to ~3,500 URLs
MAX_VARIANTS = 100  # distinct query strings crawled per path (paging, filters, formats)
PARSED = {"text/html", "image/svg+xml"}
LINK_ATTRS: dict[str, tuple[str, ...]] = {
    "a": ("href", "xlink:href"), "area": ("href",), "link": ("href",), "img": ("src",), "script": ("src",),
    "iframe": ("src",), "source": ("src",), "image": ("href", "xlink:href"), "use": ("href", "xlink:href"),
}
UNLABELLED_INPUTS = {"hidden", "submit", "button", "reset", "image"}
SITE_SUFFIX = " — realist evidence graph"
LABELS = ("cmo:authorLabel", "skos:prefLabel", "dcterms:title", "rdfs:label", "dcterms:identifier")


# -- the crawl ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    page: str  # the URL of the page holding the link
    tag: str
    raw: str  # the attribute as written
    url: str  # internal: path?query; external: the absolute URL
    fragment: str
    external: bool


@dataclass
class Page:
    url: str
    status: int
    mimetype: str
    location: str | None = None  # an internal redirect's target
    doc: Element | None = None  # parsed HTML or SVG
    ids: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)


@dataclass
class Crawl:
    pages: dict[str, Page]
    found_by: dict[str, str]  # URL -> the first page linking it ("" for a start URL)
    capped: dict[str, int]  # path -> query strings not crawled past MAX_VARIANTS
    complete: bool  # the queue emptied before MAX_URLS

    def links(self) -> Iterator[Link]:
        for p in self.pages.values():
            yield from p.links

    def html(self) -> Iterator[Page]:
        for p in self.pages.values():
            if p.status == 200 and p.mimetype == "text/html" and p.doc is not None:
                yield p

    def anchors(self, url: str) -> set[str]:
        """The internal URLs the page links with <a> (paths percent-decoded, as the /id/ IRIs are written)."""
        return {unquote(link.url) for link in self.pages[url].links if link.tag == "a" and not link.external}


def resolve(page: str, tag: str, raw: str) -> Link:
    full = urljoin(ORIGIN + page, raw.strip())
    parts = urlsplit(full)
    if parts.scheme in ("http", "https") and parts.netloc == "localhost":
        return Link(page, tag, raw, urlunsplit(("", "", parts.path or "/", parts.query, "")), parts.fragment, False)
    return Link(page, tag, raw, full, parts.fragment, True)


def form_url(form: Element) -> str | None:
    """The URL a GET form goes to when submitted with its default values; None for other methods."""
    if form.attrs.get("method", "get").strip().lower() not in ("", "get"):
        return None
    fields: list[tuple[str, str]] = []
    for el in form.iter():
        name = el.attrs.get("name")
        if not name or "disabled" in el.attrs:
            continue
        if el.tag == "input":
            kind = el.attrs.get("type", "text").lower()
            if kind in ("submit", "button", "reset", "image", "file") or (
                    kind in ("checkbox", "radio") and "checked" not in el.attrs):
                continue
            fields.append((name, el.attrs.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif el.tag == "textarea":
            fields.append((name, el.text.removeprefix("\n")))
        elif el.tag == "select":
            options = el.find_all("option")
            chosen = [o for o in options if "selected" in o.attrs] or options[:1]
            fields.extend((name, o.attrs.get("value", o.text.strip())) for o in chosen)
    action = urlsplit(form.attrs.get("action", ""))
    return urlunsplit(("", "", action.path, urlencode(fields), ""))


def _json_hrefs(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "href" and isinstance(value, str):
                yield value
            else:
                yield from _json_hrefs(value)
    elif isinstance(data, list):
        for value in data:
            yield from _json_hrefs(value)


def fetch(client: FlaskClient, url: str) -> Page:
    r = client.get(url, headers={"Accept": ACCEPT})
    try:
        page = Page(url, r.status_code, r.mimetype or "")
        body = r.get_data()
        location = r.headers.get("Location", "")
    finally:
        r.close()  # a file sent from node_modules stays open until the response is closed
    if 300 <= page.status < 400:
        target = resolve(url, "redirect", location)
        page.links.append(target)
        page.location = None if target.external else target.url
    elif page.status == 200 and page.mimetype in PARSED:
        doc = page.doc = parse_html(body.decode("utf-8"))
        for el in doc.iter():
            if "id" in el.attrs:
                page.ids.add(el.attrs["id"])
            if el.tag == "a" and "name" in el.attrs:
                page.ids.add(el.attrs["name"])
            for attr in LINK_ATTRS.get(el.tag, ()):
                if attr in el.attrs:
                    page.links.append(resolve(url, el.tag, el.attrs[attr]))
            if el.tag == "form":
                target_url = form_url(el)
                if target_url is not None:
                    page.links.append(resolve(url, "form", target_url))
    elif page.status == 200 and page.mimetype == "application/json":
        page.links += [resolve(url, "json", href) for href in _json_hrefs(json.loads(body))]
    return page


def crawl(client: FlaskClient, start: Iterable[str], expand: Callable[[str], bool] = lambda url: True,
          limit: int = MAX_URLS) -> Crawl:
    """Breadth-first from `start`; the links of a page are followed when `expand(url)` (the others are fetched
    and checked, not followed further)."""
    found_by: dict[str, str] = {}
    queue: deque[str] = deque()
    variants: dict[str, set[str]] = defaultdict(set)
    capped: dict[str, int] = defaultdict(int)

    def enqueue(url: str, by: str) -> None:
        if url in found_by:
            return
        path, _, query = url.partition("?")
        if query and query not in variants[path]:
            if len(variants[path]) >= MAX_VARIANTS:
                capped[path] += 1
                return
            variants[path].add(query)
        found_by[url] = by
        queue.append(url)

    for url in start:
        enqueue(url, "")
    pages: dict[str, Page] = {}
    while queue and len(pages) < limit:
        url = queue.popleft()
        page = pages[url] = fetch(client, url)
        if expand(url) or page.location is not None:
            for link in page.links:
                if not link.external:
                    enqueue(link.url, url)
    return Crawl(pages, found_by, dict(capped), not queue)


@pytest.fixture(scope="module")
def site(app: Flask) -> Crawl:
    """The whole site as a reader reaches it from the home page."""
    return crawl(app.test_client(), ["/"])


def _where(site: Crawl, url: str) -> str:
    return f"{url} (linked from {site.found_by.get(url) or 'the start'})"


# -- the crawl itself ---------------------------------------------------------------------------------------


def test_the_crawl_covers_the_site_within_its_bound(site: Crawl, seed_evidence_store: EvidenceStore) -> None:
    assert site.complete, f"more than {MAX_URLS} URLs: raise the bound or find the link explosion"
    assert not site.capped, f"paths with more than {MAX_VARIANTS} query strings: {site.capped}"
    kinds = defaultdict(int)
    for url in site.pages:
        kinds[url.split("?")[0].split("/")[1]] += 1
    # every page kind is there: the id/ pages (with their RDF alternates), lists, maps, queries, documents
    for kind in ("id", "reviews", "cmocs", "framework", "maps", "queries", "search", "sparql", "ontology", "shapes"):
        assert kinds[kind], (kind, dict(kinds))
    subjects = pairs(seed_evidence_store, f'?s ?p ?o FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{ID}"))', "s")
    assert len(site.pages) > 3 * len(subjects), (len(site.pages), len(subjects))
    assert sum(1 for link in site.links()) > 20_000


# -- every link answers -----------------------------------------------------------------------------------


def test_every_internal_link_answers(site: Crawl) -> None:
    broken = []
    for url, page in site.pages.items():
        if 200 <= page.status < 300:
            continue
        if 300 <= page.status < 400 and page.location is not None:
            target = site.pages.get(page.location)
            if target is not None and 200 <= target.status < 300:
                continue
        broken.append(f"{page.status} {_where(site, url)}")
    assert not broken, "\n".join(broken[:40])


def test_no_link_is_a_placeholder_or_a_dangling_fragment(site: Crawl) -> None:
    # "#" is what a page writes for an IRI it cannot link (webapp.linkeddata.link_target): none in the seed graph
    placeholders = [link for link in site.links() if link.tag != "form" and link.raw.strip() in ("", "#")]
    assert not placeholders, [(link.page, link.tag, link.raw) for link in placeholders[:20]]
    dangling = []
    for link in site.links():
        # a fragment with "=" is state for the page's script (the SPARQL editor's #query=...), not an anchor
        if link.external or not link.fragment or "=" in link.fragment:
            continue
        target = site.pages.get(link.url)
        if target is not None and target.doc is not None and unquote(link.fragment) not in target.ids:
            dangling.append((link.page, link.raw))
    assert not dangling, dangling[:20]


WELL_FORMED = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
DOI_LINK = re.compile(r"https://doi\.org/10\.[0-9]{4,9}/\S+")


def test_external_links_are_well_formed_web_urls(site: Crawl) -> None:
    external = [link for link in site.links() if link.external]
    assert any(link.url.startswith("https://doi.org/") for link in external)
    bad = []
    for link in external:
        url = link.raw.strip()
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            port_ok = False
        host = parts.hostname or ""
        ascii_url = "".join(c if ord(c) < 0x80 else "%00" for c in url)  # IRIs: non-ASCII letters are fine
        ok = (parts.scheme in ("http", "https") and url == link.raw and "." in host and port_ok
              and bool(WELL_FORMED.fullmatch(ascii_url)) and url.count("#") <= 1)
        if ok and host == "doi.org":
            ok = bool(DOI_LINK.fullmatch(url))
        if not ok:
            bad.append((link.page, link.raw))
    assert not bad, bad[:20]


def test_every_page_route_is_linked(app: Flask, site: Crawl) -> None:
    """A page nobody links is a page nobody finds: every GET route without parameters is reached from `/`."""
    reached = {url.split("?")[0] for url in site.pages}
    # the same resources as linked ones (the trailing-slash spellings, the dump negotiated by Accept), and the
    # icon browsers ask for by themselves (an empty 204)
    aliases = {"/sparql/", "/queries/", "/dump", "/favicon.ico"}
    unlinked = sorted(rule.rule for rule in app.url_map.iter_rules()
                      if "GET" in (rule.methods or ()) and not rule.arguments and rule.endpoint != "static"
                      and rule.rule not in reached | aliases)
    assert not unlinked, unlinked


# -- every resource is reachable, and linked as the graph says -------------------------------------------


def _id_pages(site: Crawl) -> dict[str, Page]:
    """IRI -> its HTML page, for the /id/ pages the crawl reached."""
    return {ID + unquote(p.url.removeprefix("/id/")): p for p in site.html() if p.url.startswith("/id/")}


def test_every_id_resource_is_reachable_from_home(site: Crawl, seed_evidence_store: EvidenceStore) -> None:
    subjects = {s for (s,) in pairs(seed_evidence_store,
                                    f'?s ?p ?o FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{ID}"))', "s")}
    assert len(subjects) > 800
    unreachable = sorted(subjects - set(_id_pages(site)))
    assert not unreachable, f"{len(unreachable)} of {len(subjects)} unreachable: {unreachable[:20]}"


def _by_first(found: set[tuple[str, ...]]) -> dict[str, set[tuple[str, ...]]]:
    out: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for row in found:
        out[row[0]].add(row[1:])
    return out


def test_cmoc_pages_link_their_evidence_and_their_source(site: Crawl, seed_evidence_store: EvidenceStore) -> None:
    store = seed_evidence_store
    cmocs = {c for (c,) in pairs(store, "?c a cmo:CMOConfiguration", "c")}
    evidence = _by_first(pairs(store, '{ ?e cmo:supports ?c BIND("supports" AS ?r) } '
                                      'UNION { ?e cmo:refutes ?c BIND("refutes" AS ?r) }', "c", "e", "r"))
    stated = _by_first(pairs(store, "?c a cmo:CMOConfiguration ; cmo:statedIn ?s", "c", "s"))
    assert cmocs and len(evidence) > len(cmocs) // 2 and stated
    pages = _id_pages(site)
    missing = []
    for c in sorted(cmocs):
        page = pages[c]
        assert page.doc is not None
        links = site.anchors(page.url)
        for e, relation in evidence.get(c, ()):
            if path_of(e) not in links:
                missing.append((c, "evidence", e))
                continue
            # the link sits with the quote, marked with the relation the triple states
            [block] = [div for div in page.doc.find_all("div", class_="evidence")
                       if any(unquote(a.attrs.get("href", "")) == path_of(e) for a in div.find_all("a"))]
            assert [q.attrs.get("class") for q in block.find_all("blockquote")] == [relation], (c, e)
        for (s,) in stated.get(c, ()):
            cell = {unquote(a.attrs["href"]) for a in page.doc.one("td", id="stated-in").find_all("a")}
            if path_of(s) not in cell:
                missing.append((c, "stated in", s))
    assert not missing, missing[:20]


def test_evidence_pages_show_their_quote_and_link_their_source_and_cmoc(
        site: Crawl, seed_evidence_store: EvidenceStore) -> None:
    store = seed_evidence_store
    fragments = {e for (e,) in pairs(store, "?e a cmo:EvidenceFragment", "e")}
    cmocs = _by_first(pairs(store, "?e cmo:supports|cmo:refutes ?c", "e", "c"))
    sources = _by_first(pairs(store, "?e a cmo:EvidenceFragment ; oa:hasTarget ?t . ?t oa:hasSource ?s", "e", "s"))
    quotes = _by_first(pairs(store, "?e a cmo:EvidenceFragment ; oa:hasTarget/oa:hasSelector/oa:exact ?q", "e", "q"))
    assert len(fragments) > 50 and all(e in sources for e in fragments)
    pages = _id_pages(site)
    missing = []
    for e in sorted(fragments):
        page = pages[e]
        assert page.doc is not None
        links = site.anchors(page.url)
        missing += [(e, "cmoc", c) for (c,) in cmocs.get(e, ()) if path_of(c) not in links]
        missing += [(e, "source", s) for (s,) in sources.get(e, ()) if path_of(s) not in links]
        text = " ".join(page.doc.text.split())
        missing += [(e, "quote", q[:40]) for (q,) in quotes.get(e, ()) if " ".join(q.split()) not in text]
    assert not missing, missing[:20]


def test_source_pages_link_their_cmocs_and_the_fragments_quoting_them(
        site: Crawl, seed_evidence_store: EvidenceStore) -> None:
    store = seed_evidence_store
    stated = _by_first(pairs(store, "?c a cmo:CMOConfiguration ; cmo:statedIn ?s", "s", "c"))
    quoting = _by_first(pairs(store, "?e a cmo:EvidenceFragment ; oa:hasTarget/oa:hasSource ?s", "s", "e"))
    pages = _id_pages(site)
    missing = []
    for s in sorted(set(stated) | set(quoting)):
        links = site.anchors(pages[s].url)
        missing += [(s, c) for (c,) in stated.get(s, ()) | quoting.get(s, ()) if path_of(c) not in links]
    assert not missing, missing[:20]


# -- what a reviewer relies on, on every HTML page -----------------------------------------------------------


def _labelled(control: Element, doc: Element, labels_for: set[str], inside_label: set[int]) -> bool:
    attrs = control.attrs
    if attrs.get("aria-label", "").strip() or attrs.get("title", "").strip():
        return True
    if attrs.get("aria-labelledby", "").strip():
        return True
    return attrs.get("id", "") in labels_for or id(control) in inside_label


def basics(page: Page, names: Callable[[str], set[str]]) -> list[str]:
    """What is missing on an HTML page: lang, one h1, a title naming the resource, labels, table headers."""
    doc = page.doc
    assert doc is not None
    problems = []
    [html] = doc.find_all("html") or [Element("html", {})]
    if not html.attrs.get("lang", "").strip():
        problems.append("no lang on <html>")
    if len(doc.find_all("h1")) != 1:
        problems.append(f"{len(doc.find_all('h1'))} <h1>")
    titles = [t for head in doc.find_all("head") for t in head.find_all("title")]  # not an inline SVG's
    title = " ".join(titles[0].text.split()) if len(titles) == 1 else ""
    name = title.removesuffix(SITE_SUFFIX).strip()
    if len(titles) != 1 or not name:
        problems.append(f"title {title!r}")
    elif page.url.startswith("/id/"):
        expected = names(ID + unquote(page.url.split("?")[0].removeprefix("/id/")))  # ?page=2 of its lists
        if not any(" ".join(n.split()) in title for n in expected):
            problems.append(f"title {title!r} does not name the resource ({sorted(expected)[:3]})")
    labels_for = {lab.attrs.get("for", "") for lab in doc.find_all("label")}
    inside_label = {id(el) for lab in doc.find_all("label") for el in lab.iter()}
    for control in doc.iter():
        if control.tag not in ("input", "select", "textarea"):
            continue
        if control.tag == "input" and control.attrs.get("type", "text").lower() in UNLABELLED_INPUTS:
            continue
        if not _labelled(control, doc, labels_for, inside_label):
            problems.append(f"unlabelled <{control.tag} name={control.attrs.get('name')!r}>")
    for table in doc.find_all("table"):
        if not table.find_all("th"):
            problems.append(f"table {table.attrs.get('id', '')!r} without header cells")
    return problems


def _names(store: EvidenceStore) -> Callable[[str], set[str]]:
    """IRI -> the names a title may give it: its labels in the store; for a part minted under another resource's
    IRI without a label of its own (a CMOC's context, a fragment's quote), a name of that resource and the part's
    last segment; else its last segment."""
    found = _by_first(pairs(store, "?s " + "|".join(LABELS) + " ?l", "s", "l"))

    def names(iri: str) -> set[str]:
        labels = {lab for (lab,) in found.get(iri, ())}
        whole, _, part = iri.rpartition("/")
        if labels:
            return labels
        if whole.startswith(ID) and "/" in whole.removeprefix(ID):
            return {f"{n} {part}" for n in names(whole)}
        return {part}

    return names


# pages the crawl from home does not reach by itself: a search with hits, error pages
EXTRA_PAGES = {"/search?q=social": 200, "/search?q=x": 400, "/reviews/no-such-review": 404,
               "/cmocs?page=999": 400, "/cmocs?dimension=No%20Such": 400}


def test_every_html_page_has_what_a_reviewer_relies_on(site: Crawl, app: Flask,
                                                        seed_evidence_store: EvidenceStore) -> None:
    names = _names(seed_evidence_store)
    pages = list(site.html())
    client = app.test_client()
    for url, status in EXTRA_PAGES.items():
        page = fetch(client, url)
        assert page.status == status, url
        if page.doc is None:  # an error page: fetch() parses 200s only
            r = client.get(url, headers={"Accept": ACCEPT})
            assert r.mimetype == "text/html", url
            page.doc = parse_html(r.get_data(as_text=True))
        pages.append(page)
    assert len(pages) > 600
    kinds: dict[str, list[str]] = defaultdict(list)
    for page in pages:
        for problem in basics(page, names):
            kinds[problem.split(" (")[0] if "title" not in problem else "title"].append(f"{page.url}: {problem}")
    assert not kinds, "\n".join(f"{len(v)}x {v[0]}" for v in kinds.values())
    # a filtered list says in its title what it lists (tabs of the matrix's cells are told apart)
    filtered = [p for p in pages if p.url.startswith("/cmocs?") and p.doc is not None and p.status == 200]
    titles = {" ".join(p.doc.one("title").text.split()) for p in filtered if p.doc is not None}
    assert len(filtered) > 5 and len(titles) == len(filtered), sorted(titles)


# -- paged lists ------------------------------------------------------------------------------------------


PAGED = ("/cmocs", "/search", "/reviews", "/maps/network", "/queries/all-cmocs")


def test_pagers_reach_every_item_and_every_page_answers(app: Flask, seed_evidence_store: EvidenceStore,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With small pages the seed graph's lists page: the pagers' links (keeping the filters) answer, and
    following them lists every CMOC once."""
    monkeypatch.setattr(browse, "PAGE_SIZE", 6)
    monkeypatch.setattr(maps, "NETWORK_PAGE", 7)
    monkeypatch.setattr(catalog, "PAGE_SIZE", 10)
    store = seed_evidence_store
    cmocs = {c for (c,) in pairs(store, "?c a cmo:CMOConfiguration", "c")}
    dimension = "organisational-contingencies"
    start = ["/cmocs", f"/cmocs?dimension={dimension}", "/search?q=social", "/reviews/calderon2021", "/maps/network",
             "/queries/all-cmocs"]
    paged = crawl(app.test_client(), start, expand=lambda url: url.split("?")[0].startswith(PAGED), limit=2000)
    assert paged.complete
    broken = [f"{p.status} {_where(paged, url)}" for url, p in paged.pages.items() if p.status != 200]
    assert not broken, broken[:20]

    def listed(prefix: str, query: str = "") -> list[str]:
        """The CMOCs on the pages of one list (path and filters), each page once (?page=1 is the first page)."""
        by_page: dict[str, list[str]] = {}
        for url, page in paged.pages.items():
            path, _, q = url.partition("?")
            params = parse_qsl(q)
            if path == prefix and page.doc is not None and sorted(
                    (k, v) for k, v in params if k != "page") == sorted(parse_qsl(query)):
                number = dict(params).get("page", "1")
                by_page[number] = [row.attrs["data-cmoc"] for row in page.doc.find_all("tr", data_cmoc=None)]
        return [c for rows in by_page.values() for c in rows]

    everything = listed("/cmocs")
    assert sorted(everything) == sorted(cmocs), "the /cmocs pager lists every CMOC once"
    assert {u for u in paged.pages if u.startswith("/cmocs?page=")} == {
        f"/cmocs?page={n}" for n in range(1, -(-len(cmocs) // 6) + 1)}
    in_dimension = {c for (c,) in pairs(store, f"?c cmo:drawsOn/skos:broader <{ID}concept/framework/{dimension}>",
                                        "c")}
    assert sorted(listed("/cmocs", f"dimension={dimension}")) == sorted(in_dimension)
    assert sorted(listed("/maps/network")) == sorted(cmocs), "the network pager shows every CMOC once"
    by_offset: dict[str, int] = {}
    for url, page in paged.pages.items():
        path, _, q = url.partition("?")
        params = dict(parse_qsl(q))
        if path == "/queries/all-cmocs" and set(params) <= {"offset"} and page.doc is not None:
            table = page.doc.one("table", class_="results")
            by_offset[params.get("offset", "0")] = len(table.find_all("td", data_var="cmoc"))
    rows = sum(by_offset.values())
    assert len(by_offset) == -(-len(cmocs) // 10), sorted(by_offset)
    assert rows == len(cmocs), "the catalog's pager reaches every row once"
    hits = [url for url in paged.pages if url.startswith("/search?") and "page=" in url]
    assert len(hits) > 2 and all("q=social" in url for url in hits), "the pager keeps the search text"
