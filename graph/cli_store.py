"""Store commands: `push` (publish the graph to a SPARQL endpoint), `backup`, `restore`, and `--endpoint` for
`serve` (the web app on a remote store).

Every command that talks to an endpoint takes --endpoint (the SPARQL query URL), --update-endpoint,
--dialect, --user and --password (or $CMOKG_ENDPOINT_PASSWORD); the server kind is detected when --dialect
is not given.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from .backend import Backend, StoreError
from .namespaces import BASE, BATCH_PREFIX
from .remote import DEFAULT_CHUNK, DIALECTS, RemoteStore

Command = Callable[[str, str], argparse.ArgumentParser]


def endpoint_url(text: str) -> str:
    """An argparse type: an http(s) URL with a host."""
    try:
        parts = urllib.parse.urlsplit(text)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL with a host "
                                         "(e.g. http://127.0.0.1:7878/query)")
    return text


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _endpoint_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--endpoint", metavar="URL", required=required, type=endpoint_url,
                   help="SPARQL query endpoint (e.g. http://127.0.0.1:7878/query, http://host:8890/sparql)")
    p.add_argument("--update-endpoint", metavar="URL", type=endpoint_url,
                   help="SPARQL update endpoint (default: /update beside an Oxigraph /query, /sparql-auth for "
                        "Virtuoso)")
    p.add_argument("--dialect", choices=DIALECTS, help="server kind (default: detected from the Server header)")
    p.add_argument("--user", help="user for HTTP digest authentication (Virtuoso: dba)")
    p.add_argument("--password", help="password (default: $CMOKG_ENDPOINT_PASSWORD)")
    p.add_argument("--chunk", type=positive_int, default=DEFAULT_CHUNK, help="triples per write request")


def open_remote(args: argparse.Namespace) -> RemoteStore:
    """The endpoint as a store, checked to answer SPARQL queries (StoreError, exit 2, where it does not)."""
    password = args.password if args.password is not None else os.environ.get("CMOKG_ENDPOINT_PASSWORD")
    remote = RemoteStore(args.endpoint, args.update_endpoint, dialect=args.dialect, user=args.user,
                         password=password, chunk=args.chunk)
    remote.check_query_endpoint()
    return remote


def is_cmokg_graph(iri: str) -> bool:
    """A graph cmokg writes: an import batch, the ontology or the vocabularies (by its IRI)."""
    return iri.startswith((BATCH_PREFIX, BASE + "graph/"))


def cmokg_graphs(store: Backend) -> set[str]:
    """The store's cmokg graphs: named as cmokg names them, or describing themselves as an import batch."""
    described = store.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?g a cmo:ImportBatch } }")
    return {g for g in store.named_graphs() if is_cmokg_graph(g)} | {
        g.value for row in described if isinstance(g := row["g"], ox.NamedNode)}


def _local(args: argparse.Namespace, *, read_only: bool, must_exist: bool = True) -> Backend:
    from .cli import _open

    return _open(args, read_only=read_only, must_exist=must_exist)


def _endpoint_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A request the endpoint rejects as malformed (HTTP 400) is a StoreError (exit 2), not a traceback."""
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except SyntaxError as exc:
            raise StoreError(f"the endpoint rejected a request: {str(exc)[:300]}") from None
    return run


@_endpoint_errors
def cmd_push(args: argparse.Namespace) -> int:
    """Each named graph of the local store replaces its namesake on the endpoint (one batch at a time, each
    switched in one step); then the endpoint's cmokg graphs that the local store no longer holds (retracted or
    superseded batches) are dropped, other graphs on the endpoint are kept. Finally the set of cmokg graphs
    and the triple count per graph are checked against the local store."""
    from .cli import OK, REFUSED, err, out

    local = _local(args, read_only=True)
    remote = open_remote(args)
    leftovers = remote.remove_staging()
    if leftovers:
        err.print(f"removed {len(leftovers)} staging graph(s) an interrupted push or restore had left", markup=False)
    graphs = local.named_graphs()
    mismatches = []
    total = 0
    for i, graph in enumerate(graphs, 1):
        buf = io.BytesIO()
        local.dump(buf, ox.RdfFormat.N_TRIPLES, graph)
        remote.replace_graph(graph, buf.getvalue())
        expected, got = local.graph_quad_count(graph), remote.graph_quad_count(graph)
        total += got
        if expected != got:
            mismatches.append((graph, expected, got))
        if err.is_terminal:
            err.print(f"pushed {i}/{len(graphs)} {graph}: {got} triples", markup=False)
    stale = sorted(cmokg_graphs(remote) - set(graphs))
    for graph in stale:
        remote.drop_graph(graph)
        err.print(f"dropped {graph} from the endpoint: the local store no longer holds it", markup=False)
    for graph, expected, got in mismatches:
        err.print(f"count mismatch in {graph}: {expected} local, {got} on the endpoint", markup=False)
    there = cmokg_graphs(remote) | set(remote.named_graphs())
    missing, extra = sorted(set(graphs) - there), sorted(cmokg_graphs(remote) - set(graphs))
    for graph in missing:
        err.print(f"graph mismatch: {graph} is in the local store but not on the endpoint", markup=False)
    for graph in extra:
        err.print(f"graph mismatch: {graph} is on the endpoint but not in the local store", markup=False)
    if mismatches or missing or extra:
        return REFUSED
    dropped = f", dropped {len(stale)} graph(s) no longer in the local store" if stale else ""
    out.print(f"pushed {len(graphs)} graph(s), {total} triples to {args.endpoint}{dropped}; graphs and counts "
              "verified", markup=False)
    return OK


@_endpoint_errors
def cmd_backup(args: argparse.Namespace) -> int:
    from .cli import OK, out

    store = open_remote(args) if args.endpoint else _local(args, read_only=True)
    manifest = store.backup(Path(args.directory))
    out.print(f"backed up {manifest['quads']} quads in {manifest['graphs']} graph(s) to {args.directory}",
              markup=False)
    return OK


@_endpoint_errors
def cmd_restore(args: argparse.Namespace) -> int:
    from .cli import OK, out

    store = open_remote(args) if args.endpoint else _local(args, read_only=False, must_exist=False)
    count = store.restore(Path(args.directory))
    out.print(f"restored {count} quads from {args.directory}", markup=False)
    return OK


def serve_remote(args: argparse.Namespace) -> None:
    """The web app with gunicorn on a remote store: queries run in the request threads, the endpoint does
    the work, so several app processes may serve one store. The app is made in the worker (after the fork)."""
    from gunicorn.app.base import BaseApplication

    from webapp.serve import REQUEST_LINE_LIMIT, ThreadWorkerWithAdvice

    open_remote(args).close()  # fail in the foreground if the endpoint does not answer

    class RemoteApp(BaseApplication):
        def load_config(self) -> None:
            # gthread, with the request-line cap and the 414 advice of the embedded store's server
            for key, value in {"bind": f"{args.host}:{args.port}", "workers": 1,
                               "worker_class": ThreadWorkerWithAdvice, "threads": args.threads, "timeout": 120,
                               "limit_request_line": REQUEST_LINE_LIMIT, "accesslog": "-"}.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from webapp import create_app

            return create_app({"CMOKG_STORE_OBJECT": open_remote(args), "CMOKG_QUERY_WORKERS": 0})

    RemoteApp().run()


def _endpoint_from_environment(args: argparse.Namespace) -> None:
    """`CMOKG_ENDPOINT` (and `CMOKG_UPDATE_ENDPOINT`, `CMOKG_DIALECT`, `CMOKG_ENDPOINT_USER`) as the options
    they stand for, each option given on the command line first: `CMOKG_ENDPOINT=URL cmokg serve` serves that
    store, as `create_app` does with the same keys, instead of asking for a local one."""
    from .cli import UsageError

    try:
        args.endpoint = endpoint_url(os.environ["CMOKG_ENDPOINT"])
        if args.update_endpoint is None and os.environ.get("CMOKG_UPDATE_ENDPOINT"):
            args.update_endpoint = endpoint_url(os.environ["CMOKG_UPDATE_ENDPOINT"])
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"CMOKG_ENDPOINT / CMOKG_UPDATE_ENDPOINT: {exc}") from None
    dialect = os.environ.get("CMOKG_DIALECT")
    if args.dialect is None and dialect:
        if dialect not in DIALECTS:
            raise UsageError(f"CMOKG_DIALECT: {dialect!r} is not one of {', '.join(DIALECTS)}")
        args.dialect = dialect
    if args.user is None:
        args.user = os.environ.get("CMOKG_ENDPOINT_USER")


def _extend_serve(command: Command) -> None:
    """Give the existing `serve` subcommand an --endpoint option: with it, serve the remote store."""
    sub: Any = None
    for cell in getattr(command, "__closure__", None) or ():
        if isinstance(cell.cell_contents, argparse._SubParsersAction):
            sub = cell.cell_contents
    if sub is None or "serve" not in sub.choices:
        return
    serve = sub.choices["serve"]
    _endpoint_options(serve, required=False)
    local_serve = serve.get_default("func")

    def cmd_serve(args: argparse.Namespace) -> int:
        if not args.endpoint and os.environ.get("CMOKG_ENDPOINT"):
            _endpoint_from_environment(args)
        if not args.endpoint:
            code: int = local_serve(args)
            return code
        serve_remote(args)
        return 0

    serve.set_defaults(func=cmd_serve)


def register(command: Command) -> None:
    p = command("push", "publish the graph to a SPARQL 1.1 endpoint batch by batch and verify the counts")
    _endpoint_options(p, required=True)
    p.set_defaults(func=cmd_push)

    p = command("backup", "write every quad (N-Quads) and a manifest with counts and a checksum into a new folder")
    p.add_argument("directory", metavar="DIR")
    _endpoint_options(p, required=False)
    p.set_defaults(func=cmd_backup)

    p = command("restore", "replace the store's content with a backup made by `cmokg backup` (checksum and count "
                "verified; the embedded store is bulk-loaded beside and swapped in, so a failure keeps the old one)")
    p.add_argument("directory", metavar="DIR")
    _endpoint_options(p, required=False)
    p.set_defaults(func=cmd_restore)

    _extend_serve(command)


__all__ = ["StoreError", "open_remote", "register"]
