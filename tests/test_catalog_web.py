"""The query catalog on the web: /queries as HTML and JSON, /queries/<name> in every results format and as
an HTML form with a paged results table, /queries/<name>.rq, /queries/openapi.json, and the refusals.

Runs the Flask test client over the built seed store; results are compared with the same query run through
`graph.catalog` (bindings, not strings), HTML is parsed with html.parser.
"""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyoxigraph as ox
import pytest
from flask.testing import FlaskClient

from graph.catalog import NamedQuery, Page, load_catalog, run
from graph.namespaces import CMO, ID
from graph.store import EvidenceStore
from webapp import create_app

CATALOG = load_catalog()
JSON_RESULTS = "application/sparql-results+json"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
Row = frozenset[tuple[str, object]]


def expected_rows(store: ox.Store, query: NamedQuery, values: dict[str, str], rows: Page | None = None) -> list[Row]:
    result = run(store, query, values, rows)
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]
    return [frozenset((n, s[n]) for n in names if s[n] is not None) for s in result]


def parsed_rows(body: bytes, fmt: ox.QueryResultsFormat) -> list[Row]:
    result = ox.parse_query_results(body, fmt)
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]
    return [frozenset((n, s[n]) for n in names if s[n] is not None) for s in result]


def as_text(rows: list[Row]) -> list[dict[str, str]]:
    return [{name: term.value for name, term in row} for row in rows]  # type: ignore[attr-defined]


# -- HTML parsing -------------------------------------------------------------------------------------------


class ParsedPage(HTMLParser):
    """Collects what the tests look at: links, form inputs and buttons, and the results table."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str]] = []
        self.inputs: dict[str, str] = {}
        self.form: dict[str, str] | None = None
        self.buttons: list[dict[str, str]] = []
        self.heads: list[str] = []
        self.rows: list[list[dict[str, str]]] = []
        self.problem: dict[str, str] | None = None
        self.dd_parameters: dict[str, list[str]] = {}
        self._where: list[str] = []
        self._cell: dict[str, str] | None = None
        self._dd: str | None = None
        self._in_results = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a":
            self.links.append(a)
            if self._cell is not None:
                self._cell["href"] = a.get("href", "")
        elif tag == "form" and a.get("id") == "params":
            self.form = a
        elif tag == "input" and self.form is not None:
            self.inputs[a["name"]] = a.get("value", "")
        elif tag == "button":
            self.buttons.append(a)
        elif tag == "table" and "results" in a.get("class", "").split():
            self._in_results = True
        elif tag == "tr" and self._in_results and self._where and self._where[-1] == "tbody":
            self.rows.append([])
        elif tag in ("thead", "tbody") and self._in_results:
            self._where.append(tag)
        elif tag in ("td", "th") and self._in_results:
            self._cell = {"var": a.get("data-var", ""), "text": ""}
        elif tag == "p" and a.get("id") == "problem":
            self.problem = a
        elif tag == "dd" and "data-query" in a:
            self._dd = a["data-query"]
            self.dd_parameters[self._dd] = []
        elif tag == "tr" and self._dd is not None and "data-parameter" in a:
            self.dd_parameters[self._dd].append(a["data-parameter"])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            if self._where and self._where[-1] == "thead":
                self.heads.append(self._cell["text"])
            elif self.rows:
                self.rows[-1].append(self._cell)
            self._cell = None
        elif tag in ("thead", "tbody") and self._where:
            self._where.pop()
        elif tag == "table":
            self._in_results = False
        elif tag == "dd":
            self._dd = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data


def parse_page(body: bytes) -> ParsedPage:
    page = ParsedPage()
    page.feed(body.decode("utf-8"))
    return page


# -- the catalog --------------------------------------------------------------------------------------------


def test_index_html_lists_every_query_with_its_parameters(client: FlaskClient) -> None:
    r = client.get("/queries", headers={"Accept": BROWSER})
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = parse_page(r.data)
    hrefs = {a["href"] for a in page.links if a.get("class") == "query"}
    assert hrefs == {f"/queries/{name}" for name in CATALOG}
    assert page.dd_parameters == {name: [p.name for p in q.parameters] for name, q in CATALOG.items()}
    runs = [a["href"] for a in page.links if a.get("class") == "example"]
    assert len(runs) == len(CATALOG)
    assert "/queries/evidence-trail?cmoc=https%3A%2F%2Fw3id.org%2Fcmokg%2Fid%2Fcmoc%2Ftierney2020-c1" in runs


@pytest.mark.parametrize("how", [{"headers": {"Accept": "application/json"}}, {"query_string": {"format": "json"}}])
def test_index_json_describes_every_query(client: FlaskClient, how: dict[str, dict[str, str]]) -> None:
    r = client.get("/queries", **how)  # type: ignore[arg-type]
    assert r.status_code == 200 and r.mimetype == "application/json"
    entries = {e["name"]: e for e in json.loads(r.data)}
    assert set(entries) == set(CATALOG)
    for name, query in CATALOG.items():
        entry = entries[name]
        assert (entry["title"], entry["description"], entry["example"]) == (
            query.title, query.description, query.example)
        assert entry["url"] == f"http://localhost/queries/{name}"
        assert entry["parameters"] == [
            {"name": p.name, "type": p.type, "default": p.default, "required": p.required,
             "description": p.description}
            for p in query.parameters
        ]
    assert entries["shared-mechanisms"]["parameters"][0]["default"] == "2"
    assert entries["evidence-trail"]["parameters"][0]["required"] is True


# -- running a query: machine formats ---------------------------------------------------------------------


@pytest.mark.parametrize("query", CATALOG.values(), ids=lambda q: q.name)
def test_json_results_equal_the_catalog_run(
    client: FlaskClient, query: NamedQuery, seed_store: ox.Store
) -> None:
    values = dict(query.example_values)
    r = client.get(f"/queries/{query.name}", query_string=values, headers={"Accept": JSON_RESULTS})
    assert r.status_code == 200, r.data
    assert r.mimetype == JSON_RESULTS
    assert sorted(map(sorted, parsed_rows(r.data, ox.QueryResultsFormat.JSON)), key=str) == sorted(
        map(sorted, expected_rows(seed_store, query, values)), key=str)


@pytest.mark.parametrize(
    ("accept", "fmt", "mime"),
    [
        ("application/sparql-results+xml", None, "application/sparql-results+xml"),
        ("text/tab-separated-values", None, "text/tab-separated-values"),
        (None, "xml", "application/sparql-results+xml"),
        (None, "tsv", "text/tab-separated-values"),
        (BROWSER, "json", JSON_RESULTS),
    ],
)
def test_results_in_every_format(
    client: FlaskClient, seed_store: ox.Store, accept: str | None, fmt: str | None, mime: str
) -> None:
    query = CATALOG["setting-dimension-comparison"]
    values = dict(query.example_values)
    args = {**values, **({"format": fmt} if fmt else {})}
    r = client.get(f"/queries/{query.name}", query_string=args, headers={"Accept": accept} if accept else {})
    assert r.status_code == 200 and r.mimetype == mime
    fmts = {JSON_RESULTS: ox.QueryResultsFormat.JSON, "application/sparql-results+xml": ox.QueryResultsFormat.XML,
            "text/tab-separated-values": ox.QueryResultsFormat.TSV}
    assert parsed_rows(r.data, fmts[mime]) == expected_rows(seed_store, query, values)


def test_csv_results(client: FlaskClient, seed_store: ox.Store) -> None:
    query = CATALOG["weak-evidence-cmocs"]
    r = client.get(f"/queries/{query.name}", headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    got = [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(io.StringIO(r.data.decode()))]
    assert got == as_text(expected_rows(seed_store, query, {}))


def test_limit_and_offset_page_machine_results(client: FlaskClient, seed_store: ox.Store) -> None:
    query = CATALOG["all-cmocs"]
    whole = expected_rows(seed_store, query, {})
    assert len(whole) == 49
    pages = []
    for offset in range(0, 60, 20):
        r = client.get("/queries/all-cmocs", query_string={"limit": "20", "offset": str(offset), "format": "json"})
        pages.append(parsed_rows(r.data, ox.QueryResultsFormat.JSON))
    assert [len(p) for p in pages] == [20, 20, 9]
    assert [row for p in pages for row in p] == whole


def test_unacceptable_format_is_406(client: FlaskClient) -> None:
    r = client.get("/queries/all-cmocs", headers={"Accept": "image/png"})
    assert r.status_code == 406
    assert b"accept one of" in r.data


def test_the_worker_pool_runs_catalog_queries(seed_evidence_store: EvidenceStore, seed_store: ox.Store) -> None:
    app = create_app({"TESTING": True, "CMOKG_STORE_OBJECT": seed_evidence_store, "CMOKG_QUERY_WORKERS": 1})
    try:
        query = CATALOG["mechanism-keyword"]
        r = app.test_client().get("/queries/mechanism-keyword", query_string={"keyword": "trust"},
                                  headers={"Accept": JSON_RESULTS})
        assert r.status_code == 200
        assert app.extensions["cmokg_pool"] is not None, "the query did not go through the pool"
        assert parsed_rows(r.data, ox.QueryResultsFormat.JSON) == expected_rows(seed_store, query, {"keyword": "trust"})
    finally:
        if app.extensions["cmokg_pool"] is not None:
            app.extensions["cmokg_pool"].close()


# -- running a query: the HTML page -----------------------------------------------------------------------


def test_html_page_has_form_results_and_links(client: FlaskClient, seed_store: ox.Store) -> None:
    query = CATALOG["mechanism-keyword"]
    r = client.get("/queries/mechanism-keyword", query_string={"keyword": "trust"}, headers={"Accept": BROWSER})
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = parse_page(r.data)
    assert page.form is not None
    assert (page.form["method"], page.form["action"]) == ("get", "/queries/mechanism-keyword")
    assert page.inputs == {"keyword": "trust"}
    assert any(b.get("type") == "submit" for b in page.buttons)
    expected = expected_rows(seed_store, query, {"keyword": "trust"})
    result = run(seed_store, query, {"keyword": "trust"})
    assert isinstance(result, ox.QuerySolutions)
    assert page.heads == [v.value for v in result.variables]
    assert len(page.rows) == len(expected) > 0
    shown = [{c["var"]: c["text"] for c in row if c["text"]} for row in page.rows]
    assert shown == as_text(expected)
    cmoc_links = {c["href"] for row in page.rows for c in row if c["var"] == "cmoc"}
    assert all(href.startswith("/id/cmoc/") for href in cmoc_links) and cmoc_links
    hrefs = {a.get("id"): a["href"] for a in page.links if a.get("id")}
    assert hrefs["sparql-text"] == "/queries/mechanism-keyword.rq"
    editor = urlsplit(hrefs["open-in-editor"])
    assert editor.path == "/sparql"
    text = parse_qs(editor.fragment)["query"][0]
    assert 'VALUES ?keyword { "trust" }' in text
    edited = seed_store.query(text, use_default_graph_as_union=True)
    assert isinstance(edited, ox.QuerySolutions)
    assert len(list(edited)) == len(expected)
    downloads = {a["data-format"]: a["href"] for a in page.links if a.get("class") == "download"}
    assert downloads["csv"] == "/queries/mechanism-keyword?keyword=trust&format=csv"


def test_html_form_is_prefilled_with_defaults_and_runs_without_parameters(client: FlaskClient) -> None:
    r = client.get("/queries/cited-sources-with-evidence", headers={"Accept": BROWSER})
    assert r.status_code == 200
    page = parse_page(r.data)
    assert page.inputs == {"citing": str(ID["source/griffiths2023"])}
    assert len(page.rows) == 3


def test_html_pages_at_100_rows(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "store")
    graph = ox.NamedNode(str(ID["batch/0123456789abcdef"]))
    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    for i in range(150):
        store.ox.add(ox.Quad(ox.NamedNode(str(ID[f"cmoc/c{i:03d}"])), rdf_type, ox.NamedNode(str(CMO.CMOConfiguration)),
                             graph))
    app = create_app({"TESTING": True, "CMOKG_STORE_OBJECT": store, "CMOKG_QUERY_WORKERS": 0})
    client = app.test_client()
    seen: list[str] = []
    url: str | None = "/queries/all-cmocs"
    sizes = []
    while url:
        page = parse_page(client.get(url, headers={"Accept": BROWSER}).data)
        sizes.append(len(page.rows))
        seen += [c["text"] for row in page.rows for c in row if c["var"] == "cmoc"]
        url = next((a["href"] for a in page.links if a.get("rel") == "next"), None)
        if url:
            assert "offset=" in url
    assert sizes == [100, 50]
    assert seen == sorted(str(ID[f"cmoc/c{i:03d}"]) for i in range(150))
    last = parse_page(client.get("/queries/all-cmocs?offset=100", headers={"Accept": BROWSER}).data)
    assert [a["href"] for a in last.links if a.get("rel") == "prev"] == ["/queries/all-cmocs"]
    store.close()


def test_html_limit_pages_follow_each_other(client: FlaskClient, seed_store: ox.Store) -> None:
    url: str | None = "/queries/all-cmocs?limit=20"
    seen = []
    while url:
        page = parse_page(client.get(url, headers={"Accept": BROWSER}).data)
        seen += [c["text"] for row in page.rows for c in row if c["var"] == "cmoc"]
        url = next((a["href"] for a in page.links if a.get("rel") == "next"), None)
    assert seen == [dict(row)["cmoc"].value for row in expected_rows(seed_store, CATALOG["all-cmocs"], {})]


# -- the SPARQL text and the OpenAPI document -------------------------------------------------------------


def test_query_text(client: FlaskClient) -> None:
    for query in CATALOG.values():
        r = client.get(f"/queries/{query.name}.rq")
        assert r.status_code == 200 and r.mimetype == "text/plain"
        assert r.data.decode("utf-8") == query.text


TYPES = {"string": ("string", None), "integer": ("integer", None), "decimal": ("number", None),
         "boolean": ("boolean", None), "date": ("string", "date"), "iri": ("string", "iri")}


def test_openapi_document_covers_every_query_and_parameter(client: FlaskClient) -> None:
    r = client.get("/queries/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    doc = json.loads(r.data)
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"] == [{"url": "http://localhost"}]
    assert set(doc["paths"]) == {f"/queries/{name}" for name in CATALOG}
    operation_ids = [path["get"]["operationId"] for path in doc["paths"].values()]
    assert len(set(operation_ids)) == len(operation_ids)
    for name, query in CATALOG.items():
        operation = doc["paths"][f"/queries/{name}"]["get"]
        assert operation["summary"] == query.title
        params = {p["name"]: p for p in operation["parameters"]}
        assert set(params) == {p.name for p in query.parameters} | {"limit", "offset", "format"}
        for p in query.parameters:
            entry = params[p.name]
            assert entry["in"] == "query" and entry["required"] is p.required
            kind, fmt = TYPES[p.type]
            assert entry["schema"]["type"] == kind
            assert entry["schema"].get("format") == fmt
            if p.default is not None:
                default = entry["schema"]["default"]
                assert str(default).lower() == p.default.lower() and isinstance(default, int | float | bool | str)
        assert params["limit"]["schema"] == {"type": "integer", "minimum": 0}
        content = operation["responses"]["200"]["content"]
        assert {JSON_RESULTS, "application/sparql-results+xml", "text/csv", "text/tab-separated-values",
                "text/html"} <= set(content)
        assert "text/plain" in operation["responses"]["400"]["content"]
    shared = {p["name"]: p for p in doc["paths"]["/queries/shared-mechanisms"]["get"]["parameters"]}
    assert shared["min"]["schema"] == {"type": "integer", "default": 2}


# -- refusals ----------------------------------------------------------------------------------------------


def test_unknown_query_is_404(client: FlaskClient) -> None:
    for path in ("/queries/no-such-query", "/queries/no-such-query.rq"):
        r = client.get(path)
        assert r.status_code == 404
        assert "no-such-query" in r.data.decode()


@pytest.mark.parametrize(
    ("path", "args", "named"),
    [
        ("/queries/evidence-trail", {"cmoc": "not an iri"}, "cmoc"),
        ("/queries/documents", {"since": "twenty"}, "since"),
        ("/queries/all-cmocs", {"nope": "x"}, "nope"),
        ("/queries/all-cmocs", {"limit": "-5"}, "limit"),
        ("/queries/all-cmocs", {"offset": "1.5"}, "offset"),
        ("/queries/all-cmocs?limit=1&limit=2", None, "limit"),
        ("/queries/mechanism-keyword?keyword=a&keyword=b", None, "keyword"),
    ],
)
def test_bad_parameter_is_400_naming_it(
    client: FlaskClient, path: str, args: dict[str, str] | None, named: str
) -> None:
    r = client.get(path, query_string=args)
    assert r.status_code == 400 and r.mimetype == "text/plain"
    assert f"'{named}'" in r.data.decode()
    r = client.get(path, query_string=args, headers={"Accept": BROWSER})
    assert r.status_code == 400 and r.mimetype == "text/html"
    page = parse_page(r.data)
    assert page.problem is not None
    assert page.form is not None, "the form is shown again to correct the value"
    assert page.rows == []


def test_a_required_parameter_missing(client: FlaskClient) -> None:
    """Programs get 400 naming it; a browser arriving from the catalog (no values yet) gets the form."""
    r = client.get("/queries/evidence-trail", headers={"Accept": JSON_RESULTS})
    assert r.status_code == 400 and "'cmoc'" in r.data.decode()
    for args in ({}, {"cmoc": ""}):
        r = client.get("/queries/evidence-trail", query_string=args, headers={"Accept": BROWSER})
        assert r.status_code == 200
        page = parse_page(r.data)
        assert page.inputs == {"cmoc": ""} and page.problem is None and page.rows == []
        assert b'id="hint"' in r.data


def test_bad_value_is_shown_back_escaped(client: FlaskClient) -> None:
    hostile = '"><script>alert(1)</script>'
    r = client.get("/queries/evidence-trail", query_string={"cmoc": hostile}, headers={"Accept": BROWSER})
    assert r.status_code == 400
    assert b"<script>alert" not in r.data
    page = parse_page(r.data)
    assert page.inputs == {"cmoc": hostile}
    assert page.problem is not None and page.problem["data-parameter"] == "cmoc"


def test_head_and_trailing_slash(client: FlaskClient) -> None:
    assert client.get("/queries/").status_code == 200
    assert client.head("/queries/all-cmocs", headers={"Accept": JSON_RESULTS}).status_code == 200


@pytest.mark.parametrize("query", CATALOG.values(), ids=lambda q: q.name)
def test_every_query_page_renders_for_browsers(client: FlaskClient, query: NamedQuery, seed_store: ox.Store) -> None:
    r = client.get(f"/queries/{query.name}", query_string=dict(query.example_values), headers={"Accept": BROWSER})
    assert r.status_code == 200, r.data[:300]
    page = parse_page(r.data)
    assert set(page.inputs) == {p.name for p in query.parameters}
    assert len(page.rows) == min(100, len(expected_rows(seed_store, query, dict(query.example_values))))
