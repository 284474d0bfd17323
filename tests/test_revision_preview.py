"""What a revision WILL change, shown before it is imported: `cmokg validate` (table and JSON) and /review (page
and JSON) list the CMOCs, sources and evidence fragments importing it makes new, changes or drops, the same
(change, kind, node) rows the catalog query batch-changes lists once it is imported; a first import shows none,
and validating writes nothing."""

from __future__ import annotations

import base64
import gc
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pyoxigraph as ox
import pytest
from flask.testing import FlaskClient
from webforms import (
    C3_ROW,
    CONTEXT,
    E3_QUOTE,
    NEW_CONTEXT,
    NEW_QUOTE,
    QUOTE,
    good_files,
    post,
    write,
    zipped,
)

from graph.catalog import load_catalog, run
from graph.cli import main
from graph.pipeline import import_workbook, load_schema
from graph.store import EvidenceStore
from webapp import create_app

ID = "https://w3id.org/cmokg/id/"
TOKEN = "preview-token"
NAME = "extraction"  # the workbook id: the folder's name, the zip's stem


Rows = set[tuple[str, str, str]]
# What the revision below changes against the good fixture
EXPECTED: Rows = {
    ("changed", "CMOC", ID + "cmoc/fx-c1"),  # its context
    ("changed", "evidence", ID + "evidence/fx-e1"),  # its quote
    ("new", "CMOC", ID + "cmoc/fx-c3"),
    ("gone", "evidence", ID + "evidence/fx-e3"),
}


def revised_files() -> dict[str, str]:
    """The good fixture with fx-e1's quote corrected, fx-c1's context reworded, a CMOC fx-c3 added and the
    evidence row fx-e3 dropped."""
    files = good_files()
    assert QUOTE in files["evidence.csv"] and CONTEXT in files["cmocs.csv"]
    files["cmocs.csv"] = files["cmocs.csv"].replace(CONTEXT, NEW_CONTEXT) + C3_ROW
    files["evidence.csv"] = "".join(line for line in files["evidence.csv"].splitlines(keepends=True)
                                    if not line.startswith("fx-e3,")).replace(QUOTE, NEW_QUOTE)
    return files


def quads(store: EvidenceStore) -> set[ox.Quad]:
    return set(store.ox.quads_for_pattern(None, None, None, None))


def listed(store: EvidenceStore, batch: str) -> Rows:
    """The (change, kind, node) rows the catalog query batch-changes lists for a batch, but its "revises" row."""
    found = run(store.ox, load_catalog()["batch-changes"], {"batch": batch})
    assert isinstance(found, ox.QuerySolutions)
    rows = [(r["change"].value, r["kind"].value, r["node"].value) for r in found]  # type: ignore[union-attr]
    assert len(rows) == len(set(rows))
    return {row for row in rows if row[0] != "revises"}


def of(changes: list[dict[str, object]]) -> Rows:
    rows = [(str(c["change"]), str(c["kind"]), str(c["node"])) for c in changes]
    assert len(rows) == len(set(rows))
    return set(rows)


@pytest.fixture
def first(schema_store: EvidenceStore, tmp_path: Path) -> str:
    """The good fixture imported as workbook `extraction`; its batch."""
    imported = import_workbook(schema_store, [write(tmp_path / "v1" / NAME, good_files())], reviewer="Ada")
    assert imported.imported and imported.batch, imported.report.to_json()
    schema_store.flush()
    return imported.batch


def import_revision(store: EvidenceStore, tmp_path: Path, superseded: str) -> str:
    imported = import_workbook(store, [write(tmp_path / "v2-import" / NAME, revised_files())], reviewer="Ada")
    assert imported.imported and imported.batch and imported.superseded == [superseded], imported.report.to_json()
    return imported.batch


# -- the CLI ------------------------------------------------------------------------------------------------
# The CLI opens the store itself (read-only): no handle of the test's stays open on it meanwhile.


def closed_store(path: Path, files: dict[str, str] | None, tmp_path: Path) -> str | None:
    """A store at `path` with the schema and, given `files`, those imported as workbook `extraction`; closed.
    Returns the batch imported."""
    store = EvidenceStore(path)
    load_schema(store)
    batch = None
    if files is not None:
        imported = import_workbook(store, [write(tmp_path / "v1" / NAME, files)], reviewer="Ada")
        assert imported.imported and imported.batch, imported.report.to_json()
        batch = imported.batch
    store.flush()
    del store
    gc.collect()
    return batch


def stored_quads(path: Path) -> set[ox.Quad]:
    store = EvidenceStore(path, read_only=True)
    found = quads(store)
    del store
    gc.collect()
    return found


def validate_cli(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["validate", "--store", str(path), *args])
    return code, capsys.readouterr().out


def test_cli_validate_shows_what_the_revision_will_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "store"
    first = closed_store(path, good_files(), tmp_path)
    folder = write(tmp_path / "v2" / NAME, revised_files())
    before = stored_quads(path)
    code, text = validate_cli(capsys, path, "--format", "json", str(folder))
    assert code == 0
    report = json.loads(text)
    assert report["conforms"] and report["supersedes"] == [first]
    assert of(report["changes"]) == EXPECTED
    by_node = {c["node"]: c for c in report["changes"]}
    e1 = by_node[ID + "evidence/fx-e1"]
    assert e1["identifier"] == "fx-e1" and e1["former_texts"] == [QUOTE] and e1["texts"] == [NEW_QUOTE]
    e3 = by_node[ID + "evidence/fx-e3"]
    assert e3["identifier"] == "fx-e3" and e3["texts"] == [E3_QUOTE] and e3["earlier"] == first
    c3 = by_node[ID + "cmoc/fx-c3"]
    assert c3["identifier"] == "fx-c3" and c3["texts"] == ["CMOC3"] and c3["former_identifier"] is None
    # the table: after the findings, counts per change and kind, then one line per change
    code, table = validate_cli(capsys, path, str(folder))
    assert code == 0
    assert table.index("conforms") < table.index(f"importing it would supersede batch {first} and change 4 node(s): "
                                                 "1 changed CMOC, 1 changed evidence, 1 gone evidence, 1 new CMOC")
    lines = table.splitlines()
    for change, kind, ident in [("changed", "CMOC", "fx-c1"), ("changed", "evidence", "fx-e1"),
                                ("new", "CMOC", "fx-c3"), ("gone", "evidence", "fx-e3")]:
        assert any(change in line and kind in line and ident in line for line in lines), (ident, table)
    assert any("fx-e1" in line and f"{QUOTE} → {NEW_QUOTE}" in line for line in lines)
    # validating wrote nothing; importing it records exactly what was shown
    assert stored_quads(path) == before
    store = EvidenceStore(path)
    assert first is not None
    second = import_revision(store, tmp_path, first)
    assert listed(store, second) == of(report["changes"]) == EXPECTED


def test_cli_validate_of_a_first_import_or_the_same_file_again_shows_no_change(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "store"
    closed_store(path, None, tmp_path)
    folder = write(tmp_path / "v1" / NAME, good_files())
    code, text = validate_cli(capsys, path, "--format", "json", str(folder))
    assert code == 0 and json.loads(text)["changes"] == [] and json.loads(text)["supersedes"] == []
    code, table = validate_cli(capsys, path, str(folder))
    assert code == 0 and "conforms" in table and "importing it would" not in table and "what importing" not in table
    # the same file again changes nothing (batch-changes still lists what it recorded when first imported)
    closed_store(path, good_files(), tmp_path)
    code, text = validate_cli(capsys, path, "--format", "json", str(folder))
    assert code == 0 and json.loads(text)["changes"] == [] and json.loads(text)["supersedes"] == []
    # the CSV report is the findings only, as before
    code, csv_text = validate_cli(capsys, path, "--format", "csv", str(folder))
    assert code == 0 and csv_text.splitlines() == ["severity,sheet,row,column,message,value,focus_node,path"]


# -- /review ------------------------------------------------------------------------------------------------


class Page(HTMLParser):
    """The changes section of /review's page: its heading, rows (cells' text), the links in them."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.rows: list[list[str]] = []
        self.links: dict[str, str] = {}  # identifier -> href, in the changes table
        self.supersedes_links: list[str] = []
        self._in: list[str] = []
        self._heading: str | None = None
        self._href: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id") in ("changes-table", "supersedes"):
            self._in.append(str(a["id"]))
        if tag == "h2":
            self._heading = ""
        if tag == "tr" and "changes-table" in self._in:
            self.rows.append([])
        if tag == "td" and "changes-table" in self._in:
            self._cell = []
        if tag == "a":
            self._href = a.get("href")
            if "supersedes" in self._in and self._href:
                self.supersedes_links.append(self._href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self._heading is not None:
            self.headings.append(self._heading.strip())
            self._heading = None
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "a":
            self._href = None
        if tag == "table" and "changes-table" in self._in:
            self._in.remove("changes-table")
        if tag == "p" and "supersedes" in self._in:
            self._in.remove("supersedes")

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading += data
        if self._cell is not None:
            self._cell.append(data)
            if self._href is not None and "changes-table" in self._in:
                self.links[data.strip()] = self._href


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.rows = [row for row in page.rows if row]  # the header row has no td
    return page


@pytest.fixture
def client(schema_store: EvidenceStore) -> FlaskClient:
    return create_app({"TESTING": True, "CMOKG_STORE_OBJECT": schema_store, "CMOKG_REVIEWER_TOKEN": TOKEN,
                       "CMOKG_QUERY_WORKERS": 0}).test_client()


def test_review_shows_what_the_revision_will_change(schema_store: EvidenceStore, first: str, client: FlaskClient,
                                                    tmp_path: Path) -> None:
    upload = zipped(revised_files())
    before = quads(schema_store)
    r = post(client, "/review?format=json", f"{NAME}.zip", upload)
    assert r.status_code == 200, r.data
    report = r.get_json()
    assert report["conforms"] and report["supersedes"] == [first]
    assert of(report["changes"]) == EXPECTED

    r = post(client, "/review", f"{NAME}.zip", upload)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    page = parse(html)
    assert "What importing this changes" in page.headings
    assert html.index('id="changes"') < html.index('id="import"')  # above the import form
    assert page.supersedes_links == ["/id/batch/" + first.rsplit("/", 1)[-1]]
    shown = {(row[0], row[1], row[2]) for row in page.rows}
    assert shown == {(c, k, node.rsplit("/", 1)[-1]) for c, k, node in EXPECTED}
    # a node the store holds links its page; the new CMOC is not in the store yet
    assert page.links == {"fx-c1": "/id/cmoc/fx-c1", "fx-e1": "/id/evidence/fx-e1", "fx-e3": "/id/evidence/fx-e3"}
    texts = {row[2]: row[3] for row in page.rows}
    assert texts["fx-e1"] == f"{QUOTE} → {NEW_QUOTE}" and texts["fx-e3"] == E3_QUOTE and texts["fx-c3"] == "CMOC3"
    for href in [*page.links.values(), *page.supersedes_links]:
        assert client.get(href).status_code == 200, href
    # the report downloaded from the page holds the changes too
    (encoded,) = re.findall(r'id="download-json" download="cmokg-report.json" href="data:application/json;'
                            r'charset=utf-8;base64,([^"]+)"', html)
    assert of(json.loads(base64.b64decode(encoded))["changes"]) == EXPECTED
    assert quads(schema_store) == before  # validating wrote nothing

    second = import_revision(schema_store, tmp_path, first)
    assert listed(schema_store, second) == EXPECTED == of(report["changes"])


def test_review_of_a_first_import_shows_no_changes_section(schema_store: EvidenceStore, client: FlaskClient) -> None:
    before = quads(schema_store)
    r = post(client, "/review", f"{NAME}.zip", zipped(good_files()))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="import"' in html  # conforms: the import form is there
    assert "What importing this changes" not in parse(html).headings and 'id="changes"' not in html
    r = post(client, "/review?format=json", f"{NAME}.zip", zipped(good_files()))
    assert r.get_json()["changes"] == [] and r.get_json()["supersedes"] == []
    assert quads(schema_store) == before


def test_review_of_a_revision_with_violations_shows_no_changes_section(
        schema_store: EvidenceStore, first: str, client: FlaskClient) -> None:
    """Its rows are not all converted: what it would change is told once it conforms."""
    files = revised_files()
    files["evidence.csv"] = files["evidence.csv"].replace(",supports,", ",maybe,", 1)
    r = post(client, "/review", f"{NAME}.zip", zipped(files))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "does not conform" in html and 'id="changes"' not in html
    # the JSON report still says what it is a revision of (a consumer checks "conforms" before "changes")
    report = post(client, "/review?format=json", f"{NAME}.zip", zipped(files)).get_json()
    assert not report["conforms"] and report["supersedes"] == [first]


def test_review_of_a_revision_changing_nothing_says_so(schema_store: EvidenceStore, first: str,
                                                       client: FlaskClient) -> None:
    files = good_files()
    files["evidence.csv"] += "\n"  # another file, the same triples
    r = post(client, "/review", f"{NAME}.zip", zipped(files))
    html = r.get_data(as_text=True)
    page = parse(html)
    assert "What importing this changes" in page.headings and page.rows == []
    assert 'id="no-change"' in html
    assert post(client, "/review?format=json", f"{NAME}.zip", zipped(files)).get_json()["changes"] == []
