"""SPARQL 1.1 Protocol at /sparql (query, update, service description) and Graph Store Protocol reads at /store.

Request handling follows the Protocol spec (§2.1 query, §2.2 update): GET with `query`; POST as a form
(`query` or `update`) or directly (`application/sparql-query`, `application/sparql-update`, UTF-8 only);
`default-graph-uri` / `named-graph-uri` and `using-graph-uri` / `using-named-graph-uri`. Without a dataset the
default graph is the union of all graphs (every batch), unless the query names its own with FROM.
Queries run in the query worker pool (webapp.executor: timeout, row limit); updates run here, in the one
process that holds the store for writing, in one transaction, then the workers get a fresh snapshot.
"""

from __future__ import annotations

import hmac
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

import pyoxigraph as ox
from flask import Blueprint, Response, current_app, render_template, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import MethodNotAllowed, RequestEntityTooLarge
from werkzeug.wsgi import wrap_file

from graph import catalog
from graph.backend import StoreError
from graph.namespaces import PREFIXES, sparql_prologue

from . import answer, get_pool, get_store
from .assets import assets_installed
from .conneg import FORMAT_IRIS, RDF_TYPES, choose, prefers_html
from .executor import Job, Outcome, nesting_message, on_big_stack, syntax_message
from .sparqltext import add_using, has_dataset_clause, has_using_or_with, remote_targets
from .streaming import stream_writer

bp = Blueprint("sparql", __name__)

QUERY_TYPE = "application/sparql-query"
UPDATE_TYPE = "application/sparql-update"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
FORMAT_PARAMS = ("format", "output", "results")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(message.rstrip("\n") + "\n", status=status, mimetype="text/plain", headers=headers)


def outcome_response(o: Outcome) -> Response:
    """The answer as a response; a body in a file is sent from it (the WSGI server's file wrapper, sendfile
    under gunicorn) and the file is closed when the response is."""
    if o.stream is None:
        r = Response(o.body, status=o.status, mimetype=o.mimetype, headers=o.headers)
    else:
        size = o.size()
        r = Response(wrap_file(request.environ, o.stream), status=o.status, mimetype=o.mimetype, headers=o.headers,
                     direct_passthrough=True)
        r.content_length = size
    r.vary.add("Accept")
    return r


# -- app-wide: CORS, no cookies, plain-text errors ------------------------------------------------------


@bp.after_app_request
def _cors(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = current_app.config["CMOKG_CORS_ORIGIN"]
    response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = ("Accept, Content-Type, Authorization, If-None-Match, "
                                                        "If-Modified-Since")
    response.headers["Access-Control-Expose-Headers"] = "Link, Content-Type, Content-Disposition, ETag"
    response.headers.pop("Set-Cookie", None)
    return response


@bp.app_errorhandler(405)
def _method_not_allowed(exc: MethodNotAllowed) -> Response:
    allowed = ", ".join(exc.valid_methods or [])
    return error(405, f"method {request.method} not allowed here; use {allowed}", {"Allow": allowed})


@bp.app_errorhandler(413)
def _too_large(exc: RequestEntityTooLarge) -> Response:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return error(413, f"the request body is larger than {limit} bytes, the limit of this server "
                      "(MAX_CONTENT_LENGTH)")


@bp.app_errorhandler(StoreError)
def _store_unavailable(exc: StoreError) -> Response:
    """The store cannot be reached or written (e.g. the remote endpoint of `cmokg serve --endpoint` is down):
    503, so that clients retry; nothing is cached, so the next request after the store is back is answered.
    The store's own message (which may name internal hosts) goes to the log, not to the client."""
    current_app.logger.warning("store unavailable for %s %s: %s", request.method, request.path, exc)
    message = ("the triple store behind this server is unavailable (unreachable or refusing requests); "
               "try again later")
    headers = {"Retry-After": "30"}
    if not request.path.startswith(("/sparql", "/store")) and prefers_html(request.headers.get("Accept"),
                                                                           RDF_TYPES):
        body = render_template("search_error.html", message=message)
        return Response(body, status=503, mimetype="text/html", headers=headers)
    return error(503, message, headers)


def check_reachable(store: Any) -> None:
    """Before a streamed answer: a remote store that is down raises StoreError (503) now, while the status can
    still be set, rather than cut the body short after a 200 was sent."""
    if store.path is None and not isinstance(store.ox, ox.Store):  # a remote store (graph.remote)
        store.query("ASK {}")


def buffer_unsized_body(limit: int | None) -> None:
    """Read a request body sent without Content-Length (`Transfer-Encoding: chunked`) here, at most `limit` + 1
    bytes: one byte over the limit is refused with 413, as a body with a Content-Length over it is. Werkzeug
    would stop reading at the limit without saying so, and a query cut there would run truncated.
    A body within the limit is handed on as if it had come with its Content-Length."""
    env = request.environ
    if limit is None or "chunked" not in env.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    stream = env["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise RequestEntityTooLarge()
    data = b"".join(chunks)
    env["wsgi.input"] = io.BytesIO(data)
    env["CONTENT_LENGTH"] = str(len(data))
    env.pop("HTTP_TRANSFER_ENCODING", None)


@bp.before_app_request
def _bound_unsized_bodies() -> None:
    if request.blueprint != "review":  # /review has a limit of its own (CMOKG_UPLOAD_LIMIT) and bounds it there
        buffer_unsized_body(request.max_content_length)


@bp.before_app_request
def _utf8_query_string() -> Response | None:
    """A query string that is not percent-encoded UTF-8 is a 400 on every route. Werkzeug would decode `%FF`
    to U+FFFD, and /search would then look for that. /sparql and the catalog check it in their own parsing,
    to answer in the protocol's terms."""
    if request.blueprint in ("sparql", "catalog"):
        return None
    try:
        check_urlencoded(request.query_string, "query string")
    except ProtocolError as exc:
        if prefers_html(request.headers.get("Accept"), RDF_TYPES):
            body = render_template("search_error.html", message=str(exc))
            return Response(body, status=exc.status, mimetype="text/html")
        return error(exc.status, str(exc))
    return None


# -- request parsing ------------------------------------------------------------------------------------


class ProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _check_charset() -> None:
    charset = request.mimetype_params.get("charset")
    if charset and charset.lower().replace("-", "") != "utf8":
        raise ProtocolError(415, f"charset {charset} not supported: send the request body as UTF-8")


def _body_text() -> str:
    try:
        return request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(400, "the request body is not valid UTF-8") from None


def check_urlencoded(raw: bytes, where: str) -> None:
    """ProtocolError (400) naming the parameter when `raw` (a query string or an urlencoded form body) holds a
    byte that is not ASCII, or a value whose percent-encoded bytes are not UTF-8. Werkzeug would keep such a
    value as the literal text `%E9` (or drop the whole form), and the request would run as something else."""
    if not raw:
        return
    try:
        raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtocolError(400, f"the {where} holds the byte 0x{raw[exc.start]:02X}, which is not allowed "
                                 "there: percent-encode the UTF-8 bytes of every value") from None
    for part in raw.split(b"&"):
        name, _, value = part.partition(b"=")
        for label, piece in (("name", name), ("value", value)):
            try:
                unquote_to_bytes(piece.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                shown = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
                what = f"parameter {shown!r}" if label == "value" else f"a parameter name ({shown!r})"
                raise ProtocolError(400, f"{what} in the {where} is not UTF-8 once percent-decoded: "
                                         "percent-encode its text as UTF-8") from None


def check_iri(name: str, value: str) -> str:
    """`value`, when it is an absolute IRI; else ProtocolError (400) naming the parameter."""
    try:
        ox.NamedNode(value)
    except ValueError as exc:
        raise ProtocolError(400, f"the {name} parameter {value!r} is not an absolute IRI: {exc}") from None
    return value


def _iris(params: MultiDict[str, str], name: str) -> list[str]:
    return [check_iri(name, v) for v in params.getlist(name)]


def _one(params: MultiDict[str, str], name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise ProtocolError(400, f"more than one '{name}' parameter: send one {name} per request")
    return values[0] if values else None


def _parse() -> tuple[str, str | None, MultiDict[str, str]]:
    """(kind, text, parameters): kind is query, update or none (GET without a query)."""
    check_urlencoded(request.query_string, "query string")
    if request.method in ("GET", "HEAD"):  # HEAD: a GET without the body
        params = request.args
        if "update" in params:
            raise ProtocolError(400, "SPARQL Update must be sent by POST (form or application/sparql-update)")
        query = _one(params, "query")
        return ("query", query, params) if query is not None else ("none", None, params)
    mimetype = request.mimetype
    if mimetype in FORM_TYPES:
        _check_charset()
        if mimetype == FORM_TYPES[0]:
            check_urlencoded(request.get_data(cache=True), "form body")
        form = request.form
        params = MultiDict(list(request.args.items(multi=True)) + list(form.items(multi=True)))
        query, update = _one(form, "query"), _one(form, "update")
        if query is not None and update is not None:
            raise ProtocolError(400, "a form may carry 'query' or 'update', not both")
        if update is not None:
            return "update", update, params
        if query is not None:
            return "query", query, params
        raise ProtocolError(400, "the form has no 'query' or 'update' field")
    if mimetype in (QUERY_TYPE, UPDATE_TYPE):
        _check_charset()
        if "query" in request.args or "update" in request.args:
            raise ProtocolError(400, f"with {mimetype} the request body is the {mimetype.split('-')[-1]}; "
                                     "do not also pass it as a URL parameter")
        return ("query" if mimetype == QUERY_TYPE else "update"), _body_text(), request.args
    shown = mimetype or "none"
    raise ProtocolError(415, f"unsupported media type {shown!r}: POST application/sparql-query, "
                             "application/sparql-update, or a form (application/x-www-form-urlencoded) with a "
                             "'query' or 'update' field")


def format_param(params: MultiDict[str, str]) -> str | None:
    """The result format a request names by `format`, `output` or `results` (it wins over Accept), if any."""
    for name in FORMAT_PARAMS:
        if params.get(name):
            return params.get(name)
    return None


def _check_remote(text: str) -> None:
    allowed = set(current_app.config["CMOKG_SERVICE_ALLOWLIST"] or ())
    for keyword, target in remote_targets(text, request.base_url):
        if target is None or target not in allowed:
            shown = f"<{target}>" if target else "a non-constant IRI"
            raise ProtocolError(400, f"{keyword} {shown} refused: this endpoint only calls endpoints on its "
                                     "allow-list (CMOKG_SERVICE_ALLOWLIST)")


def public_url(path: str) -> str:
    base = current_app.config["CMOKG_PUBLIC_URL"]
    root = base.rstrip("/") + "/" if base else request.url_root
    return root + path.lstrip("/")


# -- the endpoint ---------------------------------------------------------------------------------------


@bp.route("/sparql", methods=["GET", "POST"])
@bp.route("/sparql/", methods=["GET", "POST"])
def sparql() -> Response:
    """The SPARQL 1.1 Protocol endpoint (query; update with a token); browsers get the YASGUI editor."""
    try:
        kind, text, params = _parse()
        if kind == "none":
            if "graph" in params or "default" in params:
                return graph_store()
            return service_description()
        assert text is not None
        _check_remote(text)
        if kind == "update":
            return _update(text, params)
        return _query(text, params)
    except ProtocolError as exc:
        return error(exc.status, str(exc))


def _query(text: str, params: MultiDict[str, str]) -> Response:
    default = _iris(params, "default-graph-uri")
    named = _iris(params, "named-graph-uri")
    dataset_given = bool(default or named)
    job = Job(
        sparql=text,
        accept=request.headers.get("Accept"),
        format_param=format_param(params),
        base_iri=request.base_url,
        default_graph=default if dataset_given else None,
        named_graphs=named if dataset_given else None,
        union=not has_dataset_clause(text),
        max_rows=int(current_app.config["CMOKG_MAX_ROWS"]),
    )
    return outcome_response(answer(job))


def _update(text: str, params: MultiDict[str, str]) -> Response:
    token = current_app.config["CMOKG_UPDATE_TOKEN"]
    if not token:
        return error(403, "SPARQL Update is disabled on this server (set CMOKG_UPDATE_TOKEN to enable it)")
    auth = request.headers.get("Authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return error(401, "SPARQL Update needs 'Authorization: Bearer TOKEN'",
                     {"WWW-Authenticate": 'Bearer realm="cmokg"'})
    if not hmac.compare_digest(given.strip().encode(), str(token).encode()):
        return error(403, "the bearer token is not the one this server accepts for updates",
                     {"WWW-Authenticate": 'Bearer realm="cmokg", error="invalid_token"'})
    if current_app.config["CMOKG_READ_ONLY"]:
        return error(403, "the store is open read-only (CMOKG_READ_ONLY): updates are not possible")
    using, using_named = _iris(params, "using-graph-uri"), _iris(params, "using-named-graph-uri")
    if using or using_named:
        if has_using_or_with(text):
            return error(400, "using-graph-uri / using-named-graph-uri conflict with USING or WITH in the "
                              "update: give the dataset one way")
        text = add_using(text, using, using_named)
    refused = nesting_message(text, "update")
    if refused is not None:
        return error(400, refused)
    store, base = get_store(), request.base_url
    with current_app.extensions["cmokg_write_lock"]:
        try:  # on a large stack: a deep update must not overflow (and kill) the web process's request thread
            on_big_stack(lambda: store.ox.update(text, base_iri=base))
        except SyntaxError as exc:
            return error(400, syntax_message(exc))
        except RuntimeError as exc:  # it ran and failed on the data (DROP GRAPH of no graph, CREATE of one)
            # one transaction in the embedded store; Virtuoso keeps what the operations before the failing one did
            done = ("it changed nothing" if isinstance(store.ox, ox.Store) else
                    "the remote store may keep what its operations before the failing one did")
            return error(400, f"the update failed: {exc}; {done}")
        except OSError as exc:
            return error(500, f"the update failed and was rolled back: {exc}")
        store.flush()
        pool = get_pool()
        if pool is not None:
            pool.refresh()
    return Response(status=204)


# -- service description --------------------------------------------------------------------------------

SD = "http://www.w3.org/ns/sparql-service-description#"


def _sd_triples() -> Iterable[ox.Triple]:
    n, lit = ox.NamedNode, ox.Literal
    rdf_type = n("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    endpoint = n(public_url("sparql"))
    service = ox.BlankNode("service")
    dataset, default_graph = ox.BlankNode("dataset"), ox.BlankNode("defaultGraph")
    yield ox.Triple(service, rdf_type, n(SD + "Service"))
    yield ox.Triple(service, n(SD + "endpoint"), endpoint)
    yield ox.Triple(service, n(SD + "supportedLanguage"), n(SD + "SPARQL11Query"))
    if current_app.config["CMOKG_UPDATE_TOKEN"] and not current_app.config["CMOKG_READ_ONLY"]:
        yield ox.Triple(service, n(SD + "supportedLanguage"), n(SD + "SPARQL11Update"))
    for feature in ("UnionDefaultGraph", "BasicFederatedQuery"):
        if feature == "BasicFederatedQuery" and not current_app.config["CMOKG_SERVICE_ALLOWLIST"]:
            continue
        yield ox.Triple(service, n(SD + "feature"), n(SD + feature))
    for iri in dict.fromkeys(FORMAT_IRIS.values()):
        yield ox.Triple(service, n(SD + "resultFormat"), n(iri))
    yield ox.Triple(service, n(SD + "defaultDataset"), dataset)
    yield ox.Triple(dataset, rdf_type, n(SD + "Dataset"))
    yield ox.Triple(dataset, n("http://rdfs.org/ns/void#sparqlEndpoint"), endpoint)
    yield ox.Triple(dataset, n(SD + "defaultGraph"), default_graph)
    yield ox.Triple(default_graph, rdf_type, n(SD + "Graph"))
    yield ox.Triple(default_graph, n("http://www.w3.org/2000/01/rdf-schema#comment"),
                    lit("the union of all named graphs: the ontology, the vocabularies and every import batch"))
    for i, g in enumerate(get_store().named_graphs()):
        ng = ox.BlankNode(f"ng{i}")
        yield ox.Triple(dataset, n(SD + "namedGraph"), ng)
        yield ox.Triple(ng, rdf_type, n(SD + "NamedGraph"))
        yield ox.Triple(ng, n(SD + "name"), n(g))
    yield ox.Triple(service, n("http://purl.org/dc/terms/title"), lit("cmokg SPARQL endpoint"))


def service_description() -> Response:
    accept = request.headers.get("Accept")
    if prefers_html(accept, RDF_TYPES) and not format_param(request.args):
        return editor_page()
    chosen = choose(accept, RDF_TYPES, format_param(request.args))
    if chosen is None:
        return error(406, "the service description is RDF: accept one of " + ", ".join(RDF_TYPES))
    mime, fmt = chosen
    triples = list(_sd_triples())
    body = serialize_triples(triples, fmt, {"sd": SD})
    r = Response(body, mimetype=mime)
    r.vary.add("Accept")
    return r


def serialize_triples(triples: Iterable[ox.Triple], fmt: ox.RdfFormat, prefixes: dict[str, str] | None = None,
                      ) -> bytes:
    items: Iterable[Any] = triples
    if fmt in (ox.RdfFormat.N_QUADS, ox.RdfFormat.TRIG):
        items = (ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in triples)
    kwargs: dict[str, Any] = {"format": fmt}
    if prefixes and fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.TRIG, ox.RdfFormat.RDF_XML):
        kwargs["prefixes"] = prefixes
    return ox.serialize(items, **kwargs) or b""


# -- the editor for browsers ----------------------------------------------------------------------------

YASGUI_FILES = ("@zazuko/yasgui/build/yasgui.min.js", "@zazuko/yasgui/build/yasgui.min.css")
STARTER_QUERY = """SELECT ?cmoc ?label ?outcome WHERE {
  ?cmoc a cmo:CMOConfiguration ;
    cmo:hasOutcome/cmo:description ?outcome .
  OPTIONAL { ?cmoc cmo:authorLabel ?label }
}
ORDER BY ?cmoc
LIMIT 20
"""
_WHERE = re.compile(r"\bWHERE\s*\{", re.IGNORECASE)


def starter_query() -> str:
    """The editor's first query: PREFIX lines for every namespace of the graph, then a short SELECT."""
    return sparql_prologue() + "\n" + STARTER_QUERY


def example_terms(query: catalog.NamedQuery) -> dict[str, catalog.Term]:
    """Each parameter's catalog example value (else its default) as an RDF term; parameters with neither
    are left out."""
    terms: dict[str, catalog.Term] = {}
    for param in query.parameters:
        raw = query.example_values.get(param.name, param.default)
        if raw is not None:
            terms[param.name] = catalog.convert(param, raw)
    return terms


def _where_brace(text: str) -> int | None:
    """Offset just after the first `WHERE {` outside a comment line, where a VALUES clause can open the
    query's pattern."""
    for match in _WHERE.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if "#" not in text[line_start:match.start()]:
            return match.end()
    return None


def example_text(query: catalog.NamedQuery) -> str:
    """A catalog query as editable text: its parameters set by `VALUES` lines at the top of the WHERE pattern
    (which binds them for the whole pattern, as the catalog's typed substitution does); a parameter with no
    example or default value stays a variable."""
    terms = example_terms(query)
    at = _where_brace(query.text)
    if not terms or at is None:
        return query.text
    lines = "".join(f"\n  VALUES ?{name} {{ {term} }}  # parameter ({query.parameter(name).type}): edit the value"
                    for name, term in terms.items())
    return query.text[:at] + lines + query.text[at:]


def editor_config() -> dict[str, Any]:
    """What the page's script gives YASGUI: this endpoint, the graph's prefixes, the first query and the
    catalog queries as examples."""
    from .catalog import catalog as app_catalog  # read once per app; webapp.catalog imports this module
    from .linkeddata import CMO, id_base  # webapp.linkeddata imports this module too

    examples = [{"name": q.name, "title": q.title, "description": q.description, "query": example_text(q)}
                for q in app_catalog().values()]
    # the results table links an IRI to itself; the page points the graph's own IRIs at this server instead, as
    # linkeddata.link_target does (the id base and the ontology's namespace need not resolve to it)
    links = [[id_base(), "/id/"], [CMO, "/ontology#"]]
    return {"endpoint": public_url("sparql"), "prefixes": PREFIXES, "query": starter_query(), "examples": examples,
            "links": links}


def editor_page() -> Response:
    """YASGUI when its files are installed, with the plain form inside <noscript>; the plain form alone
    (and a note saying why) when they are not."""
    editor = assets_installed(*YASGUI_FILES)
    r = Response(render_template("sparql.html", endpoint=public_url("sparql"), starter=starter_query(),
                                 update=bool(current_app.config["CMOKG_UPDATE_TOKEN"]),
                                 yasgui_files=YASGUI_FILES if editor else None,
                                 editor=editor_config() if editor else None))
    r.vary.add("Accept")
    return r


# -- Graph Store Protocol: reads ------------------------------------------------------------------------


# The triples kept in more than one graph (the default graph included): an agent of every batch, say.
SHARED_TRIPLES = """SELECT DISTINCT ?s ?p ?o WHERE {
  { GRAPH ?a { ?s ?p ?o } GRAPH ?b { ?s ?p ?o } FILTER(?a != ?b) } UNION { ?s ?p ?o GRAPH ?b { ?s ?p ?o } } }"""


def union_triples(store: ox.Store) -> Iterator[ox.Triple]:
    """The union of all graphs as a set: each triple once, in memory bounded by the triples kept in several
    graphs. Oxigraph's union default graph yields a triple once per graph holding it, and its CONSTRUCT forgets
    what it sent past a million triples or so (measured at 100k CMOCs: 10 triples sent 6 times each, 795 MiB).
    The triples in several graphs are found first, by one join in the store (its time grows with the store:
    about as long as the scan that follows, at 100k CMOCs); the rest are streamed as they are scanned."""
    rows = store.query(SHARED_TRIPLES)
    assert isinstance(rows, ox.QuerySolutions)
    shared = {ox.Triple(r["s"], r["p"], r["o"]) for r in rows}
    sent: set[ox.Triple] = set()
    for q in store.quads_for_pattern(None, None, None, None):
        t = q.triple
        if t in shared:
            if t in sent:
                continue
            sent.add(t)
        yield t


@bp.route("/store", methods=["GET"])
def graph_store() -> Response:
    """`GET ?graph=IRI` (one named graph, e.g. one import batch) or `GET ?default` (the default graph: the
    union of all graphs, as on /sparql), as RDF by Accept."""
    params = request.args
    graph = params.get("graph")
    if graph is None and "default" not in params:
        return error(400, "name the graph: ?graph=IRI, or ?default for the default graph")
    chosen = choose(request.headers.get("Accept"), RDF_TYPES, format_param(params))
    if chosen is None:
        return error(406, "a graph is RDF: accept one of " + ", ".join(RDF_TYPES))
    mime, fmt = chosen
    if graph is not None:
        try:
            check_iri("graph", graph)
        except ProtocolError as exc:
            return error(exc.status, str(exc))
    store = get_store()
    if graph is not None and not store.has_graph(graph):
        return error(404, f"no graph <{graph}> in this store")
    check_reachable(store)
    g = ox.NamedNode(graph) if graph is not None else None
    own = store.union_graphs() if g is None and not isinstance(store.ox, ox.Store) else None  # a remote store

    def write(out: Any) -> None:
        # pyoxigraph iterators belong to the thread that made them: make it here, in the writer thread
        triples: Iterable[ox.Triple]
        if g is not None:
            triples = (ox.Triple(q.subject, q.predicate, q.object)
                       for q in store.ox.quads_for_pattern(None, None, None, g))
        elif isinstance(store.ox, ox.Store):
            triples = union_triples(store.ox)
        else:  # a remote store: its engine answers for the set, over the store's graphs (not Virtuoso's own)
            result = store.ox.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", use_default_graph_as_union=own is None,
                                    default_graph=None if own is None else [ox.NamedNode(x) for x in own])
            assert isinstance(result, ox.QueryTriples)
            triples = result
        if fmt in (ox.RdfFormat.N_QUADS, ox.RdfFormat.TRIG):
            ox.serialize((ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in triples), out,
                         format=fmt)
        else:
            ox.serialize(triples, out, format=fmt)

    r = Response(stream_writer(write), mimetype=mime)
    r.vary.add("Accept")
    return r
