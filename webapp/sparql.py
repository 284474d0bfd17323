"""SPARQL 1.1 Protocol endpoint at /sparql: query by GET, POST form and POST application/sparql-query."""

from __future__ import annotations

import pyoxigraph as ox
from flask import Blueprint, Response, request

from . import get_store
from .conneg import RDF_TYPES, RESULT_TYPES, choose

bp = Blueprint("sparql", __name__)


def _error(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


def _query_text() -> str | None:
    if request.method == "GET":
        return request.args.get("query")
    mimetype = request.mimetype
    if mimetype == "application/sparql-query":
        return request.get_data(as_text=True)
    if mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.get("query")
    return None


@bp.route("/sparql", methods=["GET", "POST"])
def sparql() -> Response:
    if request.method == "POST" and request.mimetype not in (
        "application/sparql-query", "application/x-www-form-urlencoded", "multipart/form-data"
    ):
        return _error(415, f"unsupported media type {request.mimetype!r}: send application/sparql-query or a "
                           "form with a 'query' field")
    query = _query_text()
    if not query:
        return _error(400, "no query: pass the SPARQL query as the 'query' parameter")
    try:
        result = get_store().query(query)
    except SyntaxError as exc:
        return _error(400, f"SPARQL syntax error: {exc}")
    if isinstance(result, ox.QueryTriples):
        chosen = choose(request.headers.get("Accept"), RDF_TYPES, request.args.get("format"))
        if chosen is None:
            return _error(406, "no acceptable RDF format; try text/turtle or application/n-triples")
        mime, fmt = chosen
        return Response(result.serialize(format=fmt), mimetype=mime)
    chosen_results = choose(request.headers.get("Accept"), RESULT_TYPES, request.args.get("format"))
    if chosen_results is None:
        return _error(406, "no acceptable results format; try application/sparql-results+json")
    mime, rfmt = chosen_results
    return Response(result.serialize(format=rfmt), mimetype=mime)
