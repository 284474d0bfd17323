"""Serving the app with gunicorn (a production WSGI server) on a local store.

Processes: one gunicorn worker (gthread, `threads` request threads) holds the store for writing — RocksDB
allows one writer process, and holding its lock keeps CLI writes from running under the server — and a pool
of query worker processes (CMOKG_QUERY_WORKERS, webapp.executor) runs the queries on read-only snapshots,
so that a query past its timeout can be killed without harming anything else. Requests are thus served
concurrently by threads, and queries run in parallel in several processes.

The app is created in the gunicorn worker after it forks (not in the arbiter): RocksDB's background threads
and the query workers' pipes do not survive a fork.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.http.errors import LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker

REQUEST_LINE_LIMIT = 8190
"""Bytes of the request line (method, path and query string) gunicorn reads: its largest finite limit. A GET
query travels in the request line; the largest catalog query is 5.4 KB URL-encoded. A longer query is answered
414 with a message saying to POST it (the body may hold MAX_CONTENT_LENGTH bytes). gunicorn's setting 0 is not
a larger cap but none at all: a 20 MB request line was read whole."""


class _TooLongForGet(LimitRequestLine):
    def __str__(self) -> str:
        return (f"the request line is longer than {self.max_size} bytes, the limit of this server: send a long "
                "SPARQL query by POST (Content-Type application/sparql-query, or a form with a 'query' field) "
                "instead of in the URL")


class ThreadWorkerWithAdvice(ThreadWorker):
    """gunicorn's gthread worker whose 414 (request line too long) tells the client to POST instead."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if isinstance(exc, LimitRequestLine) and not isinstance(exc, _TooLongForGet):
            exc = _TooLongForGet(exc.size, exc.max_size or REQUEST_LINE_LIMIT)
        super().handle_error(req, client, addr, exc)


class _Gunicorn(BaseApplication):
    def __init__(self, config: dict[str, Any], options: dict[str, Any]) -> None:
        self.config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from . import create_app

        app = create_app(self.config)
        with app.app_context():  # start the query workers now rather than on the first query
            from . import get_pool

            get_pool()
        return app


def _check_store(store: Path, read_only: bool) -> None:
    """Fail in the foreground, with the store's own message, if the store cannot be opened.

    The probe runs in a child process: RocksDB must not be opened in the gunicorn arbiter, whose forked
    worker would inherit RocksDB's process-wide state without its background threads (a flush then waits
    forever)."""
    import subprocess
    import sys

    from graph.store import StoreError

    probe = ("import sys; from graph.store import EvidenceStore, StoreError\n"
             "try: EvidenceStore(sys.argv[1], read_only=sys.argv[2] == '1')\n"
             "except StoreError as exc: sys.exit(str(exc))")
    done = subprocess.run([sys.executable, "-c", probe, str(store), "1" if read_only else "0"],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise StoreError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "cannot open the store")


def serve(store: Path, host: str = "127.0.0.1", port: int = 8000, threads: int = 8,
          config: dict[str, Any] | None = None) -> None:
    """Run gunicorn until stopped. `config` adds app configuration (see webapp.CONFIG; the environment
    variables of the same names also apply)."""
    import os

    app_config: dict[str, Any] = {"CMOKG_STORE": str(store), **(config or {})}
    read_only = bool(app_config.get("CMOKG_READ_ONLY") or os.environ.get("CMOKG_READ_ONLY", "").lower()
                     in ("1", "true", "yes", "on"))
    _check_store(Path(store), read_only)
    _Gunicorn(app_config, {
        "bind": f"{host}:{port}",
        "workers": 1,
        "worker_class": ThreadWorkerWithAdvice,  # gthread
        "threads": threads,
        "timeout": 120,
        # a GET query travels in the request line: gunicorn's default (4094 bytes) refused catalog queries of
        # 5 KB with 414. Its largest finite limit is 8190; 0 would mean no limit at all (see REQUEST_LINE_LIMIT)
        "limit_request_line": REQUEST_LINE_LIMIT,
        "graceful_timeout": 5,
        "accesslog": "-",
        "preload_app": False,
        "control_socket_disable": True,  # gunicorn's control socket is one per user: servers would clash
    }).run()
