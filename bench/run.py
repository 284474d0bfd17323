"""The benchmark (not a test): cmokg against its peers, per evidence-base size, in one run.

For each size (CMOCs) it generates a synthetic evidence base (bench/generate.py), builds it with `cmokg
build`, and measures side by side, on the same data and the same queries:

- import throughput in triples/s: `cmokg build` (validation + write) and its write alone (the bulk loads of
  its writer thread, which run beside the validation, and the time they took after it), and the raw write
  of the same quads into the embedded store (one transaction), into the Oxigraph server's folder (`oxigraph
  load`, its bulk loader, before `oxigraph serve` on that folder) and into rdflib (Dataset.parse);
- full validation (every workbook, or a sample of them, against the built store) and validation of a
  50-CMOC workbook against the store (which must stay flat as the store grows);
- p50/p95 latency of every catalog query over HTTP (its parameters bound as VALUES to resources of the
  synthetic data, the same text for every server), cold and warm, and throughput with 8 concurrent clients,
  cold and warm;
- peak RSS of each server process tree (sampled during the run, and the peaks at its end).

Cold and warm: cmokg keeps a result cache (webapp.executor.ResultCache); the peers keep none. A *cold* run
sends the query with a comment that makes its text new (`# bench run N`), so no cache can answer it: the
engine evaluates it. A *warm* run repeats the exact text. Peers are measured cold only (their warm is the
same evaluation); cmokg both, and the two are reported separately.

Slow peers are capped: a request that takes longer than `--query-timeout` is abandoned and reported as
"> N s" (as is a 503 at the cap: cmokg is started with the same timeout and stops the query itself), a
query slower than 1 s is repeated only 3 times (slower than 5 s, once), and rdflib is skipped, with the
reason printed, when its estimated memory (measured ~2.1 KiB per triple at 100k CMOCs, plus a margin)
exceeds what is free. rdflib-endpoint answers one request at a time and cannot stop a query; from 1k CMOCs on
the mix holds a query it does not finish within minutes (batch-changes), so under 8 clients it answers next to
nothing and its throughput is only a bound (requests / the window); `--rdflib-cap` gives its throughput
requests a longer cap, for a tighter bound or a measurement. Two things make a rate of it all the same: the
peers ask the catalog cheapest first (by cmokg's cold p50), so a query they cannot finish holds up only
costlier ones; and a last stage ("common") measures throughput over the queries every server answered within
the cap, each server started afresh.
Stages can be skipped (`--skip`) and a built store reused (`--reuse`); the runs of bench/README.md took 22 min
(1k and 10k, with builds, `--rdflib-cap 120`), 57 min (100k on a reused store, rdflib included,
`--rdflib-cap 600`), 47 min (100k again, common mix, `--rdflib-cap 300`) and 4 min (import and validation
at all three sizes, servers skipped) on 2 cores; all three sizes
with builds in one invocation:

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -u bench/run.py --sizes 1000 10000 100000 --out var/bench --validate-sample 50 \
        --query-timeout 30 --rdflib-cap 600
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import itertools
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyoxigraph as ox

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate, write_workbook  # noqa: E402
from servers import OxigraphServer, free_port, oxigraph_program, tree_rss  # noqa: E402

from graph.catalog import bind, load_catalog  # noqa: E402
from graph.pipeline import build, workbooks_in  # noqa: E402
from graph.remote import inject_values  # noqa: E402
from graph.store import EvidenceStore  # noqa: E402
from graph.validate import validate_workbook  # noqa: E402

RDFLIB_SERVER = textwrap.dedent("""
    import sys, rdflib, uvicorn
    from rdflib_endpoint import SparqlEndpoint
    ds = rdflib.Dataset(default_union=True)
    ds.parse(sys.argv[1], format="nquads")
    app = SparqlEndpoint(graph=ds, path="/sparql", public_url="http://127.0.0.1:%s/" % sys.argv[2])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
""")

# timed in a child process, so that its memory (GBs at 100k) is returned before the rdflib server starts
RDFLIB_LOAD = textwrap.dedent("""
    import sys, time, rdflib
    start = time.perf_counter()
    rdflib.Dataset().parse(sys.argv[1], format="nquads")
    print(time.perf_counter() - start)
""")

REPS = 15  # per query, when a run takes under 1 s
SLOW_REPS = 3  # when it takes longer
SLOWER_REPS = 1  # when it takes over 5 s (a 100k-CMOC run would otherwise take hours)
CONCURRENT_SECONDS = 6.0
CLIENTS = 8
RDFLIB_KIB_PER_TRIPLE = 2.1  # peak RSS of rdflib-endpoint / triples, measured at 100k CMOCs (10731 MiB, 5.27M)
RDFLIB_MARGIN = 1.5
STAGES = ("build", "raw-load", "validation", "cmokg", "oxigraph", "rdflib", "common")
SERVERS = ("cmokg", "oxigraph", "rdflib")

Timing = tuple[float | None, int]  # (seconds, or None past the timeout; HTTP status, 0 when timed out)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    parsed = urllib.parse.urlsplit(url)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=5)
            conn.request("GET", f"{parsed.path}?query={urllib.parse.quote('ASK {}')}",
                         headers={"Accept": "application/sparql-results+json"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


class Client:
    """One keep-alive HTTP connection sending SPARQL queries by GET; a request past `timeout` is abandoned
    (the connection is replaced) and reported as None."""

    def __init__(self, url: str, params: dict[str, str], timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path, self.params, self.timeout = parts.hostname, parts.port, parts.path, \
            params, timeout
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host or "127.0.0.1", self.port, timeout=self.timeout)

    def _reconnect(self) -> None:
        self.conn.close()
        self.conn = self._connect()

    def ask(self, sparql: str) -> Timing:
        qs = urllib.parse.urlencode({"query": sparql, **self.params})
        start = time.perf_counter()
        try:
            self.conn.request("GET", f"{self.path}?{qs}", headers={"Accept": "application/sparql-results+json"})
            response = self.conn.getresponse()
            response.read()
        except TimeoutError:
            self._reconnect()
            return None, 0
        except (ConnectionError, http.client.HTTPException):  # counted as an error (status 0)
            self._reconnect()
            return time.perf_counter() - start, 0
        elapsed = time.perf_counter() - start
        if response.status == 503 and elapsed >= 0.9 * self.timeout:  # the server stopped it at the cap
            return None, 0
        return elapsed, response.status


_nonce = itertools.count()


def cold(text: str) -> str:
    """The query as new text (a leading comment), so that no result cache can answer it."""
    return f"# bench run {next(_nonce)}\n{text}"


def summarize(times: list[float | None], errors: int) -> dict[str, Any]:
    """p50/p95 in seconds; a timed-out run counts as +inf, so a p50 past the cap is reported as None."""
    values = sorted(t if t is not None else float("inf") for t in times)
    p50, p95 = statistics.median(values), values[int(0.95 * (len(values) - 1))]
    return {"p50": None if p50 == float("inf") else p50, "p95": None if p95 == float("inf") else p95,
            "runs": len(values), "timeouts": sum(t is None for t in times), "errors": errors}


def _runs(client: Client, texts: Callable[[], str], first: Timing) -> dict[str, Any]:
    t0, status0 = first
    if t0 is None:  # past the cap once: do not queue more behind it
        return summarize([None], 0)
    times: list[float | None] = []
    errors = 0
    for _ in range(REPS if t0 < 1 else SLOW_REPS if t0 < 5 else SLOWER_REPS):
        t, status = client.ask(texts())
        times.append(t)
        errors += t is not None and status != 200
        if t is None:
            break
    return summarize(times, errors + (status0 != 200))


def wait_idle(client: Client, limit: float) -> bool:
    """After an abandoned request: wait until the server answers `ASK {}` again (a peer that cannot stop a
    query keeps computing it, and the next query would queue behind it), at most `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        t, status = client.ask("ASK {}")
        if t is not None and status == 200:
            return True
    return False


def latency(url: str, params: dict[str, str], queries: dict[str, str], timeout: float, warm: bool,
            order: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per query: `cold` (new text each run) and, with `warm`, `warm` (the same text after a first run).
    After a timeout the server gets up to 5 timeouts to finish the abandoned query; if it does not, the
    remaining queries are marked `busy` (not measured) rather than timed behind it. The queries are asked in
    `order` (the peers: cheapest first by the first server's p50, so a query a peer cannot finish holds up
    only costlier ones); the result keeps the catalog's order."""
    client = Client(url, params, timeout)
    out: dict[str, dict[str, Any]] = {}
    busy = False
    for name in order or list(queries):
        text = queries[name]
        if busy:
            out[name] = {"cold": {**summarize([None], 0), "busy": True}}
            continue
        # a first run, not measured: warms the engine's own caches (pages, dictionaries), and is the first
        # asking of the text for cmokg's result cache, which admits an answer on its second asking
        first = client.ask(text)
        out[name] = {"cold": _runs(client, lambda text=text: cold(text), first)}  # type: ignore[misc]
        if warm and first[0] is not None:
            out[name]["warm"] = _runs(client, lambda text=text: text, client.ask(text))  # type: ignore[misc]
        if any(v["timeouts"] for v in out[name].values()):
            busy = not wait_idle(client, 5 * timeout)
        p50 = out[name]["cold"]["p50"]
        print(f"     {name}: cold p50 {'past the cap' if p50 is None else f'{p50 * 1000:.1f} ms'}", flush=True)
    return {name: out[name] for name in queries}


def throughput(url: str, params: dict[str, str], queries: dict[str, str], timeout: float, warm: bool,
               ) -> dict[str, Any]:
    """CLIENTS connections cycling through the catalog for CONCURRENT_SECONDS (a request started before the
    end runs to its end or to the timeout)."""
    texts = list(queries.values())
    done, errors, timeouts = [0] * CLIENTS, [0] * CLIENTS, [0] * CLIENTS
    stop_at = time.monotonic() + CONCURRENT_SECONDS

    def run(i: int) -> None:
        client = Client(url, params, timeout)
        k = i
        while time.monotonic() < stop_at:
            text = texts[k % len(texts)]
            t, status = client.ask(text if warm else cold(text))
            if t is None:
                timeouts[i] += 1
            else:
                done[i] += 1
                errors[i] += status != 200
            k += 1

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - start
    return {"qps": sum(done) / seconds, "seconds": seconds, "errors": sum(errors), "timeouts": sum(timeouts)}


def qps_bound(t: dict[str, Any], cap: float) -> tuple[float, bool]:
    """(q/s, is an upper bound): with timeouts, q/s as if every abandoned request had just finished."""
    if not t["timeouts"]:
        return t["qps"], False
    seconds = t.get("seconds", CONCURRENT_SECONDS + cap)
    return t["qps"] + t["timeouts"] / seconds, True


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


def rdflib_fits(triples: int) -> tuple[bool, str]:
    """Whether rdflib in memory (one process at a time: the raw load, then the server) fits on this machine."""
    need = int(triples * RDFLIB_KIB_PER_TRIPLE * RDFLIB_MARGIN)
    free = mem_available_kib()
    reason = f"rdflib needs ~{need / 1024 ** 2:.1f} GiB for {triples:,} triples; {free / 1024 ** 2:.1f} GiB free"
    return need < free, reason


ID = "https://w3id.org/cmokg/id/"


def synthetic_values(store: EvidenceStore) -> dict[str, dict[str, str]]:
    """Parameters naming resources of the synthetic data, for the catalog queries whose examples name the
    seed graph's (a study, a programme theory, a batch absent here would measure an empty answer). The first
    workbook's review and its fifth CMOC, the head of a chain of five; the first batch in IRI order."""
    rows = store.query("SELECT ?b WHERE { ?b a <https://w3id.org/cmokg/ontology#ImportBatch> } ORDER BY ?b LIMIT 1")
    assert isinstance(rows, ox.QuerySolutions)
    [(batch,)] = [tuple(r) for r in rows]
    assert isinstance(batch, ox.NamedNode)
    review, cmoc = f"{ID}source/syn00000", f"{ID}cmoc/syn00000-c4"
    return {"batch-changes": {"batch": batch.value}, "citations": {"citing": review},
            "cited-sources-with-evidence": {"citing": review}, "cmo-chains": {"start": cmoc},
            "evidence-trail": {"cmoc": cmoc}, "programme-theory-cmocs": {"theory": "theory 1"},
            "contexts-for-mechanism-outcome": {"mechanism": "trust", "outcome": "engagement"}}


def catalog_queries(values: dict[str, dict[str, str]]) -> dict[str, str]:
    """Every catalog query graph.catalog exposes, its parameters bound as VALUES (one text for all servers):
    `values` where given, else the catalog's example values."""
    queries = {}
    for name, q in sorted(load_catalog().items()):
        subs = bind(q, values.get(name, q.example_values))
        queries[name] = inject_values(q.text, subs) if subs else q.text
    return queries


def prepare(cmocs: int, folder: Path, reuse: bool, skip: set[str], res: dict[str, Any]) -> Path:
    """Generate and build (timed) unless `reuse` finds a built store; returns the store path."""
    store_path = folder / "store"
    if reuse and store_path.exists() and (folder / "workbooks").exists():
        res["reused"] = True
        return store_path
    shutil.rmtree(folder, ignore_errors=True)
    res["generate_s"] = timed(lambda: generate(folder, cmocs))
    if "build" in skip:
        raise SystemExit("--skip build needs --reuse and a store built by an earlier run")
    timings: dict[str, float] = {}
    res["build_s"] = timed(lambda: build(store_path, folder, reviewer="bench", timings=timings))
    res["build_stage_s"], res["build_write_s"], res["build_tail_s"] = (
        timings["stage_s"], timings["write_s"], timings["tail_s"])
    return store_path


def raw_loads(folder: Path, data: bytes, triples: int, skip: set[str], res: dict[str, Any]) -> None:
    """The raw write of the same quads into the embedded store and (memory permitting) into rdflib."""
    shutil.rmtree(folder / "raw", ignore_errors=True)
    res["load_embedded_tps"] = triples / timed(lambda: EvidenceStore(folder / "raw").add_quads(data))
    shutil.rmtree(folder / "raw", ignore_errors=True)
    fits, reason = rdflib_fits(triples)
    if "rdflib" in skip or not fits:
        res["load_rdflib_skipped"] = reason if not fits else "skipped (--skip rdflib)"
        return
    done = subprocess.run([sys.executable, "-c", RDFLIB_LOAD, str(folder / "all.nq")], capture_output=True,
                          text=True, check=True)
    res["load_rdflib_tps"] = triples / float(done.stdout.split()[-1])


def validation(store: EvidenceStore, workbooks: list[list[Path]], small: Path, sample: int) -> dict[str, Any]:
    chosen = workbooks if not sample or sample >= len(workbooks) else random.Random(7).sample(workbooks, sample)
    start = time.perf_counter()
    for paths in chosen:
        validate_workbook(paths, store, "bench")
    full = time.perf_counter() - start
    times = []
    for _ in range(3):
        start = time.perf_counter()
        validate_workbook([small], store, "bench")
        times.append(time.perf_counter() - start)
    return {"validate_all_s": full, "validate_workbooks": len(chosen), "workbooks": len(workbooks),
            "validate_50_s": statistics.median(times)}


def bench_size(cmocs: int, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    folder = out / f"{cmocs}"
    skip: set[str] = set(args.skip)
    res: dict[str, Any] = {"cmocs": cmocs}
    servers: dict[str, Any] = {}
    started = time.monotonic()

    def done(stage: str) -> None:
        """Progress as each stage ends, and the results so far in OUT/SIZE/partial.json (a long run that is
        stopped keeps what it measured)."""
        print(f"   {stage} done at {time.monotonic() - started:.0f} s", flush=True)
        (folder / "partial.json").write_text(json.dumps({**res, "servers": servers}, indent=1, default=str))

    store_path = prepare(cmocs, folder, args.reuse, skip, res)
    store = EvidenceStore(store_path)
    triples = store.quad_count()
    res["triples"] = triples
    if "build_s" in res:
        res["build_tps"] = triples / res["build_s"]
        res["build_write_tps"] = triples / res["build_write_s"]
    done("build")
    nq = folder / "all.nq"
    if not (args.reuse and nq.exists()):
        with nq.open("wb") as fh:
            store.dump(fh)
    data = nq.read_bytes()
    if "raw-load" not in skip:
        raw_loads(folder, data, triples, skip, res)
        done("raw loads")
    if "validation" not in skip:
        small = folder / "small"
        write_workbook(small, 99999, 50, random.Random(3), prefix="val")
        res.update(validation(store, workbooks_in(folder), small, args.validate_sample))
        done("validation")
    queries = catalog_queries(synthetic_values(store))
    del store
    if "cmokg" not in skip:
        servers["cmokg"] = run_cmokg(folder, store_path, queries, args.query_timeout, None)
        done("cmokg server")
    order = cheapest_first(servers["cmokg"]) if "cmokg" in servers else None
    if "oxigraph" not in skip:
        servers["oxigraph"] = run_oxigraph(folder, triples, queries, args.query_timeout, res, first_mix(servers),
                                           order)
        done("Oxigraph server")
    fits, reason = rdflib_fits(triples)
    if "rdflib" in skip:
        res["rdflib_skipped"] = "--skip rdflib"
    elif not fits:
        res["rdflib_skipped"] = reason
        print(f"   rdflib skipped: {reason}", flush=True)
    else:
        servers["rdflib"] = run_rdflib(folder, nq, queries, args.query_timeout, first_mix(servers),
                                       args.rdflib_cap, order)
        done("rdflib-endpoint")
    if "common" not in skip and len(servers) > 1:
        run_common(folder, store_path, nq, queries, servers, args.query_timeout, args.rdflib_cap)
        done("common mix")
    res["servers"] = servers
    return res


def first_mix(servers: dict[str, Any]) -> list[str] | None:
    return next((s["mix"] for s in servers.values()), None)


def cheapest_first(server: dict[str, Any]) -> list[str]:
    """The queries by the server's cold p50, past the cap last."""
    lat = server["latency"]
    return sorted(lat, key=lambda n: lat[n]["cold"]["p50"] if lat[n]["cold"]["p50"] is not None else float("inf"))


@contextlib.contextmanager
def child_server(folder: Path, log_name: str, argv: list[str], env: dict[str, str] | None = None,
                 ) -> Iterator[tuple[str, dict[str, str], int]]:
    """A server run as `python ARGV... PORT` from the project's root, its output appended to the log, stopped
    on leaving: (SPARQL URL, parameters, pid)."""
    port = free_port()
    with (folder / log_name).open("ab") as log:
        proc = subprocess.Popen([sys.executable, *argv, str(port)], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/sparql"
        wait_http(url, proc)
        yield url, {}, proc.pid
    finally:
        stop(proc)


def cmokg_server(folder: Path, store_path: Path, timeout: float,
                 ) -> contextlib.AbstractContextManager[tuple[str, dict[str, str], int]]:
    """`cmokg serve` on the store, read-only, its query timeout at the cap."""
    env = {**os.environ, "CMOKG_READ_ONLY": "1", "CMOKG_MAX_ROWS": "0", "CMOKG_QUERY_TIMEOUT": str(timeout)}
    return child_server(folder, "cmokg-serve.log",
                        ["-m", "graph.cli", "serve", "--store", str(store_path), "--port"], env)


@contextlib.contextmanager
def oxigraph_server(folder: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    """`oxigraph serve` on the folder `oxigraph load` filled, asked for the union default graph."""
    with OxigraphServer(folder / "oxigraph") as oxs:
        yield oxs.query_url, {"union-default-graph": "true"}, oxs.pid


def rdflib_server(folder: Path, nq: Path) -> contextlib.AbstractContextManager[tuple[str, dict[str, str], int]]:
    """rdflib `Dataset(default_union=True)` loaded from the N-Quads, behind rdflib-endpoint on uvicorn."""
    return child_server(folder, "rdflib-serve.log", ["-c", RDFLIB_SERVER, str(nq)])


def run_cmokg(folder: Path, store_path: Path, queries: dict[str, str], timeout: float, mix: list[str] | None,
              ) -> dict[str, Any]:
    with cmokg_server(folder, store_path, timeout) as (url, params, pid):
        return measure(url, params, queries, pid, timeout, warm=True, mix=mix)


def run_oxigraph(folder: Path, triples: int, queries: dict[str, str], timeout: float,
                 res: dict[str, Any], mix: list[str] | None, order: list[str] | None = None) -> dict[str, Any]:
    shutil.rmtree(folder / "oxigraph", ignore_errors=True)
    # Oxigraph's own bulk path, as its documentation advises for large files (the input is valid: --lenient),
    # then the server on that folder; cmokg's build writes through the same bulk loader
    program = oxigraph_program()
    assert program is not None, "the oxigraph program is part of the pinned dependencies"
    nq = folder / "all.nq"
    res["load_oxigraph_bulk_tps"] = triples / timed(lambda: subprocess.run(
        [program, "load", "--location", str(folder / "oxigraph"), "--file", str(nq), "--lenient"],
        check=True, capture_output=True))
    with oxigraph_server(folder) as (url, params, pid):
        return measure(url, params, queries, pid, timeout, warm=False, mix=mix, order=order)


def run_rdflib(folder: Path, nq: Path, queries: dict[str, str], timeout: float, mix: list[str] | None,
               throughput_cap: float | None = None, order: list[str] | None = None) -> dict[str, Any]:
    with rdflib_server(folder, nq) as (url, params, pid):
        return measure(url, params, queries, pid, timeout, warm=False, mix=mix, throughput_cap=throughput_cap,
                       order=order)


def common_mix(servers: dict[str, Any]) -> list[str]:
    """The queries of the throughput mix that every server answered within the cap in its latency stage."""
    mix = first_mix(servers) or []
    return [n for n in mix if all(s["latency"][n]["cold"]["p50"] is not None for s in servers.values())]


def run_common(folder: Path, store_path: Path, nq: Path, queries: dict[str, str], servers: dict[str, Any],
               timeout: float, rdflib_cap: float | None) -> None:
    """Throughput over the common mix, each server started afresh (rdflib-endpoint cannot stop a query, so the
    one it was given is measured idle, not behind what its other stages abandoned), into `servers[name]
    ["common"]`. Run only when the common mix is smaller than the throughput mix."""
    mix = common_mix(servers)
    if not mix or len(mix) == len(first_mix(servers) or []):
        return
    texts = {name: queries[name] for name in mix}
    print(f"   throughput over the {len(mix)} queries every server answered: {', '.join(mix)}", flush=True)
    starts: dict[str, Callable[[], contextlib.AbstractContextManager[tuple[str, dict[str, str], int]]]] = {
        "cmokg": lambda: cmokg_server(folder, store_path, timeout),
        "oxigraph": lambda: oxigraph_server(folder),
        "rdflib": lambda: rdflib_server(folder, nq),
    }
    for name, server in servers.items():
        cap = rdflib_cap if name == "rdflib" and rdflib_cap else timeout
        with starts[name]() as (url, params, _pid):
            server["common"] = {"mix": mix, "throughput_cap_s": cap,
                                "throughput_cold": throughput(url, params, texts, cap, warm=False)}
        print(f"   {name}: {server['common']['throughput_cold']}", flush=True)


def measure(url: str, params: dict[str, str], queries: dict[str, str], pid: int, timeout: float, warm: bool,
            mix: list[str] | None, throughput_cap: float | None = None, order: list[str] | None = None,
            ) -> dict[str, Any]:
    """Latency of every query, then throughput over the `mix`: the same queries for every server, those the
    first server measured answered within the cap (one query past the cap would measure only the cap).

    `throughput_cap` (default: `timeout`) is how long a throughput request may take: a longer one for a peer
    that answers nothing within `timeout` turns its throughput from a bound of 8 / cap into a measurement, or a
    tighter bound. Before the throughput stage the server is given up to that long to finish a query the
    latency stage abandoned (a peer that cannot stop one would otherwise be measured while still busy)."""
    print(f"   measuring {url}", flush=True)
    cap = throughput_cap or timeout
    sampler = RssSampler(pid)
    try:
        out: dict[str, Any] = {"latency": latency(url, params, queries, timeout, warm, order)}
        if mix is None:
            mix = [name for name, v in out["latency"].items() if v["cold"]["p50"] is not None]
        out["mix"] = mix
        mixed = {name: queries[name] for name in mix}
        if any(k["timeouts"] for v in out["latency"].values() for k in v.values()):
            start = time.monotonic()
            out["idle_before_throughput"] = wait_idle(Client(url, params, cap), cap)
            out["idle_wait_s"] = time.monotonic() - start
            print(f"   idle after {out['idle_wait_s']:.0f} s: {out['idle_before_throughput']}", flush=True)
        out["throughput_cap_s"] = cap
        out["throughput_cold"] = throughput(url, params, mixed, cap, warm=False)
        print(f"   throughput cold: {out['throughput_cold']}", flush=True)
        if warm:
            out["throughput_warm"] = throughput(url, params, mixed, cap, warm=True)
    finally:
        sampler.stop()
    # the larger of: the live sum sampled during the run (worker processes replaced after a timeout take
    # their peaks with them) and the peaks of the processes alive at the end
    out["peak_rss_mib"] = max(sampler.peak, tree_rss(pid, "VmHWM")) / 1024
    return out


class RssSampler:
    """The largest VmRSS summed over a process tree, sampled twice a second in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.5):
            self.peak = max(self.peak, tree_rss(self.pid))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the report -----------------------------------------------------------------------------------------


def ms(value: float | None, cap: float) -> str:
    return f"> {cap:g} s" if value is None else f"{value * 1000:.1f} ms"


def median_p50(server: dict[str, Any], kind: str) -> float | None:
    """The median over queries of their p50 (a query past the cap counts as +inf)."""
    values = [v[kind]["p50"] for v in server["latency"].values() if kind in v]
    if not values:
        return None
    m = statistics.median(x if x is not None else float("inf") for x in values)
    return None if m == float("inf") else m


def _rate(x: float | None, n: int = 0) -> str:
    return "–" if x is None else f"{x:,.{n}f}"


def import_table(results: list[dict[str, Any]]) -> str:
    w = io.StringIO()
    w.write("| CMOCs | triples | build (validate+write) | the write: bulk loads beside the validation (its last "
            "part after it) | raw load: embedded in "
            "one transaction / `oxigraph load` / rdflib (t/s) | validate workbooks | validate 50 CMOCs |\n"
            "|---|---|---|---|---|---|---|\n")
    for r in results:
        build_cell = "reused" if r.get("reused") else (
            f"{r['build_tps']:,.0f} t/s ({r['build_s']:.1f} s)" if "build_tps" in r else "–")
        write_cell = (f"{r['build_write_tps']:,.0f} t/s ({r['build_write_s']:.1f} s; "
                      f"{r['build_tail_s']:.1f} s after)" if "build_tail_s" in r else "–")
        rd = _rate(r.get("load_rdflib_tps")) if "load_rdflib_skipped" not in r else "skipped"
        val = (f"{r['validate_all_s']:.1f} s ({r['validate_workbooks']} of {r['workbooks']})"
               if "validate_all_s" in r else "–")
        v50 = f"{r['validate_50_s']:.2f} s" if "validate_50_s" in r else "–"
        w.write(f"| {r['cmocs']} | {r['triples']} | {build_cell} | {write_cell} | "
                f"{_rate(r.get('load_embedded_tps'))} / "
                f"{_rate(r.get('load_oxigraph_bulk_tps'))} / {rd} | {val} | {v50} |\n")
    return w.getvalue()


def server_table(results: list[dict[str, Any]], cap: float) -> str:
    w = io.StringIO()
    w.write("| CMOCs | server | median catalog p50, cold | median p50, warm | worst cold p50 (query) | "
            "8-client q/s cold | 8-client q/s warm | errors / timeouts | peak RSS |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    for r in results:
        for name, s in r["servers"].items():
            lat = s["latency"]
            worst = max(lat.items(), key=lambda kv: kv[1]["cold"]["p50"] if kv[1]["cold"]["p50"] is not None
                        else float("inf"))
            errors = sum(v[k]["errors"] for v in lat.values() for k in v) + s["throughput_cold"]["errors"]
            timeouts = sum(v[k]["timeouts"] for v in lat.values() for k in v) + s["throughput_cold"]["timeouts"]
            warm_qps = f"{s['throughput_warm']['qps']:.1f}" if "throughput_warm" in s else "(no cache)"
            warm_p50 = ms(median_p50(s, "warm"), cap) if "throughput_warm" in s else "(no cache)"
            w.write(f"| {r['cmocs']} | {name} | {ms(median_p50(s, 'cold'), cap)} | {warm_p50} | "
                    f"{ms(worst[1]['cold']['p50'], cap)} ({worst[0]}) | {s['throughput_cold']['qps']:.2f} | "
                    f"{warm_qps} | {errors} / {timeouts} | {s['peak_rss_mib']:.0f} MiB |\n")
        if "rdflib_skipped" in r:
            w.write(f"| {r['cmocs']} | rdflib | skipped: {r['rdflib_skipped']} | | | | | | |\n")
    return w.getvalue()


def _ratio(a: float | None, b: float | None, fmt: str = ".2f") -> str:
    if a is None or b is None or b == 0:
        return "n/a (past the cap)"
    return f"{a / b:{fmt}}×"


def ratios(results: list[dict[str, Any]], cap: float) -> str:
    w = io.StringIO()
    for r in results:
        s = r["servers"]
        c, o, rd = s.get("cmokg"), s.get("oxigraph"), s.get("rdflib")
        parts = []
        if c:
            c_cold, c_warm = c["throughput_cold"]["qps"], c["throughput_warm"]["qps"]
            c_p50, c_p50w = median_p50(c, "cold"), median_p50(c, "warm")
        if c and rd:
            rd_qps, bound = qps_bound(rd["throughput_cold"], cap)
            at_least = "≥ " if bound else ""  # rdflib's q/s is an upper bound: the ratio a lower one
            parts.append(f"throughput cmokg / rdflib-endpoint: cold {at_least}{_ratio(c_cold, rd_qps, '.1f')}, "
                         f"warm {at_least}{_ratio(c_warm, rd_qps, '.1f')} (target ≥ 20×; rdflib-endpoint "
                         f"{rd['throughput_cold']['qps']:.4f} q/s, {rd['throughput_cold']['timeouts']} requests past "
                         f"its {rd.get('throughput_cap_s', cap):g} s cap in {rd['throughput_cold']['seconds']:.0f} s)")
        if c and o:
            o_qps, o_p50 = o["throughput_cold"]["qps"], median_p50(o, "cold")
            parts.append(f"throughput cmokg / Oxigraph server: cold {_ratio(c_cold, o_qps)}, "
                         f"warm {_ratio(c_warm, o_qps)}")
            parts.append(f"median catalog p50 cmokg / Oxigraph server: cold {_ratio(c_p50, o_p50)}, "
                         f"warm {_ratio(c_p50w, o_p50)} (target ≤ 1.5×)")
        if c and rd:
            parts.append(f"median catalog p50 rdflib-endpoint / cmokg (cold): "
                         f"{_ratio(median_p50(rd, 'cold'), c_p50, '.1f')}")
        if c and "common" in c:
            parts.append(common_ratios(s, cap))
        if parts:
            w.write(f"- {r['cmocs']} CMOCs: " + "; ".join(parts) + ".\n")
    return w.getvalue()


def common_ratios(servers: dict[str, Any], cap: float) -> str:
    """Throughput over the common mix (every server answered each of its queries within the cap), every
    server started afresh: a rate for rdflib-endpoint where the full mix gives only a bound."""
    c = servers["cmokg"]["common"]
    c_qps = c["throughput_cold"]["qps"]
    out = [f"over the {len(c['mix'])} queries every server answered within the cap ({', '.join(c['mix'])}), "
           f"each server started afresh: cmokg {c_qps:.2f} q/s cold"]
    for name, label in (("oxigraph", "Oxigraph server"), ("rdflib", "rdflib-endpoint")):
        if "common" not in servers.get(name, {}):
            continue
        t = servers[name]["common"]["throughput_cold"]
        qps, bound = qps_bound(t, servers[name]["common"]["throughput_cap_s"])
        out.append(f"cmokg / {label} {'≥ ' if bound else ''}{_ratio(c_qps, qps, '.1f')} ({t['qps']:.3f} q/s, "
                   f"{t['timeouts']} requests past its {servers[name]['common']['throughput_cap_s']:g} s cap)")
    return "; ".join(out)


def per_query(results: list[dict[str, Any]], cap: float) -> str:
    w = io.StringIO()
    for r in results:
        s = r["servers"]
        cols = [(name, kind) for name in SERVERS if name in s
                for kind in (("cold", "warm") if "throughput_warm" in s[name] else ("cold",))]
        w.write(f"\n{r['cmocs']} CMOCs, p50 / p95:\n\n| query | " + " | ".join(f"{n} {k}" for n, k in cols)
                + " |\n|---|" + "---|" * len(cols) + "\n")
        for q in next(iter(s.values()))["latency"] if s else []:
            cells = []
            for name, kind in cols:
                v = s[name]["latency"].get(q, {}).get(kind)
                cells.append("–" if v is None else "not measured (busy)" if v.get("busy")
                             else f"{ms(v['p50'], cap)} / {ms(v['p95'], cap)}")
            w.write(f"| {q} | " + " | ".join(cells) + " |\n")
    return w.getvalue()


def mix_note(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        mix = first_mix(r["servers"])
        if mix is not None:
            left = sorted(set(next(iter(r["servers"].values()))["latency"]) - set(mix))
            lines.append(f"- {r['cmocs']} CMOCs: throughput over {len(mix)} catalog queries"
                         + (f" (left out, past the cap on the first server: {', '.join(left)})" if left else "")
                         + ".\n")
    return "".join(lines)


def report(results: list[dict[str, Any]], cap: float) -> str:
    return (import_table(results) + "\n" + server_table(results, cap) + "\n" + mix_note(results)
            + "\nRatios (same run):\n\n" + ratios(results, cap) + per_query(results, cap))


def main() -> None:
    parser = argparse.ArgumentParser(description="cmokg benchmark against rdflib-endpoint and the Oxigraph server")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", type=Path, default=ROOT / "var/bench")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse OUT/SIZE/store (and all.nq) built by an earlier run: no generation, no build")
    parser.add_argument("--skip", nargs="*", default=[], choices=STAGES, help="stages not to run")
    parser.add_argument("--query-timeout", type=float, default=60.0,
                        help="seconds a request may take before it is abandoned and reported as '> N s'")
    parser.add_argument("--rdflib-cap", type=float, default=None,
                        help="seconds an rdflib-endpoint request may take in the throughput stage (default: "
                             "--query-timeout); its latency stage keeps --query-timeout")
    parser.add_argument("--validate-sample", type=int, default=0,
                        help="validate only this many workbooks (seeded sample) against the store; 0: all")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        print(f"== {size} CMOCs", flush=True)
        results.append(bench_size(size, args.out, args))
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {mem_available_kib() / 1024 ** 2:.1f} GiB free, "
          f"Python {platform.python_version()}")
    print(report(results, args.query_timeout))


if __name__ == "__main__":
    main()
