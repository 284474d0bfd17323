"""The cmokg web app: a SPARQL endpoint over the evidence graph and pages for people.

`create_app(config)` opens the store once per app; blueprints per concern keep routes thin: they parse HTTP,
call the `graph` package and negotiate the format.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from graph.store import DEFAULT_STORE, EvidenceStore

# one blueprint per concern; each module defines `bp`
BLUEPRINTS: list[str] = ["pages", "sparql"]

DEFAULTS: dict[str, Any] = {
    "CMOKG_STORE": None,  # path of the embedded store; default $CMOKG_STORE or var/store
    "CMOKG_READ_ONLY": False,  # the server holds the store (RocksDB lock); CLI writes wait for it to stop
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # request bodies (queries) up to 1 MiB
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    if config:
        app.config.update(config)
    store = app.config.get("CMOKG_STORE_OBJECT")
    if store is None:
        path = Path(app.config["CMOKG_STORE"] or os.environ.get("CMOKG_STORE") or DEFAULT_STORE)
        store = EvidenceStore(path, read_only=bool(app.config["CMOKG_READ_ONLY"]))
    app.extensions["cmokg_store"] = store

    for module in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(f"{__name__}.{module}").bp)
    return app


def get_store() -> EvidenceStore:
    from flask import current_app

    store: EvidenceStore = current_app.extensions["cmokg_store"]
    return store
