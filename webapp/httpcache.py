"""HTTP caching: validators (ETag, Last-Modified) on what the graph serves, and conditional GET and HEAD answered
304 before the work, so that crawlers and clients of the linked data and the endpoint revalidate instead of
downloading again (RFC 9110 §8.8 validators and §13 conditional requests, RFC 9111 caching).

- What a representation depends on is its `Basis`, read before the route runs, from the route table `BASES`: the
  store's state (the app's write lock counts every write and keeps its time: `executor.WriteLock.state`, the
  version that also moves the query pool's generation), the files it is read from (ontology, shapes), this run
  of the app (code, templates, the catalog, read once per run), the installed front-end packages (pages link
  them by version), and the request: its URL (host, path, query string) and the representation the route's own
  negotiation picks from Accept. A GET /sparql?query=... or /queries/NAME whose ETag still matches is answered
  304 without running the query.
- ETags are weak (`W/"..."`): two answers from one state hold the same data, but not always the same bytes (a
  SELECT without ORDER BY, a serializer changed by an upgrade); If-None-Match compares weakly, and no Range
  requests are served, so nothing needs a strong one.
- Last-Modified is when the app last wrote the store or, before any write, when it opened it. The store records
  no time for a SPARQL Update, a retraction or a restore made while the server was stopped, so the latest import
  batch's prov:generatedAtTime could understate it and a client revalidating by date would keep a stale copy.
  Files: their modification or change time, whichever is later. In whole seconds, so it is sent only once the
  second it names has passed (a Last-Modified in the second a response is made is not a safe validator,
  RFC 9110 §8.8.2.2).
- A restart changes every ETag that depends on the store or the code (the write count starts again, and the
  store may have been changed while the server was stopped); the RDF of /ontology and /shapes keeps its ETag.
- A remote store (`serve --endpoint`) can be changed behind the app's back, so what is read from it gets no
  validators and conditional requests for it are answered in full: no validator is better than a wrong one.
  An embedding application that writes an EvidenceStore it handed over (CMOKG_STORE_OBJECT) holds the app's
  write lock while it writes, as it must for the query pool to see the write (`app.extensions["cmokg_write_lock"]`).
- If-None-Match (`*` included) takes precedence over If-Modified-Since, which is ignored when it is not an
  HTTP-date or lies in the future; a header that cannot be parsed is ignored (a full answer, never a 500).
- A 304 carries the ETag, Last-Modified, Vary and Cache-Control the 200 would carry; every route here that
  negotiates says `Vary: Accept`.
- Cache-Control is CMOKG_CACHE_CONTROL (default `no-cache`: a cache may keep a copy but revalidates it before
  each use) on the answers of these routes; `no-store` on their errors, on queries whose answer depends on more
  than the store (NOW(), RAND(), SERVICE...: `executor.cacheable`), and on anything POSTed to /sparql.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from flask import Flask, Response, current_app, g, request
from werkzeug.http import parse_date, parse_etags

from graph import __version__
from graph.vocab import ONTOLOGY_FILE

from .assets import PACKAGES, assets_root
from .catalog import INDEX_TYPES, catalog
from .conneg import DATASET_TYPES, HTML, RDF_TYPES, RESULT_TYPES, SUFFIXES, choose, prefers_html
from .docs import SHAPES_FILE
from .executor import Job, cacheable
from .linkeddata import LD_TYPES, negotiate
from .memo import local_store
from .sparql import format_param

NO_STORE = "no-store"
RUN = "cmokg_http_run"
"""app.extensions key: (a random id of this run of the app, when it started)."""


@dataclass(frozen=True)
class Basis:
    """What a route's answer depends on besides its URL: the representation negotiated (`variant`), the store's
    state, this run of the app's code (and the installed front-end packages), and files it is read from.
    `negotiated`: the variant comes from Accept, so the answer says `Vary: Accept`."""

    variant: str
    store: bool = True
    code: bool = True
    files: tuple[Path, ...] = ()
    negotiated: bool = True


@dataclass(frozen=True)
class Validators:
    etag: str
    """The opaque tag, without W/ and quotes."""
    last_modified: datetime | None


@dataclass
class _Decision:
    basis: Basis | None  # None: the answer is not a function of what the validators cover (no-store)
    validators: Validators | None
    answered: bool = False  # a 304 was sent before the route ran


def _accept() -> str | None:
    return request.headers.get("Accept")


def _mime(chosen: tuple[str, Any] | None) -> str:
    return chosen[0] if chosen else "none"


def _suffix_type() -> str | None:
    """The media type a route's `suffix` argument (/ontology.ttl, /void.nt, /dump.nq) forces, if any."""
    suffix = (request.view_args or {}).get("suffix")
    return SUFFIXES.get(suffix) if suffix else None


# -- what each route's answer depends on ----------------------------------------------------------------------


def _linked_data() -> Basis:
    # /id/x.ttl is Turtle by its suffix unless <x.ttl> itself exists: keyed by Accept either way, which is exact
    return Basis(str(negotiate(_accept())))


def _document(path: Path, reads_store: bool) -> Callable[[], Basis]:
    """/ontology, /shapes: the RDF is the file as it is (its ETag outlives a restart); the HTML page is rendered
    by the code (the ontology's page also lists the store's concept schemes)."""

    def basis() -> Basis:
        forced = _suffix_type()
        mime = forced or negotiate(_accept())
        if mime == HTML:
            return Basis(mime, store=reads_store, files=(path,), negotiated=forced is None)
        return Basis(str(mime), store=False, code=False, files=(path,), negotiated=forced is None)

    return basis


def _void() -> Basis:
    # /void and /dump say Vary: Accept with a suffix too, so their 304s do
    return Basis(_suffix_type() or _mime(choose(_accept(), LD_TYPES)))


def _dump() -> Basis:
    return Basis(_suffix_type() or _mime(choose(_accept(), DATASET_TYPES)))


def _graph_store() -> Basis:
    return Basis(_mime(choose(_accept(), RDF_TYPES, format_param(request.args))))


def _sparql() -> Basis | None:
    """GET /sparql: a query's results (SELECT/ASK or CONSTRUCT/DESCRIBE: both negotiations key it), the service
    description (the store's named graphs), the editor page (this run's catalog and the installed YASGUI), or a
    graph of the Graph Store Protocol."""
    args, accept = request.args, _accept()
    fmt = format_param(args)
    queries = args.getlist("query")
    if queries:
        if not all(cacheable(Job(q)) for q in queries):
            return None
        return Basis(f"{_mime(choose(accept, RESULT_TYPES, fmt))} {_mime(choose(accept, RDF_TYPES, fmt))}")
    if "graph" in args or "default" in args:
        return _graph_store()
    if prefers_html(accept, RDF_TYPES) and not fmt:
        return Basis(HTML, store=False)
    return Basis(_mime(choose(accept, RDF_TYPES, fmt)))


def _catalog_query() -> Basis | None:
    query = catalog().get((request.view_args or {}).get("name", ""))
    if query is not None and not cacheable(Job(query.text)):
        return None
    accept = _accept()
    return Basis(f"{prefers_html(accept, RESULT_TYPES)} {_mime(choose(accept, RESULT_TYPES))}")


def _catalog_index() -> Basis:
    return Basis(_mime(choose(_accept(), INDEX_TYPES)), store=False)


def _code_only() -> Basis:
    return Basis("", store=False, negotiated=False)


def _page() -> Basis:
    """A page for readers: keyed by the whole Accept header, which is exact whatever the page does with it."""
    return Basis(_accept() or "")


BASES: dict[str, Callable[[], Basis | None]] = {
    "linkeddata.resource": _linked_data,
    "docs.ontology": _document(ONTOLOGY_FILE, reads_store=True),
    "docs.shapes": _document(SHAPES_FILE, reads_store=False),
    "docs.void": _void,
    "docs.dump": _dump,
    "sparql.sparql": _sparql,
    "sparql.graph_store": _graph_store,
    "catalog.run_query": _catalog_query,
    "catalog.index": _catalog_index,
    "catalog.openapi": _code_only,
    "catalog.query_text": _code_only,
    "pages.home": _page,
    "browse.cmocs": _page,
    "browse.reviews": _page,
    "browse.review_page": _page,
    "browse.framework": _page,
    "browse.search": _page,
    "maps.index": _page,
    "maps.matrix": _page,
    "maps.matrix_svg": _page,
    "maps.network": _page,
    "maps.network_json": _page,
    "maps.network_svg": _page,
}
"""The routes that send validators (by endpoint name), each with what its answer depends on. A route listed here
must answer GET from nothing but its URL, Accept and what its Basis names: no clock, no randomness, no state
of its own (/review keeps uploads, so it is not here)."""


# -- validators --------------------------------------------------------------------------------------------------


def _now() -> float:
    return time.time()


def _stat(path: Path) -> tuple[tuple[object, ...], float] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns), max(st.st_mtime, st.st_ctime)


def validators(basis: Basis) -> Validators | None:
    """The ETag and Last-Modified of the answer the current request will get, or None when there can be none."""
    parts: list[object] = [request.url_root, request.path, request.query_string, basis.variant]
    times: list[float] = []
    ext = current_app.extensions
    if basis.store:
        if not local_store():
            return None
        version, changed_at = ext["cmokg_write_lock"].state
        parts += ["store", version]
        times.append(changed_at)
    if basis.store or basis.code:
        run, started = ext[RUN]
        parts.append(run)
        times.append(started)
    if basis.code:
        root = assets_root()
        for package in PACKAGES:
            found = _stat(root / package / "package.json")
            parts.append(found[0] if found else None)
            if found:
                times.append(found[1])
    else:  # the file as it is, serialized by this version of cmokg and pyoxigraph
        parts += [__version__, ox.__version__]
    for path in basis.files:
        found = _stat(path)
        if found is None:
            return None
        parts.append(found[0])
        times.append(found[1])
    etag = hashlib.sha256(repr(parts).encode("utf-8", "backslashreplace")).hexdigest()[:32]
    changed = math.floor(max(times)) if times else None
    if changed is None or math.floor(_now()) <= changed:
        return Validators(etag, None)
    return Validators(etag, datetime.fromtimestamp(changed, UTC))


def not_modified(v: Validators, *, answered: bool) -> bool:
    """Whether the request's preconditions say the client's copy is current (RFC 9110 §13.2.2). `answered`: the
    route has answered 200, so `If-None-Match: *` (any current representation) matches too."""
    none_match = request.headers.get("If-None-Match", "").strip()
    if none_match:
        tags = parse_etags(none_match)
        if tags.star_tag:  # werkzeug's ETags match anything then: only an answer that exists is current
            return answered
        return tags.contains_weak(v.etag)
    since_text = request.headers.get("If-Modified-Since")
    if not since_text or v.last_modified is None:
        return False
    since = parse_date(since_text)
    if since is None or since.timestamp() > _now():  # a date in the future says nothing about this copy
        return False
    return v.last_modified <= since


def _stamp(response: Response, basis: Basis, v: Validators | None) -> None:
    if basis.negotiated:
        response.vary.add("Accept")
    if v is not None:
        response.headers["ETag"] = f'W/"{v.etag}"'
        if v.last_modified is not None:
            response.last_modified = v.last_modified
    policy = str(current_app.config["CMOKG_CACHE_CONTROL"] or "")
    if policy and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = policy


def _not_modified_response(basis: Basis, v: Validators) -> Response:
    response = Response(status=304)
    _stamp(response, basis, v)
    return response


# -- the hooks ---------------------------------------------------------------------------------------------------


def _before() -> Response | None:
    if request.method not in ("GET", "HEAD"):
        return None
    find = BASES.get(str(request.endpoint))
    if find is None:
        return None
    basis = find()
    v = validators(basis) if basis is not None else None
    decision = _Decision(basis, v)
    g.cmokg_http = decision
    if basis is not None and v is not None and not_modified(v, answered=False):
        decision.answered = True
        return _not_modified_response(basis, v)
    return None


def _after(response: Response) -> Response:
    if request.method == "POST" and request.endpoint == "sparql.sparql":
        response.headers.setdefault("Cache-Control", NO_STORE)
        return response
    decision: _Decision | None = g.pop("cmokg_http", None)
    if decision is None or decision.answered:
        return response
    basis, v = decision.basis, decision.validators
    if basis is None or response.status_code != 200:
        if basis is not None and basis.negotiated:
            response.vary.add("Accept")
        response.headers.setdefault("Cache-Control", NO_STORE)
        return response
    if v is not None and not_modified(v, answered=True):  # If-None-Match: * (anything else was seen before)
        response.close()
        return _not_modified_response(basis, v)
    _stamp(response, basis, v)
    return response


def init_app(app: Flask) -> None:
    """Register the hooks (after the blueprints: requests their own hooks refuse are not looked at here)."""
    app.extensions[RUN] = (uuid.uuid4().hex, time.time())
    app.before_request(_before)
    app.after_request(_after)
