"""The web app in a real browser: what a reader does, checked against the store.

Each test opens pages of a live `cmokg serve` on the seed graph in headless chromium (fixtures in
conftest.py), acts as a reader would (click, fill, submit, run), and compares what the page shows with the
same question put to the store directly. Any console error, page error or request leaving the server fails
the test; screenshots go to test-artefacts/.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pyoxigraph as ox
import pytest
from browsing import Visit

from graph import catalog
from graph.namespaces import BASE, PREFIXES, sparql_prologue
from webapp.sparql import starter_query

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CMO = BASE + "ontology#"


def _count(store: ox.Store, where: str) -> int:
    solutions = store.query(f"{sparql_prologue()}SELECT (COUNT(*) AS ?n) WHERE {{ {where} }}",
                            use_default_graph_as_union=True)
    assert isinstance(solutions, ox.QuerySolutions)
    term = next(iter(solutions))["n"]
    assert isinstance(term, ox.Literal)
    return int(term.value)


def _rows(store: ox.Store, query: str) -> int:
    return len(list(store.query(query, use_default_graph_as_union=True)))  # type: ignore[arg-type]


# -- 1. home ----------------------------------------------------------------------------------------------


def test_home_page_counts_the_cmocs(visit: Visit, seed_store: ox.Store) -> None:
    visit.goto("/")
    shown = visit.page.locator('[data-count="cmocs"]').inner_text()
    visit.screenshot("home")
    assert int(shown.strip()) == _count(seed_store, "SELECT DISTINCT ?c WHERE { ?c a cmo:CMOConfiguration }")
    visit.assert_clean()


# -- 2. framework -> CMOC page ------------------------------------------------------------------------------


def _store_label(store: ox.Store, iri: str) -> str:
    """A CMOC's label in the store: the label its authors gave it, else its identifier."""
    solutions = store.query(f"""SELECT ?author ?identifier WHERE {{
        OPTIONAL {{ <{iri}> <{CMO}authorLabel> ?author }}
        OPTIONAL {{ <{iri}> <http://purl.org/dc/terms/identifier> ?identifier }} }}""", use_default_graph_as_union=True)
    rows = list(solutions)  # type: ignore[arg-type]
    assert len(rows) == 1, f"{iri}: {len(rows)} label rows"
    term = rows[0]["author"] or rows[0]["identifier"]
    assert term is not None, f"{iri} has neither cmo:authorLabel nor dcterms:identifier"
    return str(term.value)


def test_framework_page_leads_to_a_cmoc_page(visit: Visit, seed_store: ox.Store) -> None:
    visit.goto("/framework")
    visit.screenshot("framework")
    first = visit.page.locator("a.cmoc").first
    link_text = first.inner_text().strip()
    with visit.page.expect_navigation():
        first.click()
    path = re.sub(r"^https?://[^/]+", "", visit.page.url)
    assert re.fullmatch(r"/id/cmoc/[^/?#]+", path), visit.page.url
    visit.screenshot("cmoc-page")
    label = _store_label(seed_store, BASE + path.lstrip("/"))
    assert visit.page.locator("h1").inner_text().strip() == f"CMO configuration {label}"
    assert link_text == label
    visit.assert_clean()


# -- 3. a catalog query from the UI -------------------------------------------------------------------------

CATALOG_QUERY, CATALOG_PARAM, CATALOG_VALUE = "mechanism-keyword", "keyword", "trust"


def test_catalog_query_from_the_ui(visit: Visit, seed_store: ox.Store) -> None:
    query = catalog.load_catalog()[CATALOG_QUERY]
    expected = len(list(catalog.run(seed_store, query, {CATALOG_PARAM: CATALOG_VALUE})))  # type: ignore[arg-type]
    assert expected > 0
    visit.goto("/queries")
    visit.screenshot("queries")
    with visit.page.expect_navigation():
        visit.page.locator(f'a.query[href$="/{CATALOG_QUERY}"], a.query[href*="/{CATALOG_QUERY}?"]').first.click()
    visit.page.locator(f"form#params input[name={CATALOG_PARAM}]").fill(CATALOG_VALUE)
    visit.screenshot("query-form")
    with visit.page.expect_navigation():
        visit.page.locator(f"form#params input[name={CATALOG_PARAM}]").press("Enter")
    rows = visit.page.locator("table.results tbody tr")
    rows.first.wait_for()
    visit.screenshot("query-results")
    assert rows.count() == expected
    visit.assert_clean()


# -- 4. the SPARQL editor -----------------------------------------------------------------------------------

EDITOR_QUERY = sparql_prologue() + """SELECT ?review ?title WHERE {
  ?review a cmo:Review .
  OPTIONAL { ?review dcterms:title ?title }
} ORDER BY ?review"""
RESULT_ROWS = ".yasr .dataTable tbody tr"


def _open_editor(visit: Visit) -> Any:
    visit.goto("/sparql")
    visit.page.wait_for_function("() => window.cmokgEditor && window.cmokgEditor.getTab().getYasqe()")
    return visit.page


def _run_and_count(visit: Visit) -> int:
    page = visit.page
    with page.expect_response(lambda r: r.url == visit.base + "/sparql" and r.request.method == "POST") as answer:
        page.locator(".tabPanel.active .yasqe_queryButton").click()
    assert answer.value.status == 200, answer.value.text()
    page.wait_for_function("() => document.querySelectorAll('.tabPanel.active .yasr .dataTable tbody tr').length > 0")
    return int(page.locator(f".tabPanel.active {RESULT_ROWS}").count())


def test_editor_runs_a_query_and_shows_a_table(visit: Visit, seed_store: ox.Store) -> None:
    page = _open_editor(visit)
    preset = page.evaluate("() => window.cmokgEditor.getTab().getYasqe().getValue()")
    assert preset.startswith(sparql_prologue()), "the graph's prefixes are preset in the first query"
    visit.screenshot("editor")
    page.evaluate("(q) => window.cmokgEditor.getTab().getYasqe().setValue(q)", EDITOR_QUERY)
    shown = _run_and_count(visit)
    visit.screenshot("editor-results")
    expected = _rows(seed_store, EDITOR_QUERY)
    assert 0 < expected <= 50  # one page of the results table
    assert shown == expected
    visit.assert_clean()


def test_editor_links_the_graphs_iris_to_their_pages_here(visit: Visit, seed_store: ox.Store) -> None:
    """YASR links an IRI to itself; the graph's own (under the id base, or terms of the ontology) are not served
    at those addresses, so the page points them at /id/ and /ontology, which must answer."""
    page = _open_editor(visit)
    page.evaluate("(q) => window.cmokgEditor.getTab().getYasqe().setValue(q)", EDITOR_QUERY + " LIMIT 5")
    _run_and_count(visit)
    hrefs = page.locator(f".tabPanel.active {RESULT_ROWS} a[href]").evaluate_all(
        "(links) => links.map((a) => a.getAttribute('href'))")
    reviews = [str(row["review"].value) for row in seed_store.query(  # type: ignore[union-attr]
        EDITOR_QUERY + " LIMIT 5", use_default_graph_as_union=True)]
    assert reviews and all(r.startswith(BASE + "id/") for r in reviews)
    assert sorted(h for h in hrefs if h.startswith("/id/")) == sorted("/id/" + r[len(BASE + "id/"):] for r in reviews)
    assert not [h for h in hrefs if h.startswith(BASE)], "no link left to an IRI this server does not answer at"
    for href in hrefs[:3]:
        assert visit.page.request.get(visit.base + href).status == 200
    page.evaluate("(q) => window.cmokgEditor.getTab().getYasqe().setValue(q)",
                  f"SELECT ?class WHERE {{ VALUES ?class {{ <{CMO}Review> }} }}")
    _run_and_count(visit)
    term = page.locator(f".tabPanel.active {RESULT_ROWS} a[href]").first.get_attribute("href")
    assert term == "/ontology#Review"
    visit.assert_clean()


def test_editor_offers_the_catalog_as_examples(visit: Visit, seed_store: ox.Store) -> None:
    page = _open_editor(visit)
    names = page.locator("#examples button.example").evaluate_all("(bs) => bs.map((b) => b.dataset.name)")
    assert names == sorted(catalog.load_catalog())
    page.locator(f'#examples button.example[data-name="{CATALOG_QUERY}"]').click()
    title = catalog.load_catalog()[CATALOG_QUERY].title
    assert page.evaluate("() => window.cmokgEditor.getTab().getName()") == title
    shown = _run_and_count(visit)
    visit.screenshot("example-results")
    query = catalog.load_catalog()[CATALOG_QUERY]
    assert shown == len(list(catalog.run(seed_store, query, query.example_values)))  # type: ignore[arg-type]
    visit.assert_clean()


def test_editor_completes_the_graphs_prefixes(visit: Visit) -> None:
    """Typing an undeclared prefix adds this graph's declaration (cmo: is the cmokg ontology, not the
    unrelated namespace of YASGUI's bundled list), and nothing is looked up on the web."""
    page = _open_editor(visit)
    page.evaluate("() => window.cmokgEditor.getTab().getYasqe().setValue('')")
    page.locator(".tabPanel.active .CodeMirror").click()
    page.keyboard.type("SELECT * WHERE { ?s a cmo:CMOConfiguration ; prov:")
    declared = "() => window.cmokgEditor.getTab().getYasqe().getPrefixesFromQuery()"
    page.wait_for_function(f"() => ({declared})()['prov'] !== undefined")
    visit.screenshot("prefix-completion")
    prefixes = page.evaluate(declared)
    assert prefixes == {"cmo": PREFIXES["cmo"], "prov": PREFIXES["prov"]}
    visit.assert_clean()


def test_editor_page_without_javascript_is_a_form(visit_without_js: Visit, seed_store: ox.Store) -> None:
    visit = visit_without_js
    visit.goto("/sparql")
    form = visit.page.locator("form#plain-form")
    assert form.is_visible()
    visit.screenshot("editor-without-javascript")
    with visit.page.expect_navigation() as navigation:
        form.locator("button[type=submit]").click()
    answer = navigation.value
    assert answer.status == 200 and answer.headers["content-type"].startswith("application/sparql-results+json")
    visit.screenshot("form-results")
    assert len(json.loads(answer.body())["results"]["bindings"]) == _rows(seed_store, starter_query())
    visit.assert_clean()


# -- 5. the CMOC network ------------------------------------------------------------------------------------


PAINTED_PIXELS = """() => Array.from(document.querySelectorAll('#cy canvas')).reduce((n, canvas) => {
  if (!canvas.width || !canvas.height) { return n; }
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) { n += 1; } }
  return n;
}, 0)"""


def test_network_page_draws_nodes(visit: Visit) -> None:
    page = visit.page
    with page.expect_response(lambda r: r.url == visit.base + "/maps/network.json") as answer:
        visit.goto("/maps/network")
    elements = answer.value.json()
    cmocs = [n for n in elements["nodes"] if n["data"].get("kind") == "cmoc"]
    assert cmocs, "the network has CMOC nodes to draw"
    page.locator("#cy canvas").first.wait_for()
    page.wait_for_function(f"() => ({PAINTED_PIXELS})() > 0")
    visit.screenshot("network")
    assert page.locator("#static-network").is_hidden(), "the drawing replaces the static SVG"
    visit.assert_clean()
