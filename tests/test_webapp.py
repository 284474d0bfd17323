"""The minimal web app: /sparql (SELECT/ASK, GET and POST, SPARQL JSON results) and the home page."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from servers import cmokg_serve

from graph.pipeline import build
from graph.store import EvidenceStore
from webapp import create_app

FIXTURES = Path(__file__).parent / "fixtures" / "workbooks"
CMOKG = str(Path(sys.executable).with_name("cmokg"))
Q_CMOCS = "PREFIX cmo: <https://w3id.org/cmokg/ontology#> SELECT ?c WHERE { ?c a cmo:CMOConfiguration }"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web")
    shutil.copytree(FIXTURES / "good", root / "data" / "workbooks" / "01-good")
    results = build(root / "store", root / "data")
    assert all(r.imported for r in results)
    return root / "store"


@pytest.fixture(scope="module")
def app(store_path: Path) -> Flask:
    return create_app({"TESTING": True, "CMOKG_STORE_OBJECT": EvidenceStore(store_path, read_only=True)})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _cmocs(payload: bytes) -> set[str]:
    return {b["c"]["value"] for b in json.loads(payload)["results"]["bindings"]}


EXPECTED = {"https://w3id.org/cmokg/id/cmoc/fx-c1", "https://w3id.org/cmokg/id/cmoc/fx-c2"}


def test_select_by_get(client: FlaskClient) -> None:
    r = client.get("/sparql", query_string={"query": Q_CMOCS})
    assert r.status_code == 200
    assert r.mimetype == "application/sparql-results+json"
    assert _cmocs(r.data) == EXPECTED


def test_select_by_post_form_and_by_post_query(client: FlaskClient) -> None:
    r = client.post("/sparql", data={"query": Q_CMOCS})
    assert r.status_code == 200 and _cmocs(r.data) == EXPECTED
    r = client.post("/sparql", data=Q_CMOCS, content_type="application/sparql-query")
    assert r.status_code == 200 and _cmocs(r.data) == EXPECTED


def test_ask(client: FlaskClient) -> None:
    q = "PREFIX cmo: <https://w3id.org/cmokg/ontology#> ASK { ?e cmo:refutes ?c }"
    r = client.get("/sparql", query_string={"query": q})
    assert r.status_code == 200
    assert json.loads(r.data)["boolean"] is True


def test_syntax_error_is_400_with_position(client: FlaskClient) -> None:
    r = client.get("/sparql", query_string={"query": "SELECT ?x WHERE {\n ?x ?y"})
    assert r.status_code == 400
    assert "line 2" in r.get_data(as_text=True).lower() or "2:" in r.get_data(as_text=True)


def test_missing_query_400_and_wrong_media_type_415(client: FlaskClient) -> None:
    # GET without a query is the service description (SPARQL 1.1 Protocol, issue 4); a form without one is 400
    assert client.get("/sparql", headers={"Accept": "text/turtle"}).status_code == 200
    assert client.post("/sparql", data={"nothing": "here"}).status_code == 400
    assert client.post("/sparql", data="x", content_type="text/plain").status_code == 415


class _Counts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._key = dict(attrs).get("data-count")

    def handle_data(self, data: str) -> None:
        if self._key and data.strip():
            self.counts[self._key] = int(data.strip())
            self._key = None


def test_home_page_shows_the_graph_counts(client: FlaskClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    parser = _Counts()
    parser.feed(r.get_data(as_text=True))
    assert parser.counts["cmocs"] == 2
    assert parser.counts["evidence"] == 3
    assert parser.counts["sources"] == 2
    assert parser.counts["batches"] == 1


@pytest.fixture
def live_server(store_path: Path, tmp_path: Path) -> Iterator[str]:
    """`cmokg serve` (gunicorn) on a loopback port, on a copy of the store (the server holds its lock)."""
    copy = tmp_path / "store"
    shutil.copytree(store_path, copy)
    with cmokg_serve(["--store", str(copy)]) as url:
        yield url


def test_served_by_gunicorn_answers_sparql(live_server: str) -> None:
    r = requests.post(live_server + "/sparql", data=Q_CMOCS,
                      headers={"Content-Type": "application/sparql-query",
                               "Accept": "application/sparql-results+json"}, timeout=10)
    assert r.status_code == 200
    assert _cmocs(r.content) == EXPECTED
    assert "gunicorn" in r.headers.get("Server", "").lower()
