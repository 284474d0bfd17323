"""Hostile text in an imported workbook, seen in a real browser: it must show as text, never run.

A workbook whose titles, authors, venues, labels, contexts, mechanisms, outcomes, quotes, pages, sections,
programme theory and reviewer name hold `<script>` elements and attribute-breaking `"><img onerror>` markup is
imported into a copy of the seed graph with `cmokg import`; then every page that shows it is opened in chromium
with JavaScript on. No dialog may open, no console error appear, and the markup must be the page's text. The
store also gets (by SPARQL Update, which the importer would refuse) a javascript: URL and a javascript: CMOC
IRI: no link on any page may lead there.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsing import Visit
from conformance.server import live_server

from graph.cli import main
from graph.namespaces import BASE
from graph.store import EvidenceStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ID = BASE + "id/"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
REVIEWER = f"Rev {SCRIPT}{IMG}"


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def hostile_workbook(folder: Path) -> Path:
    folder.mkdir()
    _write(folder / "sources.csv", ["source_id", "type", "title", "authors", "year", "venue", "doi", "pmid", "url",
                                    "cited_by"], [
        ["xss-review", "review", f"Title {SCRIPT} {IMG}", f"Doe{SCRIPT}, Jane; Roe{IMG}, R", "2021",
         f"Venue {SCRIPT}", "10.1234/xss.1", "", "", ""],
        ["xss-study", "study", f"Study {IMG}", f"Poe{SCRIPT}, E", "2019", f"V{IMG}", "10.1234/xss.2", "",
         'https://example.org/"onmouseover=alert(5)', "xss-review"]])
    _write(folder / "cmocs.csv", ["cmoc_id", "source_id", "label", "statement", "context", "mechanism_resource",
                                  "mechanism_reasoning", "outcome", "setting", "framework_resource", "leads_to",
                                  "programme_theory", "extracted_by", "extracted_on"], [
        ["xss-c1", "xss-review", f"L{SCRIPT}", f"St {SCRIPT}", f"Ctx {SCRIPT} trust", f"Res {IMG}", f"Rea {SCRIPT}",
         f"Out {IMG}", "link workers", "training opportunities", "xss-c2", f"PT {SCRIPT}", REVIEWER, "2024-01-31"],
        ["xss-c2", "xss-review", f"L2{IMG}", "", f"C2 {IMG}", "", f"R2 {SCRIPT}", f"O2 {SCRIPT}",
         "link workers; community sector", "trustful interactions", "", f"PT {SCRIPT}", "0000-0002-1825-0097", ""]])
    _write(folder / "evidence.csv", ["evidence_id", "cmoc_id", "source_id", "quote", "page", "section", "relation",
                                     "interpretive_level", "relevance", "rigour"], [
        ["xss-e1", "xss-c1", "xss-study", f"Quote {SCRIPT} {IMG}", f"12{SCRIPT}", f"Sec{IMG}", "supports",
         "participant", "high", "moderate"],
        ["xss-e2", "xss-c2", "xss-review", f"Q2 {IMG} trust", "4", "Disc", "refutes", "author", "moderate", "low"]])
    return folder


@pytest.fixture(scope="module")
def server(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The seed graph plus the hostile workbook (overrides the session's seed server for this module)."""
    work = tmp_path_factory.mktemp("hostile")
    store = work / "store"
    shutil.copytree(seed_store_path, store)
    folder = hostile_workbook(work / "xss-workbook")
    assert main(["import", "--store", str(store), str(folder), "--reviewer", REVIEWER]) == 0
    evidence = EvidenceStore(store)
    evidence.update(f"""INSERT DATA {{ GRAPH <{ID}batch/hostile-update> {{
        <{ID}source/xss-review> <http://purl.org/spar/fabio/hasURL> "javascript:alert(6)" .
        <{ID}cmoc/xss-c2> <https://w3id.org/cmokg/ontology#leadsTo> <javascript:alert(7)> .
        <javascript:alert(7)> a <https://w3id.org/cmokg/ontology#CMOConfiguration> ;
            <https://w3id.org/cmokg/ontology#authorLabel> "Evil" . }} }}""")
    evidence.flush()
    del evidence
    with live_server(store, work, CMOKG_QUERY_WORKERS="1") as url:
        yield url


PAGES = ["/", "/reviews", "/reviews/xss-review", "/cmocs", "/search?q=trust", "/search?q=%3Cscript%3E",
         "/framework", "/maps/matrix", "/maps/network", "/id/cmoc/xss-c1", "/id/cmoc/xss-c2",
         "/id/source/xss-review", "/id/source/xss-study", "/id/evidence/xss-e1", "/queries/all-cmocs",
         "/queries/documents", "/queries/batches", "/cmocs?setting=link-workers"]


def test_hostile_text_shows_as_text_and_never_runs(visit: Visit) -> None:
    dialogs: list[str] = []
    visit.page.on("dialog", lambda dialog: (dialogs.append(f"{visit.page.url}: {dialog.message}"), dialog.dismiss()))
    shown_script = shown_img = 0
    for path in PAGES:
        visit.goto(path)
        if path == "/maps/network":
            visit.page.wait_for_selector("#cy:not([hidden])")
        text = visit.page.locator("body").inner_text()
        shown_script += SCRIPT in text
        shown_img += IMG in text
        assert visit.page.locator("img").count() == 0, path  # no page has images: any would be injected
        assert visit.page.locator("body script:not([src]):has-text('alert')").count() == 0, path
        scripted = visit.page.eval_on_selector_all(
            "[href], [src], [action]",
            "els => els.map(e => e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action'))"
            ".filter(v => /^\\s*(javascript|data|vbscript):/i.test(v))")
        assert scripted == [], path
    visit.screenshot("cmoc")
    assert dialogs == []
    assert shown_script >= 10 and shown_img >= 8  # the markup is there, as text
