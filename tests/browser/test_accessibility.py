"""Accessibility in a real browser: axe-core (npm axe-core, read from node_modules, never served by the app) run
in chromium on one page of every kind the web app serves (tests/served_pages.py), for the WCAG 2.1 A and AA
rules and axe's best practices (one main landmark, landmarks told apart, heading order, ...); and the main
controls reached by the keyboard alone.

The pages are those of tests/test_html_validity.py, loaded as a reader does: with JavaScript (the SPARQL
editor and the network built by their scripts, a query run and its results shown), and the pages that
script changes also without it; the review pages by uploading workbooks through the form. Every violation
fails, reported with its rule, impact and the selectors of the elements, except the two of ACCEPTED, which
are in the editor's own markup and come with their reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browsing import Visit
from conformance.server import live_server
from served_pages import (
    AXE_JS,
    FIXED_PAGES,
    REVIEWER_TOKEN,
    UPLOAD_LIMIT,
    WORKBOOK,
    PageCase,
    id_pages,
    require,
    reviewer_store,
    revised_workbook,
    violating_workbook,
)

from graph.store import EvidenceStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
# (rule, a class in the selector of the element) -> why it is not a defect a reader meets here
ACCEPTED = {
    ("aria-required-children", "tabsList"):
        "YASGUI keeps its 'add tab' button inside its role=tablist (TriplyDB/Yasgui#188; whether a tablist may "
        "own a button is open at w3c/aria#2322); the button is named and reached by Tab",
    ("scrollable-region-focusable", "CodeMirror-scroll"):
        "the query editor's scroller is scrolled from the editor's focusable text area, by its cursor keys",
}
RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.map(String), summary: n.failureSummary || ""}))}));
}"""


@pytest.fixture(scope="module")
def store_path(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reviewer_store(seed_store_path, tmp_path_factory.mktemp("accessibility"))


@pytest.fixture(scope="module")
def server(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The seed graph with workbook `extraction` in it, importing over the web on, uploads over UPLOAD_LIMIT
    refused (overrides the session's seed server for this module)."""
    with live_server(store_path, tmp_path_factory.mktemp("accessibility-server"), CMOKG_QUERY_WORKERS="1",
                     CMOKG_REVIEWER_TOKEN=REVIEWER_TOKEN, CMOKG_UPLOAD_LIMIT=str(UPLOAD_LIMIT)) as url:
        yield url


@pytest.fixture(scope="module")
def axe_source() -> str:
    require(AXE_JS, "axe-core (npm axe-core)")
    return AXE_JS.read_text(encoding="utf-8")


def violations(visit: Visit, axe_source: str, where: str) -> list[str]:
    """axe's violations on the page as it is now, one line per element, the accepted ones left out."""
    visit.page.evaluate(axe_source)  # defines window.axe in the page as it is now
    found: list[dict[str, Any]] = visit.page.evaluate(RUN_AXE, TAGS)
    lines = []
    for v in found:
        for node in v["nodes"]:
            selector = " ".join(node["target"])
            if any(rule == v["id"] and re.search(rf"\.{cls}\b", selector) for rule, cls in ACCEPTED):
                continue
            summary = " ".join(node["summary"].split())
            lines.append(f"{where}: {v['id']} ({v['impact']}): {v['help']} at {selector}: {summary}")
    return lines


def open_page(visit: Visit, case: PageCase) -> None:
    """Load a page and let its scripts finish; an error status is expected when the case says so (the
    console error chromium logs for it is then not a problem of the page)."""
    response = visit.page.goto(visit.base + case.path, wait_until="load")
    assert response is not None and response.status == case.status, (case, response and response.status)
    if case.status >= 400:
        notice = f"status of {case.status}"
        visit.problems[:] = [p for p in visit.problems if notice not in p]
    if case.path.startswith("/sparql"):
        visit.page.locator(".tabPanel.active .CodeMirror").wait_for()
    elif case.path.startswith("/maps/network"):
        visit.page.wait_for_function("() => !document.querySelector('#cy') || "
                                     "document.querySelector('#cy canvas') !== null")


@pytest.mark.parametrize("case", FIXED_PAGES, ids=[c.kind for c in FIXED_PAGES])
def test_page_has_no_accessibility_violations(visit: Visit, axe_source: str, case: PageCase) -> None:
    open_page(visit, case)
    found = violations(visit, axe_source, f"{case.kind} {case.path}")
    assert not found, "\n".join(found)


def test_every_kind_of_resource_page_has_no_accessibility_violations(visit: Visit, axe_source: str,
                                                                      store_path: Path) -> None:
    store = EvidenceStore(store_path, read_only=True)
    cases = id_pages(store)
    del store
    assert len(cases) > 20
    found: list[str] = []
    for case in cases:
        open_page(visit, case)
        found += violations(visit, axe_source, f"{case.kind} {case.path}")
    assert not found, "\n".join(found)


# The pages whose scripts change them, as a reader without JavaScript gets them (<noscript> forms and tables)
WITHOUT_JS = [c for c in FIXED_PAGES if c.path in ("/sparql", "/maps/network")]


def without_scripts(html: str) -> str:
    """The page as a browser without JavaScript builds it: its scripts not run, its <noscript> content shown.
    (axe itself needs scripts, and with them off in chromium its promise never settles.)"""
    html = re.sub(r"<script\b.*?</script>", "", html, flags=re.S | re.I)
    return re.sub(r"</?noscript>", "", html, flags=re.I)


@pytest.mark.parametrize("case", WITHOUT_JS, ids=[c.kind for c in WITHOUT_JS])
def test_page_without_javascript_has_no_accessibility_violations(visit: Visit, axe_source: str,
                                                                 case: PageCase) -> None:
    def serve_without_scripts(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=without_scripts(response.text()))

    visit.page.route(visit.base + case.path, serve_without_scripts)
    visit.goto(case.path)
    assert visit.page.locator("script").count() == 0 and visit.page.locator("noscript").count() == 0
    found = violations(visit, axe_source, f"{case.kind} {case.path} (no JavaScript)")
    assert not found, "\n".join(found)


def test_sparql_editor_with_tabs_and_results_has_no_accessibility_violations(visit: Visit, axe_source: str) -> None:
    """The editor as it is used: an example opened in a tab of its own, run, its results shown as a table."""
    page = visit.page
    open_page(visit, PageCase("sparql", "/sparql"))
    page.locator("#examples button.example").first.click()
    page.locator(".tabPanel.active .yasqe_queryButton").click()
    page.locator(".tabPanel.active .yasr table.dataTable tbody tr").first.wait_for()
    found = violations(visit, axe_source, "sparql editor with results")
    assert not found, "\n".join(found)


def _upload(visit: Visit, name: str, data: bytes) -> int:
    visit.goto("/review")
    visit.page.set_input_files("#workbook", files=[{"name": name, "mimeType": "application/zip", "buffer": data}])
    with visit.page.expect_navigation() as navigation:
        visit.page.get_by_role("button", name="Validate").click()
    response = navigation.value
    return response.status if response is not None else 0


def test_review_pages_have_no_accessibility_violations(visit: Visit, axe_source: str) -> None:
    """The report with violations, the 413 of a large upload, a revision's preview and the imported page."""
    found: list[str] = []
    assert _upload(visit, "unknown-source-id.zip", violating_workbook()) == 200
    assert visit.page.locator("#findings tbody tr").count() >= 1
    found += violations(visit, axe_source, "report with violations")
    assert _upload(visit, "big.zip", b"x" * (UPLOAD_LIMIT + 1)) == 413
    visit.problems[:] = [p for p in visit.problems if "status of 413" not in p]
    found += violations(visit, axe_source, "error 413 (upload too large)")
    assert _upload(visit, f"{WORKBOOK}.zip", revised_workbook()) == 200
    assert visit.page.locator("#changes-table tbody tr").count() >= 1
    found += violations(visit, axe_source, "revision preview")
    visit.page.get_by_label("Reviewer (name or ORCID)").fill("Ada")
    visit.page.get_by_label("Reviewer token").fill(REVIEWER_TOKEN)
    with visit.page.expect_navigation():
        visit.page.get_by_role("button", name="Import as a batch").click()
    found += violations(visit, axe_source, "imported")
    assert not found, "\n".join(found)


# -- the keyboard ----------------------------------------------------------------------------------------

# page -> the controls a reader must reach by Tab from the top of the page (CSS selectors, each matching one or
# more elements, every one of which must be reached)
KEYBOARD = {
    "/": ['header nav a', '#search input[name="q"]', '#search button'],
    "/search?q=social": ['form[role="search"] input[name="q"]', 'form[role="search"] button', "main a.cmoc"],
    "/review": ["#workbook", 'form[action="/review"] button[type="submit"]'],
    "/queries/evidence-trail": ["#param-cmoc", "#params button"],
    "/maps/matrix": ["#matrix td.cell a"],
    "/sparql": [".tabPanel.active .yasqe textarea", ".tabPanel.active .yasqe_queryButton", "#examples button.example",
                "header nav a"],
}
MARK = """(selectors) => { let n = 0;
  selectors.forEach((s, i) => document.querySelectorAll(s).forEach(el => { el.dataset.kbd = i + ":" + (n++); }));
  return n; }"""


@pytest.mark.parametrize("path", list(KEYBOARD))
def test_main_controls_are_reached_by_the_keyboard(visit: Visit, path: str) -> None:
    """Pressing Tab from the top of the page reaches every one of the page's main controls, and leaves each
    (no keyboard trap: the SPARQL editor gives Tab back)."""
    open_page(visit, PageCase(path, path))
    page = visit.page
    selectors = KEYBOARD[path]
    expected = page.evaluate(MARK, selectors)
    assert expected >= len(selectors), f"{path}: some selector matches nothing: {selectors}"
    stops = page.evaluate("document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]').length")
    reached: set[str] = set()
    for _ in range(stops + 5):  # one whole round, from wherever the focus starts (the editor takes it on load)
        page.keyboard.press("Tab")
        mark = page.evaluate("document.activeElement ? document.activeElement.dataset.kbd || '' : ''")
        if mark:
            reached.add(mark)
    missing = page.evaluate("(reached) => Array.from(document.querySelectorAll('[data-kbd]'))"
                            ".filter(el => !reached.includes(el.dataset.kbd))"
                            ".map(el => el.outerHTML.slice(0, 120))", sorted(reached))
    assert not missing, f"{path}: {len(missing)} control(s) Tab does not reach:\n" + "\n".join(missing[:20])
