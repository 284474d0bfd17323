"""A live `cmokg serve` (gunicorn) on a loopback port, for tests that must talk to the real server.

The server runs on its own copy of a store (it holds the store's lock), is configured through the
environment (webapp.CONFIG keys), and always stops: the context manager terminates it, then kills it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import requests
from rdflib import Dataset, Graph

CMOKG = str(Path(sys.executable).with_name("cmokg"))
TOKEN = "test-token-5b1f"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(store: Path, workdir: Path, **config: str) -> Iterator[str]:
    """Serve a copy of `store` (or a new empty store when it does not exist); yield the base URL."""
    copy = workdir / "served-store"
    if store.exists():
        shutil.copytree(store, copy)
    else:
        from graph.store import EvidenceStore

        EvidenceStore(copy).flush()
    port = free_port()
    env = {**os.environ, **config}
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen([CMOKG, "serve", "--store", str(copy), "--port", str(port), "--threads", "8"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                r = requests.get(url + "/sparql", params={"query": "ASK {}"}, timeout=5)
                if r.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError("server did not start:\n" + (workdir / "server.log").read_text())
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


RDF_PARSERS = {"text/turtle": "turtle", "application/n-triples": "nt", "application/rdf+xml": "xml",
               "application/ld+json": "json-ld", "application/n-quads": "nquads", "application/trig": "trig"}


def parse_rdf(content: bytes, content_type: str) -> Graph:
    """The triples of an RDF response, parsed by rdflib by the response's media type (all graphs merged).

    rdflib's JSON-LD, N-Quads and TriG parsers go through its deprecated ConjunctiveGraph; that warning
    (rdflib's own, not ours) is silenced here and only here."""
    mime = content_type.split(";")[0].strip()
    fmt = RDF_PARSERS[mime]
    g = Graph()
    if fmt in ("json-ld", "nquads", "trig"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = Dataset()
            ds.parse(data=content, format=fmt)
            for s, p, o, _ in ds.quads((None, None, None, None)):
                g.add((s, p, o))
    else:
        g.parse(data=content, format=fmt)
    return g
