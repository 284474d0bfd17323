"""HTML validity: one page of every kind the web app serves, checked by the Nu Html Checker (the W3C's
validator, vnu.jar from npm's vnu-jar) in one java run.

The pages (tests/served_pages.py) are rendered over the seed graph with a revision's workbook in it: home,
the browse lists, one /id/ page of every rdf:type under id/ (reviews and other documents, CMOCs and their
parts, evidence fragments and their selectors, concepts and schemes, batches and their activities, people,
theories), the ontology and shapes documents, the query catalog, a form, a run and a refusal of a catalog
query, search results and errors, the maps, the SPARQL page (with the editor and without its assets), the
review form, a report with violations, a revision's preview, the page after an import, and the error pages
served as HTML (400, 404, 413; a 406, and a 404 under /id/, are plain text: nothing to validate). The two
maps served as SVG files are checked in the same run.

Errors fail the test, and so do warnings (vnu's "info" messages of subType "warning": an empty <section>
heading, a redundant role, a doubtful attribute value); plain informational messages (advice attached to an
error, or "trailing slash on void element") are not findings. A broken page of our own is checked in the same
run, so that a checker that found nothing because it checked nothing fails too.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from served_pages import (
    BROWSER_ACCEPT,
    FIXED_PAGES,
    REVIEWER_TOKEN,
    UPLOAD_LIMIT,
    VNU_JAR,
    WORKBOOK,
    id_pages,
    require,
    require_program,
    reviewer_store,
    revised_workbook,
    violating_workbook,
)
from webforms import post
from werkzeug.test import TestResponse

from graph.store import EvidenceStore
from webapp import create_app

# A page vnu must fault: a duplicate id, a <div> inside a <p>'s phrasing content (an unclosed <p> is closed by
# it: the </p> after it is a stray end tag), an <img> without alt, a <td> outside any table.
CANARY = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>canary</title></head><body>
<p id="twice">a<div>b</div></p><span id="twice"></span><img src="x.png"><td>c</td></body></html>"""
CANARY_FAULTS = ("Duplicate ID", "Stray end tag", "An “img” element must have an “alt” attribute", "Stray start tag")


@dataclass(frozen=True)
class Served:
    kind: str
    url: str  # method and path, as a reader would report it
    status: int
    mimetype: str
    body: bytes


@pytest.fixture(scope="module")
def store(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> EvidenceStore:
    return EvidenceStore(reviewer_store(seed_store_path, tmp_path_factory.mktemp("html-validity")))


def _app(store: EvidenceStore, **config: object) -> Flask:
    return create_app({"TESTING": True, "CMOKG_STORE_OBJECT": store, "CMOKG_QUERY_WORKERS": 0,
                       "CMOKG_REVIEWER_TOKEN": REVIEWER_TOKEN, "CMOKG_UPLOAD_LIMIT": UPLOAD_LIMIT, **config})


def _served(kind: str, url: str, r: TestResponse) -> Served:
    try:
        return Served(kind, url, r.status_code, r.mimetype or "", r.get_data())
    finally:
        r.close()


@pytest.fixture(scope="module")
def pages(store: EvidenceStore, tmp_path_factory: pytest.TempPathFactory) -> list[Served]:
    """Every page kind as served (GETs with a browser's Accept, then the review flow's POSTs, in order)."""
    client = _app(store).test_client()
    served: list[Served] = []
    for case in [*FIXED_PAGES, *id_pages(store)]:
        page = _served(case.kind, f"GET {case.path}", client.get(case.path, headers={"Accept": BROWSER_ACCEPT}))
        assert page.status == case.status, (case, page.body[:300])
        served.append(page)
    for path in ("/maps/matrix.svg", "/maps/network.svg"):
        served.append(_served("map as SVG", f"GET {path}", client.get(path)))
    served.append(_served("406 (nothing acceptable)", "GET /id/cmoc/tierney2020-c1 (Accept: image/png)",
                          client.get("/id/cmoc/tierney2020-c1", headers={"Accept": "image/png"})))
    served.append(_served("404 under /id/", "GET /id/cmoc/no-such-cmoc",
                          client.get("/id/cmoc/no-such-cmoc", headers={"Accept": BROWSER_ACCEPT})))
    plain = _app(store, CMOKG_ASSETS=str(tmp_path_factory.mktemp("no-assets") / "node_modules")).test_client()
    served.append(_served("sparql without the editor's assets", "GET /sparql (no node_modules)",
                          plain.get("/sparql", headers={"Accept": BROWSER_ACCEPT})))

    served.append(_served("report with violations", "POST /review (unknown-source-id)",
                          post(client, "/review", "unknown-source-id.zip", violating_workbook())))
    served.append(_served("error 413 (upload too large)", "POST /review (too large)",
                          post(client, "/review", "big.zip", b"x" * (UPLOAD_LIMIT + 1))))
    preview = _served("revision preview", f"POST /review ({WORKBOOK}.zip, a revision)",
                      post(client, "/review", f"{WORKBOOK}.zip", revised_workbook()))
    served.append(preview)
    [upload] = re.findall(rb'name="upload" value="([^"]+)"', preview.body)
    served.append(_served("imported", "POST /review/import",
                          post(client, "/review/import", upload=upload.decode(), reviewer="Ada",
                               token=REVIEWER_TOKEN)))
    return served


def test_every_page_kind_is_served_as_expected(pages: list[Served]) -> None:
    """The pages the checker reads are the ones meant: HTML of each status the app answers in HTML."""
    html = [p for p in pages if p.mimetype == "text/html"]
    assert {p.status for p in html} == {200, 201, 400, 404, 413}, sorted({(p.status, p.kind) for p in html})
    by_kind = {p.kind: p for p in pages}
    assert by_kind["report with violations"].body.count(b"<td>Violation</td>") >= 1
    assert b'id="changes-table"' in by_kind["revision preview"].body
    assert by_kind["imported"].status == 201
    assert b'id="plain-form"' in by_kind["sparql without the editor's assets"].body
    # errors a program asks for are plain text: no HTML page to validate
    for kind, status in (("406 (nothing acceptable)", 406), ("404 under /id/", 404)):
        assert (by_kind[kind].status, by_kind[kind].mimetype) == (status, "text/plain"), kind


Message = dict[str, object]


@dataclass
class Checked:
    """vnu's messages, and the page each file it read holds (by the file's path)."""

    files: dict[str, Served]
    messages: list[Message]

    def page(self, message: Message) -> Served | None:
        return self.files.get(str(message.get("url", "")).removeprefix("file:"))


@pytest.fixture(scope="module")
def checked(pages: list[Served], tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """One java run for every page (the JVM starts once), the canary page among them."""
    require(VNU_JAR, "the Nu Html Checker (npm vnu-jar)")
    java = require_program("java", "the Nu Html Checker runs on Java (apt-get install default-jre-headless)")
    folder = tmp_path_factory.mktemp("vnu")
    files: dict[str, Served] = {}
    for n, page in enumerate([*pages, Served("canary", "canary", 200, "text/html", CANARY.encode())]):
        suffix = {"text/html": ".html", "image/svg+xml": ".svg"}.get(page.mimetype)
        if suffix is not None:
            path = folder / f"{n:03d}{suffix}"
            path.write_bytes(page.body)
            files[str(path)] = page
    run = subprocess.run([java, "-jar", str(VNU_JAR), "--format", "json", "--stdout", "--also-check-svg",
                          *files], capture_output=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr.decode(errors="replace")[-2000:]  # 1: some file has errors
    return Checked(files, json.loads(run.stdout)["messages"])


def _finding(message: Message) -> bool:
    kind, sub = message.get("type"), message.get("subType")
    return kind in ("error", "non-document-error") or (kind == "info" and sub == "warning")


def _describe(checked: Checked, message: Message) -> str:
    page = checked.page(message)
    where = f"{page.kind}: {page.url}" if page else str(message.get("url", "(no file)"))
    line, column = message.get("lastLine", "?"), message.get("firstColumn", message.get("lastColumn", "?"))
    extract = " ".join(str(message.get("extract", "")).split())
    kind = message.get("subType") or message.get("type")
    return f"{where} line {line}, column {column}: {kind}: {message.get('message')} [{extract}]"


def test_the_checker_finds_the_faults_of_a_broken_page(checked: Checked) -> None:
    found = [str(m.get("message")) for m in checked.messages
             if _finding(m) and (page := checked.page(m)) is not None and page.kind == "canary"]
    missing = [fault for fault in CANARY_FAULTS if not any(fault in text for text in found)]
    assert not missing, (missing, found)


def test_every_page_is_valid_html(checked: Checked) -> None:
    assert sum(1 for page in checked.files.values() if page.kind != "canary") > 40
    unknown = [_describe(checked, m) for m in checked.messages if checked.page(m) is None]
    assert not unknown, "vnu reported on no file it was given:\n" + "\n".join(unknown)
    problems = [_describe(checked, m) for m in checked.messages
                if _finding(m) and (page := checked.page(m)) is not None and page.kind != "canary"]
    assert not problems, f"{len(problems)} finding(s) of the Nu Html Checker:\n" + "\n".join(problems)
