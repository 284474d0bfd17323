"""Serving the app with gunicorn (a production WSGI server) on a local store.

One process with several threads: the embedded RocksDB store is opened by one process; pyoxigraph releases
the GIL while it queries, so threads run queries in parallel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def serve(store: Path, host: str = "127.0.0.1", port: int = 8000, threads: int = 8) -> None:
    from . import create_app

    app = create_app({"CMOKG_STORE": str(store)})
    _Gunicorn(app, {
        "bind": f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 60,
        "accesslog": "-",
    }).run()
