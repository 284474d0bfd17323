"""A reader with JavaScript turned off: every page but the editor and the interactive network must still work.

The reader walks the site by clicking links and submitting forms only (no page.evaluate), from the home page
to a review, its CMOCs, the evidence matrix, a catalog query and the search, and what each page shows is
compared with the same question put to the store.
"""

from __future__ import annotations

import pyoxigraph as ox
import pytest
from browsing import Visit

from graph import catalog
from graph.namespaces import sparql_prologue

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def _select(store: ox.Store, where: str) -> set[str]:
    solutions = store.query(f"{sparql_prologue()}SELECT DISTINCT ?x WHERE {{ {where} }}",
                            use_default_graph_as_union=True)
    assert isinstance(solutions, ox.QuerySolutions)
    return {row["x"].value for row in solutions}  # type: ignore[union-attr]


def _click(visit: Visit, selector: str) -> None:
    with visit.page.expect_navigation():
        visit.page.locator(selector).first.click()


def test_reader_goes_from_home_to_a_review_and_one_of_its_cmocs(visit_without_js: Visit, seed_store: ox.Store) -> None:
    visit = visit_without_js
    visit.goto("/")
    _click(visit, 'nav a[href="/reviews"]')
    shown = {a.get_attribute("data-review") for a in visit.page.locator("tr[data-review]").all()}
    assert shown == _select(seed_store, "?x a cmo:Review")
    visit.screenshot("reviews")
    _click(visit, 'a.review[href="/reviews/calderon2021"]')  # the seed review, with CMOCs
    assert visit.page.locator("section.theory").count() >= 1
    visit.screenshot("review")
    cmoc_link = visit.page.locator('section.theory a[href^="/id/cmoc/"]').first
    href = cmoc_link.get_attribute("href")
    assert href is not None
    _click(visit, f'section.theory a[href="{href}"]')
    assert visit.page.url.endswith(href)
    assert visit.page.locator("h1").inner_text().strip()
    visit.screenshot("cmoc")
    visit.assert_clean()


def test_reader_opens_a_matrix_cell(visit_without_js: Visit) -> None:
    visit = visit_without_js
    visit.goto("/maps/matrix")
    cell = visit.page.locator("td.cell").first
    expected = int(cell.get_attribute("data-cmocs") or "0")
    assert expected >= 1
    visit.screenshot("matrix")
    with visit.page.expect_navigation():
        cell.locator("a").first.click()
    listed = {a.get_attribute("href") for a in visit.page.locator('body a[href^="/id/cmoc/"]').all()}
    assert len(listed) == expected
    visit.screenshot("cell-cmocs")
    visit.assert_clean()


def test_reader_runs_a_catalog_query_and_searches(visit_without_js: Visit, seed_store: ox.Store) -> None:
    visit = visit_without_js
    visit.goto("/queries")
    _click(visit, 'a.query[href="/queries/mechanism-keyword"]')
    visit.page.locator('form#params input[name="keyword"]').fill("trust")
    with visit.page.expect_navigation():
        visit.page.locator("form#params button[type=submit]").click()
    rows = visit.page.locator("table.results tbody tr").count()
    query = catalog.load_catalog()["mechanism-keyword"]
    expected = len(list(catalog.run(seed_store, query, {"keyword": "trust"})))
    assert rows == min(expected, 100) and rows > 0
    visit.screenshot("query-results")

    _click(visit, 'nav a[href="/search"]')
    visit.page.locator('input[name="q"]').fill("Trust")
    with visit.page.expect_navigation():
        visit.page.locator('input[name="q"]').press("Enter")
    hits = {li.get_attribute("data-cmoc") for li in visit.page.locator("li.hit").all()}
    texts = ("?x cmo:hasContext/cmo:description ?t",
             "?x cmo:hasMechanism/(cmo:hasResource|cmo:hasReasoning)/cmo:description ?t",
             "?x cmo:hasOutcome/cmo:description ?t",
             "?e cmo:supports ?x ; oa:hasTarget/oa:hasSelector/oa:exact ?t")
    union = " UNION ".join("{ " + t + " }" for t in texts)
    expected_hits = _select(seed_store, f'?x a cmo:CMOConfiguration . {union} FILTER(CONTAINS(LCASE(?t), "trust"))')
    total = int(visit.page.locator("#total").get_attribute("data-total") or "-1")
    assert total == len(expected_hits)
    assert hits <= expected_hits and hits
    visit.screenshot("search")
    visit.assert_clean()
