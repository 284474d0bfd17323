"""The endpoint under hostile or pathological queries and updates, against a live `cmokg serve` on the seed graph.

Oxigraph's parser and optimizer recurse once per level of a query's tree; on a thread's 8 MiB stack 2,200
nested `{` or 8,000 triple patterns overflowed it and killed the process: a query worker (answered 500) or, for
an update, the web process itself (the connection dropped, and gunicorn had to boot a new one). These tests
hold the fixes: brackets nested past MAX_NESTING are refused with 400 unparsed, queries and updates run on a
thread with a large stack, and a long query that still kills its worker is a 400. The server's process tree
stays whole and its memory comes back.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conformance.server import TOKEN, live_server
from servers import tree_rss

from webapp.executor import COMPLEX_CHARS, MAX_NESTING, nesting_depth

pytestmark = pytest.mark.timeout(120)

QUERY = {"Content-Type": "application/sparql-query"}
UPDATE = {"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"}
CROSS = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


class Served:
    def __init__(self, url: str, store: Path) -> None:
        self.url, self.endpoint, self.store = url, url + "/sparql", store

    def pid(self) -> int:
        """The gunicorn arbiter serving our store copy."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmd = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"serve" in cmd and str(self.store).encode() in cmd:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    if not any(str(self.store).encode() in part for part in _cmdline(ppid)):
                        return int(entry.name)
        raise AssertionError("the server process is gone")

    def web_pids(self) -> set[int]:
        """The gunicorn worker (the web process): the arbiter's children."""
        arbiter = self.pid()
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except OSError:
                    continue
                if ppid == arbiter:
                    found.add(int(entry.name))
        return found

    def query(self, text: str, **headers: str) -> requests.Response:
        return requests.post(self.endpoint, data=text.encode(), headers={**QUERY, **headers}, timeout=60)

    def update(self, text: str) -> requests.Response:
        return requests.post(self.endpoint, data=text.encode(), headers=UPDATE, timeout=60)

    def count(self, where: str) -> int:
        r = requests.get(self.endpoint, params={"query": f"SELECT (COUNT(*) AS ?n) WHERE {{ {where} }}"},
                         headers={"Accept": "text/csv"}, timeout=30)
        assert r.status_code == 200, r.text
        return int(r.text.split()[1])


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


@pytest.fixture(scope="module")
def served(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("limits")
    with live_server(seed_store_path, work, CMOKG_UPDATE_TOKEN=TOKEN, CMOKG_QUERY_TIMEOUT="1.5",
                     CMOKG_MAX_ROWS="1000", CMOKG_QUERY_WORKERS="2") as url:
        yield Served(url, work / "served-store")


def _alive(served: Served) -> None:
    r = served.query("ASK { ?s ?p ?o }")
    assert r.status_code == 200 and b"true" in r.content


# -- nesting, read lexically ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, depth", [
    ("SELECT * WHERE { { } }", 2),
    ("ASK { FILTER(\"{{{\" = '((' ) } # {{{{ [[[", 2),
    ("ASK { FILTER(\"\"\"{\n{{\"\"\" != '''(((''') }", 2),
    ("ASK { <http://x/a#b> ?p ?o FILTER(?o < 3 && (?o > 1)) }", 3),
    ("{" * 5000, 5000),
    ("SELECT * WHERE { \"unterminated { { {\n }", 1),
])
def test_nesting_depth_skips_strings_iris_and_comments(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


# -- queries ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["{", "(", "["])
def test_a_query_nested_10000_deep_is_400_and_no_worker_dies(served: Served, shape: str) -> None:
    close = {"{": "}", "(": ")", "[": "]"}[shape]
    texts = {"{": "SELECT * WHERE " + "{" * 10_000 + "}" * 10_000,
             "(": "ASK { FILTER(" + "(" * 10_000 + "1" + ")" * 10_000 + ") }",
             "[": "ASK { ?s <http://x/p> " + "[ <http://x/p> " * 10_000 + "1" + " ]" * 10_000 + " }"}
    assert close in texts[shape]
    r = served.query(texts[shape])
    assert r.status_code == 400, r.text
    assert "MAX_NESTING" in r.text and f"at most {MAX_NESTING}" in r.text
    _alive(served)


def test_a_query_nested_1000_deep_is_still_answered(served: Served) -> None:
    r = served.query("SELECT * WHERE " + "{" * (MAX_NESTING - 1) + "}" * (MAX_NESTING - 1))
    assert r.status_code == 200, r.text


def test_a_long_chain_that_overflowed_8_mib_is_answered(served: Served) -> None:
    """20,000 chained `!` (9,000 overflowed a thread's 8 MiB stack): answered, on the worker's large stack."""
    r = served.query("ASK { FILTER(" + "!" * 20_000 + "true) }")
    assert r.status_code == 200 and b"true" in r.content, r.text


def test_a_query_that_overflows_even_the_large_stack_is_400_and_the_worker_replaced(served: Served) -> None:
    text = "ASK { FILTER(" + "!" * 400_000 + "true) }"
    assert len(text) >= COMPLEX_CHARS
    r = served.query(text)
    assert r.status_code == 400 and "too complex" in r.text, r.text
    for _ in range(4):  # both workers answer again (the dead one replaced)
        _alive(served)


def test_construct_over_the_limit_names_triples(served: Served) -> None:
    r = served.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", Accept="text/turtle")
    assert r.status_code == 400 and "more than 1000 triples" in r.text, r.text
    r = served.query("SELECT * WHERE { ?s ?p ?o }")
    assert r.status_code == 400 and "more than 1000 rows" in r.text, r.text


def test_many_timeouts_at_once_leave_a_working_pool_and_memory_near_baseline(served: Served) -> None:
    _alive(served)
    before = tree_rss(served.pid())
    group_concat = ("SELECT (GROUP_CONCAT(STR(?c); separator='xxxxxxxxxxxxxxxxxxxxxxxx') AS ?g) "
                    "WHERE { ?a ?b ?c . ?d ?e ?f }")
    with cf.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: served.query(CROSS if i % 2 else group_concat).status_code, range(8)))
    assert statuses == [503] * 8
    deadline = time.monotonic() + 20
    while True:  # the killed workers are replaced in the background
        _alive(served)
        after = tree_rss(served.pid())
        if abs(after - before) < 40 * 1024 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert abs(after - before) < 40 * 1024, (before, after)


# -- updates (in the web process) -----------------------------------------------------------------------


def test_a_deeply_nested_update_is_400_and_the_web_process_lives(served: Served) -> None:
    web = served.web_pids()
    r = served.update("INSERT { <http://x/a> <http://x/b> 1 } WHERE " + "{" * 5000 + "}" * 5000)
    assert r.status_code == 400 and "MAX_NESTING" in r.text, r.text
    assert served.web_pids() == web
    assert served.count("<http://x/a> <http://x/b> ?o") == 0


def test_a_long_update_chain_is_applied_without_killing_the_web_process(served: Served) -> None:
    web = served.web_pids()
    r = served.update("INSERT { GRAPH <http://x/g> { <http://x/chain> <http://x/b> 1 } } WHERE { FILTER("
                      + "!" * 20_000 + "true) }")
    assert r.status_code == 204, r.text
    assert served.web_pids() == web
    assert served.count("GRAPH <http://x/g> { <http://x/chain> <http://x/b> 1 }") == 1
    assert served.update("DROP GRAPH <http://x/g>").status_code == 204
