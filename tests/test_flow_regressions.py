"""Regressions found by QA of the import / revision / retraction flow (validate, import with the pending key,
revise, retract) over the web and the CLI's functions, as several reviewers use it."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
import requests
from conformance.server import live_server
from flask.testing import FlaskClient
from webforms import post

import webapp.review as review
from graph.batches import workbook_iri
from graph.pipeline import import_workbook, load_schema
from graph.store import EvidenceStore
from webapp import create_app

GOOD = Path(__file__).parent / "fixtures" / "workbooks" / "good"
TOKEN = "flow-token"
PROV = "http://www.w3.org/ns/prov#"
CMO = "https://w3id.org/cmokg/ontology#"
QUOTE = "Training made conversations feel natural."


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    s = EvidenceStore(tmp_path / "store")
    load_schema(s)
    yield s


@pytest.fixture
def client(store: EvidenceStore) -> FlaskClient:
    return create_app({"TESTING": True, "CMOKG_STORE_OBJECT": store, "CMOKG_REVIEWER_TOKEN": TOKEN,
                       "CMOKG_QUERY_WORKERS": 0}).test_client()


def workbook(folder: Path, quote: str = QUOTE) -> Path:
    """The good fixture as a folder of CSVs named `folder` (its workbook id), with the first quote `quote`."""
    folder.mkdir(parents=True)
    for p in GOOD.glob("*.csv"):
        (folder / p.name).write_text(p.read_text(encoding="utf-8").replace(QUOTE, quote), encoding="utf-8")
    return folder


def zipped(quote: str = QUOTE) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(GOOD.glob("*.csv")):
            zf.writestr(p.name, p.read_text(encoding="utf-8").replace(QUOTE, quote))
    return buf.getvalue()


def quads(store: EvidenceStore) -> set[ox.Quad]:
    return set(store.ox.quads_for_pattern(None, None, None, None))


def revisions(store: EvidenceStore, batch: str) -> set[str]:
    return {q.object.value for q in store.ox.quads_for_pattern(
        ox.NamedNode(batch), ox.NamedNode(PROV + "wasRevisionOf"), None, ox.NamedNode(batch))}


def triple_count(store: EvidenceStore, batch: str) -> int:
    (q,) = list(store.ox.quads_for_pattern(ox.NamedNode(batch), ox.NamedNode(CMO + "tripleCount"), None,
                                           ox.NamedNode(batch)))
    return int(q.object.value)


def graph_size(store: EvidenceStore, batch: str) -> int:
    return len(list(store.ox.quads_for_pattern(None, None, None, ox.NamedNode(batch))))


def pending_key(html: bytes) -> str:
    m = re.search(rb'name="upload" value="([^"]+)"', html)
    assert m is not None, "no import form"
    return m.group(1).decode()


# -- the same file imported again keeps its batch's record ---------------------------------------------------

def test_reimporting_the_same_file_keeps_its_revision_of(store: EvidenceStore, tmp_path: Path) -> None:
    """The batch IRI is a hash of the file: importing the same corrected file again (a second click, a
    re-run) rewrote the batch without its prov:wasRevisionOf, losing the workbook's lineage."""
    v1 = import_workbook(store, [workbook(tmp_path / "v1" / "wb")], "R")
    v2_folder = workbook(tmp_path / "v2" / "wb", "Training made the conversations feel natural.")
    v2 = import_workbook(store, [v2_folder], "R")
    assert v1.batch and v2.batch and v2.superseded == [v1.batch]
    assert revisions(store, v2.batch) == {v1.batch}
    again = import_workbook(store, [v2_folder], "R")
    assert again.imported and again.batch == v2.batch
    assert revisions(store, v2.batch) == {v1.batch}
    assert triple_count(store, v2.batch) == graph_size(store, v2.batch)


# -- the same content under another name: refused, the store unchanged ----------------------------------------

def test_the_same_file_under_another_name_is_refused_and_changes_nothing(store: EvidenceStore,
                                                                         tmp_path: Path) -> None:
    """The same content as another workbook's batch took that batch from its workbook: the first workbook
    had no batch any more (its next revision superseded nothing and collided with its own keys)."""
    first = import_workbook(store, [workbook(tmp_path / "a" / "first")], "R")
    assert first.imported and first.batch
    before = quads(store)
    second = import_workbook(store, [workbook(tmp_path / "b" / "second")], "R")
    assert not second.imported and second.report.violations
    assert quads(store) == before
    owners = {q.object.value for q in store.ox.quads_for_pattern(
        ox.NamedNode(first.batch), ox.NamedNode(PROV + "specializationOf"), None, None)}
    assert owners == {str(workbook_iri("first"))}


def test_the_web_validation_reports_the_same_file_under_another_name(client: FlaskClient,
                                                                     store: EvidenceStore) -> None:
    r = post(client, "/review", "first.zip", zipped())
    assert post(client, "/review/import", upload=pending_key(r.data), token=TOKEN, reviewer="R").status_code == 201
    r = post(client, "/review", "second.zip", zipped(), format="json")
    assert r.status_code == 200 and json.loads(r.data)["conforms"] is False
    r = post(client, "/review", "second.zip", zipped())
    assert b'name="upload"' not in r.data  # no import form for a workbook the import would refuse
    before = quads(store)
    r = post(client, "/review/import", "second.zip", zipped(), token=TOKEN, reviewer="R", format="json")
    assert r.status_code == 409 and quads(store) == before


# -- the pending key -----------------------------------------------------------------------------------------

def test_two_imports_of_one_key_at_once_import_once(client: FlaskClient, store: EvidenceStore,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A double click (or two tabs) posted the key twice while the first import ran: both were imported."""
    key = pending_key(post(client, "/review", "wb.zip", zipped()).data)
    real = review.import_workbook

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(review, "import_workbook", slow)
    statuses: list[int] = []

    def go() -> None:
        statuses.append(post(client, "/review/import", upload=key, token=TOKEN, reviewer="R",
                             format="json").status_code)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409]
    assert len(store.batches()) == 1
    # used up afterwards
    r = post(client, "/review/import", upload=key, token=TOKEN, reviewer="R", format="json")
    assert r.status_code == 410


def test_a_key_sent_with_another_file_imports_nothing(client: FlaskClient, store: EvidenceStore) -> None:
    """A key and a file of other content: the file was silently ignored and the key's workbook imported."""
    key = pending_key(post(client, "/review", "wb.zip", zipped()).data)
    before = quads(store)
    r = post(client, "/review/import", "wb.zip", zipped("Another quote entirely."), upload=key, token=TOKEN,
             reviewer="R", format="json")
    assert r.status_code == 400 and quads(store) == before
    # the key itself is still good; the same file with it is fine
    r = post(client, "/review/import", "wb.zip", zipped(), upload=key, token=TOKEN, reviewer="R", format="json")
    assert r.status_code == 201 and len(store.batches()) == 1


def test_a_wrong_token_keeps_the_import_form(client: FlaskClient, store: EvidenceStore) -> None:
    """After a mistyped token the page offered no import form: the reviewer had to upload again."""
    key = pending_key(post(client, "/review", "wb.zip", zipped()).data)
    before = quads(store)
    r = post(client, "/review/import", upload=key, token="typo", reviewer="R")
    assert r.status_code == 403 and quads(store) == before
    assert pending_key(r.data) == key
    r = post(client, "/review/import", upload=key, token=TOKEN, reviewer="")
    assert r.status_code == 400 and pending_key(r.data) == key
    assert post(client, "/review/import", upload=key, token=TOKEN, reviewer="R").status_code == 201


def test_an_expired_key_is_410_and_changes_nothing(client: FlaskClient, store: EvidenceStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    key = pending_key(post(client, "/review", "wb.zip", zipped()).data)
    before = quads(store)
    monkeypatch.setattr(review, "PENDING_SECONDS", -1)
    r = post(client, "/review/import", upload=key, token=TOKEN, reviewer="R", format="json")
    assert r.status_code == 410 and quads(store) == before


def test_a_validated_upload_outlives_more_than_sixteen_others(client: FlaskClient, store: EvidenceStore) -> None:
    """At most 16 validated uploads were kept: a team validating a 17th workbook made the first reviewer's
    import form answer 410."""
    first = pending_key(post(client, "/review", "wb.zip", zipped()).data)
    for i in range(40):
        assert pending_key(post(client, "/review", "wb.zip", zipped(f"Another quote {i}.")).data)
    r = post(client, "/review/import", upload=first, token=TOKEN, reviewer="R", format="json")
    assert r.status_code == 201 and len(store.batches()) == 1


def test_validated_uploads_are_bounded_by_their_size(client: FlaskClient, store: EvidenceStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The oldest goes first once the uploads kept would hold more than PENDING_BYTES."""
    uploads = [zipped(f"Quote {i}.") for i in range(4)]
    monkeypatch.setattr(review, "PENDING_BYTES", sum(len(u) for u in uploads[1:]))  # the last three fit
    keys = [pending_key(post(client, "/review", "wb.zip", u).data) for u in uploads]
    before = quads(store)
    assert post(client, "/review/import", upload=keys[0], token=TOKEN, reviewer="R",
                format="json").status_code == 410
    assert quads(store) == before
    assert post(client, "/review/import", upload=keys[1], token=TOKEN, reviewer="R",
                format="json").status_code == 201


def test_a_refused_import_page_offers_the_report_it_shows(client: FlaskClient, store: EvidenceStore) -> None:
    """The 409 page listed the violations but had no CSV/JSON download of them."""
    r = post(client, "/review", "first.zip", zipped())
    assert post(client, "/review/import", upload=pending_key(r.data), token=TOKEN, reviewer="R").status_code == 201
    r = post(client, "/review/import", "second.zip", zipped(), token=TOKEN, reviewer="R")
    assert r.status_code == 409
    m = re.search(rb'id="download-json"[^>]*href="data:application/json;charset=utf-8;base64,([^"]+)"', r.data)
    assert m is not None
    shown = json.loads(base64.b64decode(m.group(1)))
    as_json = post(client, "/review/import", "second.zip", zipped(), token=TOKEN, reviewer="R", format="json")
    assert as_json.status_code == 409
    assert shown["results"] == json.loads(as_json.data)["results"] and shown["violations"] >= 1


# -- end to end on a live `cmokg serve` ------------------------------------------------------------------------

def test_live_revision_flow_is_seen_at_once_and_refusals_change_nothing(tmp_path: Path) -> None:
    """Two validations of one file imported at once, a revision, the same file again, a refused copy under
    another name: /sparql (query workers, result cache) shows each write at once; every refusal leaves the
    quads as they were."""
    empty = tmp_path / "empty"
    s = EvidenceStore(empty)
    load_schema(s)
    s.flush()
    del s
    with live_server(empty, tmp_path, CMOKG_REVIEWER_TOKEN=TOKEN, CMOKG_QUERY_WORKERS="2") as url:
        def sparql(q: str) -> list[dict[str, dict[str, str]]]:
            r = requests.post(url + "/sparql", data={"query": q},
                              headers={"Accept": "application/sparql-results+json"}, timeout=30)
            assert r.status_code == 200
            return r.json()["results"]["bindings"]  # type: ignore[no-any-return]

        def dump() -> set[str]:
            return set(requests.get(url + "/dump.nq", timeout=30).text.splitlines())

        def validate(name: str, data: bytes) -> str:
            r = requests.post(url + "/review", files={"workbook": (name, data)}, timeout=30)
            assert r.status_code == 200
            return pending_key(r.content)

        def do_import(key: str) -> requests.Response:
            return requests.post(url + "/review/import", data={"upload": key, "token": TOKEN, "reviewer": "R",
                                                               "format": "json"}, timeout=30)

        quote_q = ("SELECT ?q WHERE { <https://w3id.org/cmokg/id/evidence/fx-e1/quote> "
                   "<http://www.w3.org/ns/oa#exact> ?q }")
        assert sparql(quote_q) == [] and sparql(quote_q) == []  # asked twice: the empty answer may be cached
        keys = [validate("wb.zip", zipped()), validate("wb.zip", zipped())]
        results: list[requests.Response] = []
        threads = [threading.Thread(target=lambda k=k: results.append(do_import(k))) for k in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status_code for r in results) == [201, 201]
        v1 = results[0].json()["batch"]
        assert [b["q"]["value"] for b in sparql(quote_q)] == [QUOTE]
        r = do_import(validate("wb.zip", zipped("Changed quote.")))
        assert r.status_code == 201
        v2 = r.json()["batch"]
        assert r.json()["superseded"] == [v1]
        assert [b["q"]["value"] for b in sparql(quote_q)] == ["Changed quote."]
        again = do_import(validate("wb.zip", zipped("Changed quote.")))
        assert again.status_code == 201 and again.json()["batch"] == v2
        rev = sparql(f"SELECT ?o WHERE {{ GRAPH <{v2}> {{ <{v2}> <{PROV}wasRevisionOf> ?o }} }}")
        assert [b["o"]["value"] for b in rev] == [v1]
        before = dump()
        r = requests.post(url + "/review/import", files={"workbook": ("copy.zip", zipped("Changed quote."))},
                          data={"token": TOKEN, "reviewer": "R", "format": "json"}, timeout=30)
        assert r.status_code == 409 and dump() == before
        r = requests.post(url + "/review/import", data={"upload": "nope", "token": TOKEN, "reviewer": "R"},
                          timeout=30)
        assert r.status_code == 410 and dump() == before


def test_cmokg_validate_reports_the_same_file_under_another_name(tmp_path: Path) -> None:
    """`cmokg import` refused the same content under another workbook name, but `cmokg validate` said it
    conformed."""
    import gc

    from graph import cli

    path = tmp_path / "store"
    s = EvidenceStore(path)
    load_schema(s)
    assert import_workbook(s, [workbook(tmp_path / "a" / "first")], "R").imported
    s.flush()
    del s
    gc.collect()
    assert cli.main(["validate", "--store", str(path), "--format", "json",
                     str(workbook(tmp_path / "b" / "second"))]) == 1
    assert cli.main(["validate", "--store", str(path), "--format", "json", str(tmp_path / "a" / "first")]) == 0
