"""`cmokg serve` on a remote store, as a process: gunicorn in front of the Oxigraph server, chosen by
`--endpoint` or by `CMOKG_ENDPOINT` alone, with the request-line cap of the embedded store's server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pyoxigraph as ox
import pytest
import requests
from servers import OxigraphServer, cmokg_serve, free_port, require

pytestmark = pytest.mark.timeout(180)

CMOKG = str(Path(sys.executable).parent / "cmokg")
JSON = "application/sparql-results+json"


@pytest.fixture(scope="module")
def pushed(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphServer]:
    require("oxigraph")
    with OxigraphServer(tmp_path_factory.mktemp("remote-serve") / "db") as server:
        pushed = subprocess.run([CMOKG, "push", "--endpoint", server.query_url, "--store", str(seed_store_path)],
                                capture_output=True, text=True, timeout=120, check=False)
        assert pushed.returncode == 0, pushed.stderr
        yield server


@pytest.fixture(scope="module")
def by_option(pushed: OxigraphServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with cmokg_serve(["--endpoint", pushed.query_url], cwd=tmp_path_factory.mktemp("cwd-option")) as url:
        yield url


def _cmoc_count(url: str) -> int:
    query = "SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?c a <https://w3id.org/cmokg/ontology#CMOConfiguration> }"
    r = requests.post(url + "/sparql", data={"query": query}, headers={"Accept": JSON}, timeout=30)
    assert r.status_code == 200
    return int(json.loads(r.content)["results"]["bindings"][0]["n"]["value"])


def _padded_get(url: str, length: int) -> requests.Response:
    """A GET of /sparql whose request line is `length` bytes long: an ASK padded with a comment."""
    head = url.split("//", 1)[1].split("/", 1)
    start = "/sparql?query=" + quote("ASK {} #", safe="")
    line_without_pad = len("GET ") + len(start) + len(" HTTP/1.1")
    target = start + "x" * (length - line_without_pad)
    assert len("GET " + target + " HTTP/1.1") == length and head
    return requests.get(url + target, headers={"Accept": JSON}, timeout=30)


def test_remote_serve_takes_request_lines_up_to_the_documented_limit(by_option: str) -> None:
    """serve --endpoint ran gunicorn without limit_request_line: its default cap (4094) gave 414 from ~4 KB, where
    the embedded store's server (and the README) take up to 8,190 bytes."""
    r = _padded_get(by_option, 6000)
    assert r.status_code == 200 and json.loads(r.content)["boolean"] is True
    assert _padded_get(by_option, 8190).status_code == 200
    assert _padded_get(by_option, 9000).status_code == 414


def test_cmokg_endpoint_alone_serves_the_remote_store(pushed: OxigraphServer, by_option: str,
                                                      seed_store_path: Path, tmp_path: Path) -> None:
    """CMOKG_ENDPOINT=URL cmokg serve, where no local store exists, exited 2 ("no store at var/store")."""
    assert not (tmp_path / "var").exists()
    with cmokg_serve([], cwd=tmp_path, env={"CMOKG_ENDPOINT": pushed.query_url}) as url:
        expected = ox.Store.read_only(str(seed_store_path)).query(
            "SELECT (COUNT(DISTINCT ?c) AS ?n) "
            "WHERE { GRAPH ?g { ?c a <https://w3id.org/cmokg/ontology#CMOConfiguration> } }")
        assert isinstance(expected, ox.QuerySolutions)
        n = int(next(iter(expected))["n"].value)  # type: ignore[union-attr]
        assert n > 0 and _cmoc_count(url) == n == _cmoc_count(by_option)


def test_a_bad_cmokg_endpoint_is_usage(tmp_path: Path) -> None:
    proc = subprocess.run([CMOKG, "serve", "--port", str(free_port())], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "CMOKG_ENDPOINT": "ftp://nowhere/query"})
    assert proc.returncode == 2 and "CMOKG_ENDPOINT" in proc.stderr
