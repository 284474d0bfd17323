"""The cmokg web app: a SPARQL endpoint over the evidence graph, linked-data pages and documents for people.

`create_app(config)` opens the store once per app; blueprints per concern keep routes thin: they parse HTTP,
call the `graph` package and negotiate the format. Every configuration key is listed in CONFIG with what it
is for; each can also be set by an environment variable of the same name (how `cmokg serve` is configured).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from graph.namespaces import BASE
from graph.store import DEFAULT_STORE, EvidenceStore

# one blueprint per concern; each module defines `bp`
BLUEPRINTS: list[str] = ["pages", "sparql", "linkeddata", "docs", "review", "catalog", "browse", "maps", "assets"]

# key -> (default, what it is for)
CONFIG: dict[str, tuple[Any, str]] = {
    "CMOKG_STORE": (None, "path of the embedded store; default $CMOKG_STORE or var/store"),
    "CMOKG_STORE_OBJECT": (None, "an already opened EvidenceStore to serve instead (tests, embedding)"),
    "CMOKG_ENDPOINT": (None, "query URL of a remote SPARQL 1.1 store to serve instead of the embedded one "
                             "(Oxigraph server, Virtuoso, Fuseki...)"),
    "CMOKG_UPDATE_ENDPOINT": (None, "update URL of the remote store, when it differs from CMOKG_ENDPOINT"),
    "CMOKG_DIALECT": (None, "the remote store's kind (see graph.remote.DIALECTS); default: read from its "
                            "Server header"),
    "CMOKG_ENDPOINT_USER": (None, "user for the remote store's update endpoint (HTTP digest or basic auth)"),
    "CMOKG_ENDPOINT_PASSWORD": (None, "password for the remote store's update endpoint"),
    "CMOKG_READ_ONLY": (False, "open the store read-only: no SPARQL Update, and CLI writes are not locked out, "
                               "but the server answers from the store as it opened it until it is restarted "
                               "(the default holds the RocksDB lock so CLI writes wait for the server to stop)"),
    "MAX_CONTENT_LENGTH": (1024 * 1024, "largest request body in bytes (queries, updates, forms); "
                                        "larger ones get 413 with a message"),
    "CMOKG_QUERY_TIMEOUT": (30.0, "seconds a query may run (including waiting for a free query worker); "
                                  "past it the query is stopped and answered 503"),
    "CMOKG_QUERY_WORKERS": (None, "query worker processes; default min(4, max(2, CPUs)); 0 runs queries in the "
                                  "request thread without a timeout (tests, in-memory stores)"),
    "CMOKG_RESULT_CACHE": (256 * 1024 * 1024, "bytes of serialized query answers kept as files beside the "
                                             "store, not in memory (keyed by store version, query, dataset "
                                             "and format; emptied by every write); 0 turns the cache off"),
    "CMOKG_WORKER_GROWTH": (256 * 1024 * 1024, "bytes a query worker may stay above its size just after "
                                              "opening the store (read after each answer, once freed memory "
                                              "is returned) before it is replaced by a fresh one; 0 never "
                                              "replaces"),
    "CMOKG_MEMORY_QUADS": (600_000, "each query worker copies a store of at most this many quads into memory "
                                    "(~0.4 KB of RAM per quad per worker, twice that while copying; queries "
                                    "6-9x faster than on disk); "
                                    "a larger store is queried on disk; 0 keeps every store on disk"),
    "CMOKG_MAX_ROWS": (100_000, "largest result (rows of a SELECT, triples of a CONSTRUCT/DESCRIBE); a larger "
                                "one is refused with 400 and a message; 0 for no limit"),
    "CMOKG_UPDATE_TOKEN": (None, "bearer token that enables SPARQL Update (POST with `Authorization: Bearer "
                                 "TOKEN`); unset: updates are refused with 403"),
    "CMOKG_SERVICE_ALLOWLIST": ((), "endpoint IRIs a query may call with SERVICE (and an update may LOAD from); "
                                    "anything else is refused with 400. Comma-separated in the environment"),
    "CMOKG_BASE_IRI": (BASE, "the IRI base of the data; IRIs under BASE + 'id/' dereference at /id/..."),
    "CMOKG_PUBLIC_URL": (None, "the server's public URL (behind a proxy) for the service description and "
                               "links; default: taken from each request"),
    "CMOKG_REVIEWER_TOKEN": (None, "token a reviewer gives to import a workbook at /review; unset: importing "
                                   "over the web is off (validation still works)"),
    "CMOKG_UPLOAD_LIMIT": (16 * 1024 * 1024, "largest workbook upload at /review in bytes; larger ones get 413"),
    "CMOKG_ASSETS": (None, "the node_modules folder whose front-end packages (YASGUI, cytoscape) are served at "
                           "/assets/; default: node_modules at the repository root, as `make install` fills it"),
    "CMOKG_CORS_ORIGIN": ("*", "Access-Control-Allow-Origin sent on every response (no credentials: "
                               "the app sets no cookies)"),
    "CMOKG_CACHE_CONTROL": ("no-cache", "Cache-Control on the answers to GET and HEAD of the linked data, "
                                        "documents, endpoint, catalog and pages, which carry ETag and (for a local "
                                        "store) Last-Modified: by default a cache revalidates before each use and "
                                        "gets 304 while the store is unchanged; e.g. 'max-age=60' lets it reuse "
                                        "an answer for a minute; empty sends none. Errors, POSTed queries and "
                                        "queries with NOW(), RAND() or SERVICE get no-store"),
}
DEFAULTS: dict[str, Any] = {key: default for key, (default, _) in CONFIG.items()}


def _from_env(key: str, default: Any) -> Any:
    raw = os.environ[key]
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(x.strip() for x in raw.split(",") if x.strip())
    return raw


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    for key, default in DEFAULTS.items():
        if key in os.environ and key not in ("CMOKG_STORE_OBJECT",):
            app.config[key] = _from_env(key, default)
    if config:
        app.config.update(config)
    store = app.config.get("CMOKG_STORE_OBJECT")
    if store is None:
        store = importlib.import_module("graph.remote").store_from_config(app.config)
    if store is None:
        path = Path(app.config["CMOKG_STORE"] or os.environ.get("CMOKG_STORE") or DEFAULT_STORE)
        store = EvidenceStore(path, read_only=bool(app.config["CMOKG_READ_ONLY"]))
    app.extensions["cmokg_store"] = store
    app.extensions["cmokg_pool"] = None
    app.extensions["cmokg_pool_lock"] = threading.Lock()
    app.extensions["cmokg_write_lock"] = _write_lock(app.extensions)

    for module in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(f"{__name__}.{module}").bp)
    importlib.import_module(f"{__name__}.httpcache").init_app(app)  # ETag, Last-Modified, 304 (webapp.httpcache)
    return app


def _write_lock(ext: dict[str, Any]) -> Any:
    """The lock every writer holds; releasing it makes the write visible to the query pool and its cache."""
    from .executor import WriteLock

    def generation() -> int:
        return ext["cmokg_pool"].generation if ext["cmokg_pool"] is not None else 0

    def after_write() -> None:
        if ext["cmokg_pool"] is not None:
            ext["cmokg_pool"].refresh()

    return WriteLock(generation, after_write)


def get_store() -> EvidenceStore:
    from flask import current_app

    store: EvidenceStore = current_app.extensions["cmokg_store"]
    return store


def get_pool() -> Any:
    """The app's QueryPool, started on first use (in the process that serves: after gunicorn forks), or None
    when queries run in the request thread (CMOKG_QUERY_WORKERS=0 or a store without a path)."""
    from flask import current_app

    from .executor import QueryPool, worker_count

    ext = current_app.extensions
    size = worker_count(current_app.config["CMOKG_QUERY_WORKERS"])
    store: EvidenceStore = ext["cmokg_store"]
    if size <= 0 or store.path is None:
        return None
    with ext["cmokg_pool_lock"]:
        if ext["cmokg_pool"] is None:
            ext["cmokg_pool"] = QueryPool(store.ox, store.path, size, int(current_app.config["CMOKG_RESULT_CACHE"]),
                                          int(current_app.config["CMOKG_MEMORY_QUADS"]),
                                          int(current_app.config["CMOKG_WORKER_GROWTH"]))
        return ext["cmokg_pool"]


def answer(job: Any) -> Any:
    """The `Outcome` of a `Job`: from the query workers (timeout, result cache) when the app has them, else
    evaluated in the request thread."""
    from flask import current_app

    from .executor import run_job

    pool = get_pool()
    if pool is None:
        return run_job(get_store().ox, job)
    return pool.run(job, float(current_app.config["CMOKG_QUERY_TIMEOUT"]))
