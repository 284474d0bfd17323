"""Every kind of HTML page the web app serves, for the checks that read pages whole: the Nu Html Checker
(tests/test_html_validity.py) and axe-core in chromium (tests/browser/test_accessibility.py).

The pages are served over the seed graph with the good fixture imported as workbook `extraction` (so that
/review can show what a revision would change) and a reviewer token configured (so that the import form and
the imported page show). The checkers come from npm (package.json's devDependencies, installed by `npm ci` in
`make install`) and are read from node_modules here; the app never serves them. Without them, or without
java, the checks skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from webforms import good_files, write, zipped

from graph.store import EvidenceStore

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VNU_JAR = NODE_MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE_JS = NODE_MODULES / "axe-core" / "axe.min.js"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ID = "https://w3id.org/cmokg/id/"
WORKBOOK = "extraction"  # the good fixture's workbook id: a revision of it is previewed
REVIEWER_TOKEN = "pages-reviewer-token"
UPLOAD_LIMIT = 256 * 1024  # small, so that a 413 from /review is cheap to provoke
BAD_WORKBOOK = Path(__file__).parent / "fixtures" / "workbooks" / "bad" / "unknown-source-id"


def require(path: Path, what: str) -> None:
    """Skip when a checker is absent, except under CI (CI=true), where its absence fails the run."""
    if path.is_file():
        return
    reason = f"{what} is absent ({path}): run `make install` (npm ci installs package.json's devDependencies)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: a missing checker fails the run)")
    pytest.skip(reason)


def require_program(name: str, why: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is absent: {why}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: a missing program fails the run)")
    pytest.skip(reason)


@dataclass(frozen=True)
class PageCase:
    """A page to check: what it is, its path, and the status it is served with."""

    kind: str
    path: str
    status: int = 200


# Pages whose path does not depend on the data's identifiers (the /id/ pages are picked from the store).
FIXED_PAGES = [
    PageCase("home", "/"),
    PageCase("reviews list", "/reviews"),
    PageCase("one review", "/reviews/calderon2021"),
    PageCase("framework", "/framework"),
    PageCase("CMOC list", "/cmocs"),
    PageCase("CMOC list, filtered", "/cmocs?dimension=organisational-contingencies&setting=general-practice"),
    PageCase("search form", "/search"),
    PageCase("search results", "/search?q=social"),
    PageCase("search error (too short)", "/search?q=x", 400),
    PageCase("error 400 (bad query string)", "/search?q=%FF", 400),
    PageCase("error 400 (bad page)", "/cmocs?page=999", 400),
    PageCase("error 404 (no such review)", "/reviews/no-such-review", 404),
    PageCase("ontology", "/ontology"),
    PageCase("shapes", "/shapes"),
    PageCase("catalog list", "/queries"),
    PageCase("catalog run result", "/queries/reviews-summary"),
    PageCase("catalog run result with parameter",
             "/queries/evidence-trail?cmoc=https%3A%2F%2Fw3id.org%2Fcmokg%2Fid%2Fcmoc%2Ftierney2020-c1"),
    PageCase("catalog form (no value yet)", "/queries/evidence-trail"),
    PageCase("catalog error 400 (bad parameter)", "/queries/evidence-trail?cmoc=not%20an%20iri", 400),
    PageCase("maps", "/maps"),
    PageCase("maps matrix", "/maps/matrix"),
    PageCase("maps network", "/maps/network"),
    PageCase("sparql", "/sparql"),
    PageCase("review upload form", "/review"),
    # /id/ pages fuller than the first of their kind (id_pages): a review citing many sources, a CMOC with
    # supporting and refuting evidence
    PageCase("/id/ a review", "/id/source/calderon2021"),
    PageCase("/id/ a contested CMOC", "/id/cmoc/tierney2020-c1"),
]


def id_pages(store: EvidenceStore) -> list[PageCase]:
    """One /id/ page for each rdf:type of the resources under id/ (the first IRI of each type), so that every
    template of webapp/templates/ld/ and every kind of resource the generic page shows is rendered."""
    found = store.query(f"""SELECT ?t (MIN(STR(?s)) AS ?first) WHERE {{ ?s a ?t
        FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{ID}")) }} GROUP BY ?t ORDER BY ?t""")
    cases: dict[str, PageCase] = {}
    for row in found:  # type: ignore[union-attr]
        iri = row["first"].value
        kind = row["t"].value.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        cases.setdefault(iri, PageCase(f"/id/ {kind}", "/id/" + iri.removeprefix(ID)))
    return list(cases.values())


def reviewer_store(seed_store_path: Path, work: Path) -> Path:
    """A copy of the seed graph with the good fixture imported as workbook `extraction` (closed again)."""
    from graph.cli import main

    path = work / "store"
    shutil.copytree(seed_store_path, path)
    folder = write(work / "v1" / WORKBOOK, good_files())
    assert main(["import", "--store", str(path), str(folder), "--reviewer", "Ada"]) == 0
    return path


def violating_workbook() -> bytes:
    """A zipped workbook whose report has violations (a CMOC naming a source nobody defines)."""
    return zipped({p.name: p.read_text(encoding="utf-8") for p in sorted(BAD_WORKBOOK.glob("*.csv"))})


def revised_workbook() -> bytes:
    """A conforming revision of workbook `extraction`: /review shows what importing it changes."""
    from test_revision_preview import revised_files

    return zipped(revised_files())
