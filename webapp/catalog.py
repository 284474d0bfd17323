"""The query catalog for people and programs: /queries (HTML, JSON, OpenAPI) and /queries/<name>.

Every page here is generated from `queries/catalog/*.rq` through `graph.catalog`, so a new query file is a
new page, a new JSON entry and a new OpenAPI path. A query runs exactly as /sparql runs one (the query worker
pool, its timeout and row limit), with its parameters bound by `graph.catalog.bind` and handed to the worker
as RDF terms (`executor.Job.substitutions`): parameter values never become query text. Paging (`limit`,
`offset`) is checked by `graph.catalog.page` and appended from integers. Browsers get an HTML page with a GET
form and a results table that work without JavaScript; programs get any SPARQL results format by Accept or
`?format=`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

import pyoxigraph as ox
from flask import Blueprint, Response, current_app, render_template, request

from graph import __version__
from graph.catalog import NamedQuery, Page, ParameterError, bind, load_catalog, page, paged_text

from . import answer
from .conneg import HTML, RESULT_TYPES, choose, prefers_html
from .executor import Job, Outcome
from .linkeddata import local_path
from .sparql import FORMAT_PARAMS, ProtocolError, check_urlencoded, error, outcome_response, public_url

bp = Blueprint("catalog", __name__)

PAGE_SIZE = 100
"""Rows on one HTML page of results."""
RESERVED = (*FORMAT_PARAMS, "limit", "offset")
"""Query-string names that are not catalog parameters."""
INDEX_TYPES = {HTML: "html", "application/json": "json"}
SCHEMAS: dict[str, dict[str, str]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "iri": {"type": "string", "format": "iri"},
}
"""JSON Schema (OpenAPI 3.1) for each catalog parameter type."""


class BadRequest(Exception):
    """A request this blueprint refuses: the status and a message naming what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def catalog() -> dict[str, NamedQuery]:
    """The catalog, read once per app (the files are part of the deployed code)."""
    ext = current_app.extensions
    if "cmokg_catalog" not in ext:
        ext["cmokg_catalog"] = load_catalog()
    queries: dict[str, NamedQuery] = ext["cmokg_catalog"]
    return queries


def query_url(name: str) -> str:
    return public_url(f"queries/{name}")


# -- the catalog -----------------------------------------------------------------------------------------


def describe(query: NamedQuery) -> dict[str, Any]:
    """One catalog entry as JSON."""
    return {
        "name": query.name,
        "title": query.title,
        "description": query.description,
        "parameters": [
            {"name": p.name, "type": p.type, "default": p.default, "required": p.required,
             "description": p.description}
            for p in query.parameters
        ],
        "example": query.example,
        "url": query_url(query.name),
    }


def example_href(query: NamedQuery) -> str:
    """The query's page run with its example's parameter values."""
    values = dict(query.example_values)
    return f"/queries/{query.name}" + (f"?{urlencode(values)}" if values else "")


@bp.route("/queries")
@bp.route("/queries/")
def index() -> Response:
    """The query catalog: every named query with its title, description, parameters and example, as HTML or JSON."""
    kind = _index_kind()
    queries = list(catalog().values())
    if kind == "json":
        r = Response(json.dumps([describe(q) for q in queries], ensure_ascii=False, indent=1),
                     mimetype="application/json")
    else:
        r = Response(render_template("queries.html", queries=queries, example_href=example_href))
    r.vary.add("Accept")
    return r


def _index_kind() -> str:
    fmt = request.args.get("format")
    if fmt:
        if fmt.strip().lower() in ("json", "application/json"):
            return "json"
        if fmt.strip().lower() in ("html", HTML):
            return "html"
    chosen = choose(request.headers.get("Accept"), INDEX_TYPES)
    return chosen[1] if chosen else "html"


@bp.route("/queries/openapi.json")
def openapi() -> Response:
    """An OpenAPI 3.1 document generated from the catalog: one path per named query, its parameters typed."""
    r = Response(json.dumps(openapi_document(catalog().values()), ensure_ascii=False, indent=1),
                 mimetype="application/json")
    return r


def openapi_document(queries: Any) -> dict[str, Any]:
    """An OpenAPI 3.1 description of the catalog: one GET path per query with its typed parameters."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cmokg query catalog",
            "version": __version__,
            "description": "Named SPARQL queries over the realist-review evidence graph, each with typed "
                           "parameters. Results come in any SPARQL results format by Accept or ?format=.",
        },
        "servers": [{"url": public_url("").rstrip("/")}],
        "paths": {f"/queries/{q.name}": {"get": _operation(q)} for q in queries},
    }


def _operation(query: NamedQuery) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    for p in query.parameters:
        schema: dict[str, Any] = dict(SCHEMAS[p.type])
        if p.default is not None:
            schema["default"] = _json_value(p.type, p.default)
        entry: dict[str, Any] = {"name": p.name, "in": "query", "required": p.required,
                                 "description": p.description, "schema": schema}
        if p.name in query.example_values:
            entry["example"] = _json_value(p.type, query.example_values[p.name])
        parameters.append(entry)
    parameters += [
        {"name": "limit", "in": "query", "required": False, "description": "at most this many rows (a page)",
         "schema": {"type": "integer", "minimum": 0}},
        {"name": "offset", "in": "query", "required": False, "description": "skip this many rows first",
         "schema": {"type": "integer", "minimum": 0, "default": 0}},
        {"name": "format", "in": "query", "required": False,
         "description": "the result format, instead of the Accept header",
         "schema": {"type": "string", "enum": ["json", "xml", "csv", "tsv", "html"]}},
    ]
    results = {mime: {"schema": {"type": "object"} if "json" in mime else {"type": "string"}}
               for mime in RESULT_TYPES}
    problem = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "operationId": query.name,
        "summary": query.title,
        "description": query.description,
        "parameters": parameters,
        "responses": {
            "200": {"description": "the query's results", "content": {**results, HTML: {"schema": {"type": "string"}}}},
            "400": {"description": "a parameter is missing or not of its type (the message names it)",
                    "content": problem},
            "406": {"description": "no acceptable result format", "content": problem},
            "503": {"description": "the query ran out of time", "content": problem},
        },
    }


def _json_value(kind: str, text: str) -> Any:
    if kind == "integer":
        return int(text)
    if kind == "decimal":
        return float(text)
    if kind == "boolean":
        return text.strip().lower() in ("true", "1")
    return text


# -- running a query -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRequest:
    """What a request to /queries/<name> asks for: parameter values as given, the page, and the format."""

    values: dict[str, str]
    rows: Page
    html: bool
    format_param: str | None


def parse_request(query: NamedQuery) -> RunRequest:
    """The parameters, page and format of this request; BadRequest (400) naming a parameter given twice."""
    try:
        check_urlencoded(request.query_string, "query string")
    except ProtocolError as exc:
        raise BadRequest(exc.status, str(exc)) from None
    args = request.args
    for name in args:
        if len(args.getlist(name)) > 1:
            raise BadRequest(400, f"parameter {name!r} given more than once; give it once")
    format_param = next((args[n] for n in FORMAT_PARAMS if args.get(n)), None)
    html = (format_param or "").strip().lower() in ("html", HTML) or (
        format_param is None and prefers_html(request.headers.get("Accept"), RESULT_TYPES)
    )
    values = {name: value for name, value in args.items() if name not in RESERVED}
    return RunRequest(values, page(args.get("limit"), args.get("offset")), html,
                   None if html else format_param)


@bp.route("/queries/<name>")
def run_query(name: str) -> Response:
    """Run one catalog query, parameters bound safely: SPARQL results by Accept; a form and table for browsers."""
    query = catalog().get(name)
    if query is None:
        return error(404, f"no catalog query named {name!r}; the catalog is at /queries")
    try:
        req = parse_request(query)
        if req.html and _first_visit(query, req):
            return _form_only(query)
        substitutions = bind(query, req.values)
    except ParameterError as exc:
        return _refuse(query, 400, f"{exc}", exc.name)
    except BadRequest as exc:
        return _refuse(query, exc.status, str(exc), None)
    if req.html:
        return _html_page(query, req, substitutions)
    outcome = execute(query, substitutions, req.rows, request.headers.get("Accept"), req.format_param)
    return outcome_response(outcome)


def _first_visit(query: NamedQuery, req: RunRequest) -> bool:
    """A browser opening a query that needs values, with none given yet (e.g. from the catalog's link)."""
    return not any(req.values.values()) and any(p.required for p in query.parameters)


def _form_only(query: NamedQuery) -> Response:
    """The empty form, answered 200: nothing was asked yet, so there is nothing to refuse."""
    missing = ", ".join(p.name for p in query.parameters if p.required)
    body = render_template("queries_run.html", query=query, values={}, problem=None, bad_parameter=None,
                           result=None, hint=f"Fill in {missing} and run the query.")
    return Response(body, mimetype="text/html")


def _refuse(query: NamedQuery, status: int, message: str, parameter: str | None) -> Response:
    """A refusal: the form page with the message for browsers, plain text for programs."""
    if prefers_html(request.headers.get("Accept"), RESULT_TYPES) or request.args.get("format") == "html":
        values = {k: v for k, v in request.args.items() if k not in RESERVED}
        body = render_template("queries_run.html", query=query, values=values, problem=message,
                               bad_parameter=parameter, result=None)
        return Response(body, status=status, mimetype="text/html")
    return error(status, message)


def execute(query: NamedQuery, substitutions: Mapping[ox.Variable, Any], rows: Page, accept: str | None,
            format_param: str | None) -> Outcome:
    """Run the query as /sparql runs one: in the worker pool (timeout, row limit) when there is one."""
    job = Job(
        sparql=paged_text(query, rows),
        accept=accept,
        format_param=format_param,
        union=True,
        max_rows=int(current_app.config["CMOKG_MAX_ROWS"]),
        substitutions=tuple((var.value, term) for var, term in substitutions.items()),
    )
    return cast(Outcome, answer(job))


@dataclass(frozen=True)
class Cell:
    """One value in the HTML table: its text, and where it links to (local /id/ page or the IRI)."""

    text: str
    href: str | None = None


def cell(term: object) -> Cell:
    if term is None:
        return Cell("")
    if isinstance(term, ox.NamedNode):
        local = local_path(term.value)
        external = term.value if term.value.startswith(("http://", "https://")) else None
        return Cell(term.value, local or external)
    if isinstance(term, ox.Literal):
        return Cell(term.value)
    return Cell(str(term))


def _html_page(query: NamedQuery, req: RunRequest, substitutions: Mapping[ox.Variable, Any]) -> Response:
    size = req.rows.limit if req.rows.limit is not None else PAGE_SIZE
    probe = Page(size + 1, req.rows.offset)  # one row more tells whether there is a next page
    outcome = execute(query, substitutions, probe, "application/sparql-results+json", None)
    if outcome.status != 200:
        body = render_template("queries_run.html", query=query, values=req.values,
                               problem=outcome.read().decode("utf-8", "replace").strip(), bad_parameter=None,
                               result=None)
        return Response(body, status=outcome.status, mimetype="text/html")
    solutions = ox.parse_query_results(outcome.read(), ox.QueryResultsFormat.JSON)
    assert isinstance(solutions, ox.QuerySolutions), "catalog queries are SELECT queries"
    names = [v.value for v in solutions.variables]
    table = [[cell(solution[n]) for n in names] for solution in solutions]
    # limit=0 shows no rows and has no other page: a link "back" or "on" by 0 rows would lead to this very
    # page, and a crawler following it would never stop
    has_next = size > 0 and len(table) > size
    result = {
        "columns": names,
        "rows": table[:size],
        "first": req.rows.offset + 1,
        "previous": _page_href(query, req, max(0, req.rows.offset - size)) if req.rows.offset and size else None,
        "next": _page_href(query, req, req.rows.offset + size) if has_next else None,
        "downloads": {fmt: _href(query, req.values, {"format": fmt}) for fmt in ("json", "xml", "csv", "tsv")},
    }
    body = render_template("queries_run.html", query=query, values=req.values, problem=None, bad_parameter=None,
                           result=result, sparql_href=f"/queries/{query.name}.rq",
                           editor_href=editor_href(query, substitutions))
    r = Response(body, mimetype="text/html")
    r.vary.add("Accept")
    return r


def _page_href(query: NamedQuery, req: RunRequest, offset: int) -> str:
    extra = {"limit": str(req.rows.limit)} if req.rows.limit is not None else {}
    return _href(query, req.values, {**extra, "offset": str(offset)} if offset else extra)


def _href(query: NamedQuery, values: Mapping[str, str], extra: Mapping[str, str]) -> str:
    """The query's URL with the given parameter values (empty ones left out) and extra arguments."""
    args = {**{k: v for k, v in values.items() if v != ""}, **extra}
    return f"/queries/{query.name}" + (f"?{urlencode(args)}" if args else "")


def editor_href(query: NamedQuery, substitutions: Mapping[ox.Variable, Any]) -> str:
    """/sparql with the query loaded into the editor (YASGUI reads `#query=`), the current parameter values
    set by a VALUES line each at the top of its pattern: a copy to edit and run by hand."""
    text = query.text
    header_end = _header_end(text)
    at = text.upper().find("WHERE {", header_end)
    if substitutions and at >= 0:
        lines = "".join(f"\n  VALUES ?{var.value} {{ {term} }}" for var, term in substitutions.items())
        text = text[: at + len("WHERE {")] + lines + text[at + len("WHERE {"):]
    return "/sparql#" + urlencode({"query": text, "endpoint": public_url("sparql")})


def _header_end(text: str) -> int:
    """Offset of the first line that is not a header comment."""
    offset = 0
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        offset += len(line)
    return offset


@bp.route("/queries/<name>.rq")
def query_text(name: str) -> Response:
    """The query's SPARQL text, header included, as it is stored."""
    query = catalog().get(name)
    if query is None:
        return error(404, f"no catalog query named {name!r}; the catalog is at /queries")
    return Response(query.text, mimetype="text/plain")
