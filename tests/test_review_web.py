"""/review over HTTP: upload, report table, downloads, import only with the token, limits, temp folder removed;
and the reviewer's whole path from the README: template, fill, validate, fix, import over the web, see the
batch, retract it."""

from __future__ import annotations

import csv
import gc
import io
import json
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from graph.pipeline import import_workbook, load_schema
from graph.store import EvidenceStore
from graph.template import write_template
from webapp import create_app

FIXTURES = Path(__file__).parent / "fixtures" / "workbooks"
GOOD = FIXTURES / "good"
CMOKG = str(Path(sys.executable).with_name("cmokg"))
TOKEN = "s3cret-reviewer-token"


class Cells(HTMLParser):
    """Rows of the table with id=findings, and elements by id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.ids: dict[str, dict[str, str | None]] = {}
        self._in_table = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids[str(a["id"])] = a
        if tag == "table" and a.get("id") == "findings":
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag == "td":
            self._cell = []
        elif tag == "input" and a.get("name") == "upload":
            self.ids["upload-input"] = a

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: bytes) -> Cells:
    p = Cells()
    p.feed(html.decode("utf-8"))
    p.rows = [r for r in p.rows if r]  # the header row has th, not td
    return p


def zip_of(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.glob("*.csv")):
            zf.write(p, p.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    s = EvidenceStore(tmp_path / "store")
    load_schema(s)
    yield s


def make_app(store: EvidenceStore, token: str | None = TOKEN, **extra: object) -> Flask:
    return create_app({"TESTING": True, "CMOKG_STORE_OBJECT": store, "CMOKG_REVIEWER_TOKEN": token,
                       "CMOKG_QUERY_WORKERS": 0, **extra})


@pytest.fixture
def client(store: EvidenceStore) -> FlaskClient:
    return make_app(store).test_client()


def upload(client: FlaskClient, name: str, data: bytes, url: str = "/review", **form: str):  # type: ignore[no-untyped-def]
    # encoded in memory: the test client would spool a large body to a temporary file of its own
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    boundary, body = encode_multipart({"workbook": FileStorage(io.BytesIO(data), name), **form})
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_form_page(client: FlaskClient) -> None:
    r = client.get("/review")
    assert r.status_code == 200 and b'name="workbook"' in r.data


def test_report_table_names_severity_sheet_row_column(client: FlaskClient, store: EvidenceStore) -> None:
    before = store.quads()
    r = upload(client, "bad.zip", zip_of(FIXTURES / "bad" / "unknown-source-id"))
    assert r.status_code == 200
    page = parse(r.data)
    assert [row[:4] for row in page.rows] == [["Violation", "cmocs", "3", "source_id"]]
    assert "import" not in page.ids  # no import button with violations
    assert store.quads() == before


def test_report_downloads_csv_and_json(client: FlaskClient) -> None:
    data = zip_of(FIXTURES / "bad" / "unknown-source-id")
    r = upload(client, "bad.zip", data, format="json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert "attachment" in r.headers["Content-Disposition"]
    results = json.loads(r.data)["results"]
    assert [(f["severity"], f["sheet"], f["row"], f["column"], f["value"]) for f in results] == [
        ("Violation", "cmocs", 3, "source_id", "nobody2020")]
    r = upload(client, "bad.zip", data, format="csv")
    assert r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.data.decode())))
    assert [(x["severity"], x["sheet"], x["row"], x["column"]) for x in rows] == [
        ("Violation", "cmocs", "3", "source_id")]
    page = parse(upload(client, "bad.zip", data).data)
    assert str(page.ids["download-csv"]["href"]).startswith("data:text/csv")
    assert str(page.ids["download-json"]["href"]).startswith("data:application/json")


def test_import_button_only_when_conforming_and_token_configured(store: EvidenceStore) -> None:
    data = (FIXTURES / "good.xlsx").read_bytes()
    with_token = parse(upload(make_app(store).test_client(), "good.xlsx", data).data)
    assert "import" in with_token.ids and "upload-input" in with_token.ids
    without = parse(upload(make_app(store, token=None).test_client(), "good.xlsx", data).data)
    assert "import" not in without.ids and "import-off" in without.ids


def test_import_without_configured_token_is_off(store: EvidenceStore) -> None:
    client = make_app(store, token=None).test_client()
    before = store.quads()
    r = upload(client, "good.xlsx", (FIXTURES / "good.xlsx").read_bytes(), url="/review/import",
               token="anything", reviewer="r", format="json")
    assert r.status_code == 403
    assert json.loads(r.data)["results"][0]["severity"] == "Violation"
    assert store.quads() == before


@pytest.mark.parametrize("token", ["", "wrong", TOKEN + "x"])
def test_import_with_wrong_token_is_refused(client: FlaskClient, store: EvidenceStore, token: str) -> None:
    before = store.quads()
    r = upload(client, "good.xlsx", (FIXTURES / "good.xlsx").read_bytes(), url="/review/import",
               token=token, reviewer="r")
    assert r.status_code == 403
    assert store.quads() == before


def test_import_with_violations_is_refused_409(client: FlaskClient, store: EvidenceStore) -> None:
    before = store.quads()
    r = upload(client, "bad.zip", zip_of(FIXTURES / "bad" / "malformed-doi"), url="/review/import",
               token=TOKEN, reviewer="r", format="json")
    assert r.status_code == 409
    assert [(f["sheet"], f["row"], f["column"]) for f in json.loads(r.data)["results"]] == [("sources", 3, "doi")]
    assert store.quads() == before


def test_import_with_token_makes_a_batch_and_reupload_supersedes(client: FlaskClient, store: EvidenceStore) -> None:
    r = upload(client, "extraction.zip", zip_of(GOOD), url="/review/import", token=TOKEN, reviewer="Ada",
               format="json")
    assert r.status_code == 201, r.data
    first = json.loads(r.data)
    assert [b.iri for b in store.batches()] == [first["batch"]]
    assert store.batches()[0].attributed_to == "Ada"
    fixed = GOOD.parent / "bad" / "extra-column-is-a-warning"  # same keys, one more column: another file
    r = upload(client, "extraction.zip", zip_of(fixed), url="/review/import", token=TOKEN, reviewer="Ada",
               format="json")
    assert r.status_code == 201, r.data
    second = json.loads(r.data)
    assert second["superseded"] == [first["batch"]]
    assert [b.iri for b in store.batches()] == [second["batch"]]


def test_upload_over_the_limit_is_413_and_changes_nothing(store: EvidenceStore) -> None:
    client = make_app(store, CMOKG_UPLOAD_LIMIT=64 * 1024).test_client()
    before = store.quads()
    r = upload(client, "big.xlsx", b"PK" + b"\0" * (200 * 1024), url="/review/import", token=TOKEN, reviewer="r",
               format="json")
    assert r.status_code == 413
    assert store.quads() == before


@pytest.mark.parametrize(("limit", "said"), [(64 * 1024, "64 KiB"), (100_000, "100,000 bytes"),
                                             (3 * 1024 * 1024, "3 MiB")])
def test_413_names_the_limit_in_a_unit_that_shows_it(store: EvidenceStore, limit: int, said: str) -> None:
    """CMOKG_UPLOAD_LIMIT=100000 was "larger than the limit of 0 MiB"."""
    client = make_app(store, CMOKG_UPLOAD_LIMIT=limit).test_client()
    r = upload(client, "big.xlsx", b"PK" + b"\0" * (limit + 1), url="/review?format=json")
    assert r.status_code == 413
    [finding] = json.loads(r.data)["results"]
    assert finding["message"].endswith(f"the limit of {said}")


def test_twenty_megabytes_of_junk_is_413(client: FlaskClient, store: EvidenceStore) -> None:
    before = store.quads()
    r = upload(client, "junk.xlsx", b"\x8f junk " * (20 * 1024 * 1024 // 7))
    assert r.status_code == 413
    assert b"limit" in r.data
    assert store.quads() == before


@pytest.mark.parametrize(("name", "data", "status"), [
    ("notes.txt", b"hello", 415),
    ("empty.xlsx", b"", 400),
    ("junk.xlsx", b"junk" * 1000, 422),
    ("junk.zip", b"junk" * 1000, 400),
    ("bomb.zip", None, 400),
    ("nocsv.zip", None, 400),
])
def test_bad_uploads_get_4xx_and_change_nothing(client: FlaskClient, store: EvidenceStore, name: str,
                                                data: bytes | None, status: int) -> None:
    if name == "bomb.zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("sources.csv", b"\0" * (20 * 1024 * 1024))
        data = buf.getvalue()
    elif name == "nocsv.zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("../../etc/passwd.txt", b"x")
        data = buf.getvalue()
    assert data is not None
    before = store.quads()
    r = upload(client, name, data, format="json")
    assert r.status_code == status, r.data
    assert json.loads(r.data)["results"][0]["severity"] == "Violation"
    assert store.quads() == before
    r = upload(client, name, data, url="/review/import", token=TOKEN, reviewer="r", format="json")
    assert r.status_code == status
    assert store.quads() == before


def test_zip_entry_names_cannot_escape_the_temp_folder(client: FlaskClient, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    data = zip_of(GOOD, {"../../evil.csv": b"x,y\n", "/abs/evil2.csv": b"x\n"})
    r = upload(client, "extraction.zip", data, format="json")
    assert r.status_code == 200
    assert not list(tmp_path.rglob("evil*.csv"))
    assert list((tmp_path / "tmp").iterdir()) == []


def test_upload_lands_only_in_a_temp_folder_that_is_removed(client: FlaskClient, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    seen: list[list[str]] = []
    import webapp.review as review

    real = review.validate_workbook

    def spy(paths, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append([str(p) for p in paths])
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(review, "validate_workbook", spy)
    marker = (FIXTURES / "good.xlsx").read_bytes()
    r = upload(client, "good.xlsx", marker)
    assert r.status_code == 200
    assert seen and all(p.startswith(str(tmp)) for p in seen[0])
    assert list(tmp.iterdir()) == []  # removed after the request


def test_reviewer_path_from_the_readme(tmp_path: Path) -> None:
    """Template -> fill -> validate against the running graph -> read report -> fix -> import with token over
    the web -> listed by `cmokg batches` -> `cmokg retract`."""
    store_dir = tmp_path / "store"
    store = EvidenceStore(store_dir)
    load_schema(store)
    assert import_workbook(store, [GOOD], reviewer="seed").imported  # the graph already holds fx-review
    baseline = store.quads()
    app = make_app(store)
    client = app.test_client()
    # 1. write the template (from the graph's vocabularies) and fill it
    path = tmp_path / "my-extraction.xlsx"
    write_template(path, store)
    wb = load_workbook(path)
    wb["cmocs"].append(["me-c1", "fx-review", "CMOC7", None, "Patients are lonely", "A link worker calls",
                        None, "Patients join a group", "link workers", "trustful interactions", None, None,
                        "Reviewer, New", "2024-05-01"])
    wb["evidence"].append(["me-e1", "me-c1", "fx-review", "Calls made patients join.", "3", None, "supprots",
                           "author", "high", "high"])
    wb.save(path)
    # 2. validate against the running graph; read the report
    page = parse(upload(client, path.name, path.read_bytes()).data)
    assert [row[:4] for row in page.rows] == [["Violation", "evidence", "2", "relation"],
                                              ["Warning", "cmocs", "2", "cmoc_id"]]  # so no evidence for it
    # 3. fix it and validate again: it conforms, the import button appears
    wb = load_workbook(path)
    wb["evidence"]["G2"] = "supports"
    wb.save(path)
    page = parse(upload(client, path.name, path.read_bytes()).data)
    assert page.rows == [] and "import" in page.ids
    pending = str(page.ids["upload-input"]["value"])
    # 4. import over the web with the token
    r = client.post("/review/import", data={"upload": pending, "token": TOKEN, "reviewer": "Reviewer, New"})
    assert r.status_code == 201
    batch = str(parse(r.data).ids["batch"] and r.data.decode().split('id="batch">')[1].split("<")[0])
    assert batch in {b.iri for b in store.batches()}
    assert len(store.batches()) == 2
    # the pending upload is used up
    assert client.post("/review/import", data={"upload": pending, "token": TOKEN, "reviewer": "x"}).status_code == 410
    # 5. the CLI (once the server is stopped) lists it, and retracts it
    app.extensions.clear()
    del app, client, store
    gc.collect()
    listed = subprocess.run([CMOKG, "batches", "--store", str(store_dir), "--format", "json"], capture_output=True,
                            text=True)
    assert listed.returncode == 0, listed.stderr
    assert {b["iri"]: b["label"] for b in json.loads(listed.stdout)}[batch] == "my-extraction.xlsx"
    gone = subprocess.run([CMOKG, "retract", "--store", str(store_dir), batch], capture_output=True, text=True)
    assert gone.returncode == 0, gone.stderr
    assert EvidenceStore(store_dir).quads() == baseline


# -- upload names and zip members (regressions) ---------------------------------------------------------


def test_a_workbook_named_in_non_latin_letters_is_read_and_keeps_its_name(client: FlaskClient,
                                                                          store: EvidenceStore) -> None:
    """werkzeug's secure_filename reduced '研究.xlsx' to 'xlsx' (no suffix): 415. The suffix is now read from
    the name given, and the name is kept (file name of the batch, workbook id)."""
    data = (FIXTURES / "good.xlsx").read_bytes()
    r = upload(client, "研究.xlsx", data, format="json")
    assert r.status_code == 200, r.data
    assert json.loads(r.data)["conforms"] is True
    r = upload(client, "研究.xlsx", data, url="/review/import", token=TOKEN, reviewer="Ada", format="json")
    assert r.status_code == 201, r.data
    assert json.loads(r.data)["workbook_id"] == "研究"
    assert [b.file for b in store.batches()] == ["研究.xlsx"]


@pytest.mark.parametrize("name", ["../../研究.xlsx", "..\\..\\研究.xlsx", "/tmp/研究.xlsx"])
def test_a_non_latin_name_with_folders_is_only_a_name(client: FlaskClient, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    temp = tmp_path / "temp" / "folder"
    temp.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    r = upload(client, name, (FIXTURES / "good.xlsx").read_bytes(), format="json")
    assert r.status_code == 200, r.data
    assert not any(p.name == "研究.xlsx" for p in tmp_path.rglob("*")) and not Path("/tmp/研究.xlsx").exists()
    assert list(temp.iterdir()) == []


def test_a_zip_of_upper_case_csv_names_is_read(client: FlaskClient) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(GOOD.glob("*.csv")):
            zf.write(p, p.name.upper())
    r = upload(client, "EXTRACTION.ZIP", buf.getvalue(), format="json")
    assert r.status_code == 200, r.data
    assert json.loads(r.data)["conforms"] is True


@pytest.mark.parametrize("second", ["b/evidence.csv", "b/EVIDENCE.CSV"])
def test_zip_members_that_would_land_on_one_file_are_refused(client: FlaskClient, second: str) -> None:
    """a/evidence.csv and b/evidence.csv overwrote each other silently: one of them was validated."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(GOOD.glob("*.csv")):
            zf.write(p, "a/" + p.name)
        zf.writestr(second, (GOOD / "evidence.csv").read_bytes()[:200])
    r = upload(client, "extraction.zip", buf.getvalue(), format="json")
    assert r.status_code == 400, r.data
    text = r.get_data(as_text=True)
    assert "a/evidence.csv" in text and second in text  # both members named


def test_a_zip_with_damaged_deflate_data_is_400_and_the_store_unchanged(client: FlaskClient,
                                                                       store: EvidenceStore) -> None:
    """A member whose deflate stream is damaged raised zlib.error out of the upload: a 500."""
    data = bytearray(zip_of(GOOD))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("evidence.csv")
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start] = 0x07  # a final block of the reserved type 3: "invalid block type"
    before = len(store.ox)
    r = upload(client, "extraction.zip", bytes(data), format="json")
    assert r.status_code == 400, r.data
    assert len(store.ox) == before
