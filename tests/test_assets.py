"""/assets/ (npm packages from node_modules) and the SPARQL editor page that loads them, without a browser.

Assets: the allow-listed files are served with their media type and long cache headers; anything else —
other packages, other kinds of files, paths that climb out of a package by `..`, encoded slashes, hidden
segments or symbolic links — is a 4xx naming the path, never the file. CMOKG_ASSETS moves the root; without
node_modules /assets/ says how to install it and /sparql falls back to the plain form.

Editor page: parsed as HTML (the YASGUI files linked with the version as cache key, the plain form inside
<noscript>, the editor's JSON configuration); the catalog queries it offers as examples, with parameters set
by VALUES lines, return exactly the rows of the catalog's own typed binding on the seed graph.
"""

from __future__ import annotations

import dataclasses
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest
from flask import Flask
from flask.testing import FlaskClient

from graph import catalog
from graph.namespaces import PREFIXES, sparql_prologue
from graph.store import EvidenceStore
from webapp import create_app
from webapp.sparql import example_text

NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
YASGUI_JS = "@zazuko/yasgui/build/yasgui.min.js"
YASGUI_CSS = "@zazuko/yasgui/build/yasgui.min.css"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

needs_npm = pytest.mark.skipif(not (NODE_MODULES / YASGUI_JS).is_file(),
                               reason="node_modules is not installed: run `make install` (npm ci)")


def _app(store: EvidenceStore, **config: Any) -> Flask:
    return create_app({"TESTING": True, "CMOKG_STORE_OBJECT": store, "CMOKG_QUERY_WORKERS": 0, **config})


@pytest.fixture(scope="module")
def client(seed_evidence_store: EvidenceStore) -> FlaskClient:
    return _app(seed_evidence_store).test_client()


# -- serving ------------------------------------------------------------------------------------------------


@needs_npm
@pytest.mark.parametrize(("name", "media_type"), [
    (YASGUI_JS, "text/javascript"),
    (YASGUI_CSS, "text/css"),
    ("@zazuko/yasgui/build/yasgui.min.js.map", "application/json"),
    ("cytoscape/dist/cytoscape.min.js", "text/javascript"),
])
def test_allow_listed_files_are_served_for_a_year(client: FlaskClient, name: str, media_type: str) -> None:
    r = client.get(f"/assets/{name}", buffered=True)
    assert r.status_code == 200
    assert r.mimetype == media_type
    assert r.data == (NODE_MODULES / name).read_bytes()
    assert r.cache_control.max_age == 365 * 24 * 3600
    assert r.cache_control.public and r.cache_control.immutable
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get(f"/assets/{name}", headers={"If-None-Match": r.headers["ETag"]}, buffered=True)
    assert again.status_code == 304 and again.data == b""


@needs_npm
def test_head_gives_the_headers_without_the_body(client: FlaskClient) -> None:
    r = client.head(f"/assets/{YASGUI_JS}", buffered=True)
    assert r.status_code == 200 and r.data == b""
    assert int(r.headers["Content-Length"]) == (NODE_MODULES / YASGUI_JS).stat().st_size


@needs_npm
@pytest.mark.parametrize(("path", "status", "named"), [
    ("jquery/dist/jquery.js", 404, "'jquery' is not served"),          # installed, but not allow-listed
    ("@zazuko/yasqe/build/yasqe.min.js", 404, "'@zazuko/yasqe' is not served"),
    ("@zazuko/yasgui/package.json", 404, "only these kinds of files"),
    ("cytoscape/README.md", 404, "only these kinds of files"),
    ("@zazuko/yasgui/build/nothing.js", 404, "no file 'build/nothing.js'"),
    ("@zazuko/yasgui", 404, "name a file inside"),
    ("@zazuko", 404, "'@zazuko' is not served"),
])
def test_other_files_are_refused_with_a_reason(client: FlaskClient, path: str, status: int, named: str) -> None:
    r = client.get(f"/assets/{path}")
    assert r.status_code == status
    assert r.mimetype == "text/plain"
    assert named in r.get_data(as_text=True)


TRAVERSALS = [
    "@zazuko/yasgui/../yasqe/build/yasqe.min.js",
    "@zazuko/yasgui/build/../../../jquery/dist/jquery.js",
    "cytoscape/../../pyproject.toml.js",
    "cytoscape/%2e%2e/%2e%2e/README.md",
    "cytoscape%2F..%2F..%2Fpyproject.toml",
    "cytoscape/dist/..%2F..%2F..%2Fpyproject.toml",
    "cytoscape/.bin/x.js",
    "cytoscape//dist/cytoscape.min.js",
    "cytoscape/dist\\..\\..\\x.js",
    "..",
    "%2e%2e/%2e%2e/etc/passwd",
    "/etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_paths_leaving_a_package_are_refused(client: FlaskClient, path: str) -> None:
    r = client.get("/assets/" + path, follow_redirects=True, buffered=True)  # '//' is redirected to '/' first
    assert 400 <= r.status_code < 500
    assert r.mimetype == "text/plain"
    body = r.get_data(as_text=True)
    assert "root:" not in body and "[project]" not in body and "jQuery" not in body


def _fake_node_modules(root: Path) -> Path:
    build = root / "node_modules" / "@zazuko" / "yasgui" / "build"
    build.mkdir(parents=True)
    (build / "yasgui.min.js").write_text("window.fake = 1;\n")
    (build / "yasgui.min.css").write_text(".yasgui {}\n")
    (root / "node_modules" / "@zazuko" / "yasgui" / "package.json").write_text('{"version": "9.9.9"}')
    return root / "node_modules"


def test_a_symbolic_link_out_of_the_package_is_refused(tmp_path: Path, seed_evidence_store: EvidenceStore) -> None:
    modules = _fake_node_modules(tmp_path)
    secret = tmp_path / "secret.js"
    secret.write_text("token-31415\n")
    (modules / "@zazuko" / "yasgui" / "build" / "leak.js").symlink_to(secret)
    client = _app(seed_evidence_store, CMOKG_ASSETS=str(modules)).test_client()
    r = client.get("/assets/@zazuko/yasgui/build/leak.js", buffered=True)
    assert r.status_code == 400
    assert "outside the package" in r.get_data(as_text=True) and "token-31415" not in r.get_data(as_text=True)


def test_cmokg_assets_moves_the_root(tmp_path: Path, seed_evidence_store: EvidenceStore) -> None:
    modules = _fake_node_modules(tmp_path)
    client = _app(seed_evidence_store, CMOKG_ASSETS=str(modules)).test_client()
    r = client.get(f"/assets/{YASGUI_JS}", buffered=True)
    assert r.status_code == 200 and r.data == b"window.fake = 1;\n"
    page = _parse(client.get("/sparql", headers=HTML).get_data(as_text=True))
    assert f"/assets/{YASGUI_JS}?v=9.9.9" in page.scripts


def test_without_node_modules_assets_say_how_to_install(tmp_path: Path, seed_evidence_store: EvidenceStore) -> None:
    client = _app(seed_evidence_store, CMOKG_ASSETS=str(tmp_path / "absent")).test_client()
    r = client.get(f"/assets/{YASGUI_JS}")
    assert r.status_code == 404
    assert "make install" in r.get_data(as_text=True) and "CMOKG_ASSETS" in r.get_data(as_text=True)


# -- the editor page ----------------------------------------------------------------------------------------


class Page(HTMLParser):
    """What the tests look at in the editor page: scripts, stylesheets, forms (inside <noscript> or not),
    elements with ids or data- attributes, and the JSON configuration."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.forms: list[tuple[str | None, bool]] = []  # (id, inside noscript)
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.examples: list[str | None] = []
        self.data_attrs: dict[str, str | None] = {}
        self.config_text = ""
        self._noscript = 0
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "noscript":
            self._noscript += 1
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"] or "")
        self._in_config = tag == "script" and a.get("id") == "editor-config"
        if tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a.get("href") or "")
        if tag == "form":
            self.forms.append((a.get("id"), self._noscript > 0))
        if a.get("id"):
            self.by_id[a["id"] or ""] = a
        if tag == "button" and "example" in (a.get("class") or "").split():
            self.examples.append(a.get("data-name"))
        self.data_attrs.update({k: v for k, v in attrs if k.startswith("data-")})

    def handle_endtag(self, tag: str) -> None:
        if tag == "noscript":
            self._noscript -= 1
        if tag == "script":
            self._in_config = False

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config_text += data

    @property
    def config(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.config_text)
        return parsed


def _parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


@needs_npm
def test_editor_page_loads_yasgui_configured_for_this_endpoint(client: FlaskClient) -> None:
    r = client.get("/sparql", headers=HTML)
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = _parse(r.get_data(as_text=True))
    version = json.loads((NODE_MODULES / "@zazuko/yasgui/package.json").read_text())["version"]
    assert page.scripts == [f"/assets/{YASGUI_JS}?v={version}"]
    assert page.stylesheets == [f"/assets/{YASGUI_CSS}?v={version}"]
    assert "yasgui" in page.by_id and "hidden" in page.by_id["examples"]  # shown by the script
    config = page.config
    assert config["endpoint"] == "http://localhost/sparql"
    assert config["prefixes"] == PREFIXES
    assert config["query"].startswith(sparql_prologue())
    names = sorted(catalog.load_catalog())
    assert [e["name"] for e in config["examples"]] == names
    assert page.examples == names
    # the page works without JavaScript: the plain form, inside <noscript>
    assert page.forms == [("plain-form", True)]
    assert "query" in page.by_id and "data-editor" not in page.data_attrs


@needs_npm
def test_every_script_and_stylesheet_of_the_page_is_served(client: FlaskClient) -> None:
    page = _parse(client.get("/sparql", headers=HTML).get_data(as_text=True))
    for url in page.scripts + page.stylesheets:
        assert client.get(url, buffered=True).status_code == 200, url


def test_without_assets_the_page_is_the_plain_form(tmp_path: Path, seed_evidence_store: EvidenceStore) -> None:
    client = _app(seed_evidence_store, CMOKG_ASSETS=str(tmp_path / "absent")).test_client()
    r = client.get("/sparql", headers=HTML)
    assert r.status_code == 200
    page = _parse(r.get_data(as_text=True))
    assert page.scripts == [] and page.stylesheets == [] and page.config_text == ""
    assert page.forms == [("plain-form", False)]
    assert page.data_attrs.get("data-editor") == "missing"


def test_the_plain_form_runs_its_query(client: FlaskClient, seed_store: ox.Store) -> None:
    """What the <noscript> form sends (its textarea's query, format json) is answered by the endpoint."""
    query = sparql_prologue() + "SELECT ?c WHERE { ?c a cmo:CMOConfiguration }"
    r = client.post("/sparql", data={"query": query, "format": "json"})
    assert r.status_code == 200
    rows = json.loads(r.data)["results"]["bindings"]
    assert len(rows) == len(list(seed_store.query(query, use_default_graph_as_union=True)))  # type: ignore[arg-type]


def test_protocol_answers_are_unchanged_by_the_editor(client: FlaskClient) -> None:
    turtle = client.get("/sparql", headers={"Accept": "text/turtle"})
    assert turtle.status_code == 200 and turtle.mimetype == "text/turtle"
    answer = client.get("/sparql", query_string={"query": "ASK {}"})
    assert answer.status_code == 200 and json.loads(answer.data)["boolean"] is True


# -- the examples -------------------------------------------------------------------------------------------


def _table(solutions: Any) -> list[tuple[str | None, ...]]:
    assert isinstance(solutions, ox.QuerySolutions)
    names = [v.value for v in solutions.variables]
    return sorted(tuple(None if row[n] is None else str(row[n]) for n in names) for row in solutions)


def _same_rows(store: ox.Store, query: catalog.NamedQuery) -> list[tuple[str | None, ...]]:
    via_catalog = _table(catalog.run(store, query, query.example_values))
    via_editor = _table(store.query(example_text(query), use_default_graph_as_union=True))
    assert via_editor == via_catalog, query.name
    return via_editor


@pytest.mark.parametrize("name", sorted(catalog.load_catalog()))
def test_each_example_returns_the_catalogs_rows(seed_store: ox.Store, name: str) -> None:
    query = catalog.load_catalog()[name]
    text = example_text(query)
    for param in query.parameters:
        if param.name in query.example_values or param.default is not None:
            assert f"VALUES ?{param.name} {{" in text
    if not any(p.required and p.name not in query.example_values for p in query.parameters):
        _same_rows(seed_store, query)


# values that select rows of the seed graph (the catalog's own examples are written for the test fixture)
SEED_VALUES = {
    "citations": {"citing": "https://w3id.org/cmokg/id/source/griffiths2023"},
    "evidence-trail": {"cmoc": "https://w3id.org/cmokg/id/cmoc/tierney2020-c1"},
    "contexts-for-mechanism-outcome": {"mechanism": "value"},
    "documents": {"since": "2015", "until": "2019"},
    "mechanism-keyword": {"keyword": "trust"},
    "cmocs-by-framework": {"dimension": "organisational contingencies"},
}


@pytest.mark.parametrize("name", sorted(SEED_VALUES))
def test_examples_with_seed_values_select_the_same_rows(seed_store: ox.Store, name: str) -> None:
    query = dataclasses.replace(catalog.load_catalog()[name], example_values=SEED_VALUES[name])
    assert _same_rows(seed_store, query), "these values select rows of the seed graph"


def test_a_hostile_example_value_stays_a_literal(seed_store: ox.Store) -> None:
    hostile = 'x" } } ; DROP ALL ; SELECT * WHERE { ?s ?p ?o } #'
    query = dataclasses.replace(catalog.load_catalog()["mechanism-keyword"], example_values={"keyword": hostile})
    before = len(seed_store)
    assert _same_rows(seed_store, query) == []
    assert len(seed_store) == before


def test_favicon_is_an_empty_answer_not_a_404(client: FlaskClient) -> None:
    r = client.get("/favicon.ico")
    assert r.status_code == 204 and r.data == b""
    assert r.cache_control.max_age == 365 * 24 * 3600
