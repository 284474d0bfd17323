"""The benchmark (not a test): cmokg against its peers, per evidence-base size, in one run.

For each size (CMOCs) it generates a synthetic evidence base (bench/generate.py), builds it with `cmokg
build`, and measures side by side, on the same data and the same queries:

- import throughput in triples/s: `cmokg build` (validation + write), and the raw write of the same quads
  into the embedded store, into the Oxigraph server (Graph Store Protocol) and into rdflib (Dataset.parse);
- full validation (every workbook against the built store) and validation of a 50-CMOC workbook against the
  store (which must stay flat as the store grows);
- p50/p95 latency of every catalog query over HTTP (its example parameters bound as VALUES, the same text
  for every server), and throughput with 8 concurrent clients;
- peak RSS of each server process tree.

Servers: `cmokg serve` (gunicorn + the embedded store), `oxigraph serve`, and rdflib in memory behind
rdflib-endpoint (uvicorn). Run:

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/run.py --sizes 1000 10000 --out var/bench
"""

from __future__ import annotations

import argparse
import http.client
import io
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate, write_workbook  # noqa: E402
from servers import OxigraphServer, free_port, tree_rss  # noqa: E402

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

REPS = 15
CONCURRENT_SECONDS = 6.0
CLIENTS = 8


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    parsed = urllib.parse.urlsplit(url)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
            conn.request("GET", f"{parsed.path}?query={urllib.parse.quote('ASK {}')}",
                         headers={"Accept": "application/sparql-results+json"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


class Client:
    """One keep-alive HTTP connection sending SPARQL queries by GET."""

    def __init__(self, url: str, params: dict[str, str]) -> None:
        parts = urllib.parse.urlsplit(url)
        self.path, self.params = parts.path, params
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)

    def ask(self, sparql: str) -> tuple[float, int]:
        qs = urllib.parse.urlencode({"query": sparql, **self.params})
        start = time.perf_counter()
        self.conn.request("GET", f"{self.path}?{qs}", headers={"Accept": "application/sparql-results+json"})
        response = self.conn.getresponse()
        response.read()
        return time.perf_counter() - start, response.status


def latency(url: str, params: dict[str, str], queries: dict[str, str]) -> dict[str, tuple[float, float, int]]:
    client = Client(url, params)
    out = {}
    for name, text in queries.items():
        warm, _ = client.ask(text)  # warm-up
        times, errors = [], 0
        for _ in range(REPS if warm < 1 else 5):  # a slow peer: fewer repetitions (p95 = the worst of 5)
            t, status = client.ask(text)
            times.append(t)
            errors += status != 200
        times.sort()
        out[name] = (statistics.median(times), times[int(0.95 * (len(times) - 1))], errors)
    return out


def throughput(url: str, params: dict[str, str], queries: dict[str, str]) -> tuple[float, int]:
    texts = list(queries.values())
    done, errors = [0] * CLIENTS, [0] * CLIENTS
    stop = time.monotonic() + CONCURRENT_SECONDS

    def run(i: int) -> None:
        client = Client(url, params)
        k = i
        while time.monotonic() < stop:
            _, status = client.ask(texts[k % len(texts)])
            done[i] += 1
            errors[i] += status != 200
            k += 1

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - start), sum(errors)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_size(cmocs: int, out: Path) -> dict[str, object]:
    folder = out / f"{cmocs}"
    shutil.rmtree(folder, ignore_errors=True)
    generate(folder, cmocs)
    res: dict[str, object] = {"cmocs": cmocs}
    store_path = folder / "store"
    build_s = timed(lambda: build(store_path, folder, reviewer="bench"))
    store = EvidenceStore(store_path)
    triples = store.quad_count()
    res.update(triples=triples, build_s=build_s, build_tps=triples / build_s)
    nq = folder / "all.nq"
    with nq.open("wb") as fh:
        store.dump(fh)
    data = nq.read_bytes()
    res["load_embedded_tps"] = triples / timed(lambda: EvidenceStore(folder / "raw").add_quads(data))
    import rdflib

    res["load_rdflib_tps"] = triples / timed(lambda: rdflib.Dataset().parse(data=data, format="nquads"))
    # validation
    wbs = workbooks_in(folder)
    small = folder / "small"
    write_workbook(small, 99999, 50, random.Random(3), prefix="val")
    res.update(validation(store, wbs, small))
    del store
    # servers
    catalog = load_catalog()
    queries = {}
    for name, q in catalog.items():
        subs = bind(q, q.example_values)
        queries[name] = inject_values(q.text, subs) if subs else q.text
    servers: dict[str, dict[str, object]] = {}
    # 1. cmokg serve
    port = free_port()
    env = {**os.environ, "CMOKG_READ_ONLY": "1", "CMOKG_MAX_ROWS": "0"}
    log = (folder / "cmokg-serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "graph.cli", "serve", "--store", str(store_path), "--port",
                             str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        url = f"http://127.0.0.1:{port}/sparql"
        wait_http(url, proc)
        servers["cmokg"] = measure(url, {}, queries, proc.pid)
    finally:
        stop(proc)
    # 2. the Oxigraph server, loaded through its Graph Store Protocol endpoint
    with OxigraphServer(folder / "oxigraph") as oxs:
        conn = http.client.HTTPConnection("127.0.0.1", oxs.port, timeout=600)
        start = time.perf_counter()
        conn.request("POST", "/store", body=data, headers={"Content-Type": "application/n-quads"})
        assert conn.getresponse().status in (200, 201, 204)
        res["load_oxigraph_server_tps"] = triples / (time.perf_counter() - start)
        servers["oxigraph"] = measure(oxs.query_url, {"union-default-graph": "true"}, queries, oxs.pid)
    # 3. rdflib in memory behind rdflib-endpoint
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", RDFLIB_SERVER, str(nq), str(port)], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}/sparql"
        wait_http(url, proc)
        servers["rdflib"] = measure(url, {}, queries, proc.pid)
    finally:
        stop(proc)
    res["servers"] = servers
    shutil.rmtree(folder / "raw", ignore_errors=True)
    return res


def validation(store: EvidenceStore, workbooks: list[list[Path]], small: Path) -> dict[str, float]:
    start = time.perf_counter()
    for paths in workbooks:
        validate_workbook(paths, store, "bench")
    full = time.perf_counter() - start
    times = []
    for _ in range(3):
        start = time.perf_counter()
        validate_workbook([small], store, "bench")
        times.append(time.perf_counter() - start)
    return {"validate_all_s": full, "validate_50_s": statistics.median(times)}


def measure(url: str, params: dict[str, str], queries: dict[str, str], pid: int) -> dict[str, object]:
    lat = latency(url, params, queries)
    qps, errors = throughput(url, params, queries)
    return {"latency": lat, "qps": qps, "errors": errors + sum(e for _, _, e in lat.values()),
            "peak_rss_mib": tree_rss(pid, "VmHWM") / 1024}


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def report(results: list[dict[str, object]]) -> str:
    lines = io.StringIO()
    w = lines.write
    w("| CMOCs | triples | build (validate+write) | raw load: embedded / Oxigraph server / rdflib | "
      "validate all | validate 50 CMOCs |\n|---|---|---|---|---|---|\n")
    for r in results:
        w(f"| {r['cmocs']} | {r['triples']} | {r['build_tps']:,.0f} t/s ({r['build_s']:.1f} s) | "
          f"{r['load_embedded_tps']:,.0f} / {r['load_oxigraph_server_tps']:,.0f} / {r['load_rdflib_tps']:,.0f} t/s | "
          f"{r['validate_all_s']:.1f} s | {r['validate_50_s']:.2f} s |\n")
    w("\n| CMOCs | server | p50 of catalog p50s | worst p50 (query) | worst p95 (query) | 8-client q/s | "
      "errors | peak RSS |\n|---|---|---|---|---|---|---|---|\n")
    for r in results:
        servers = r["servers"]
        assert isinstance(servers, dict)
        for name, s in servers.items():
            lat = s["latency"]
            p50s = sorted((v[0], q) for q, v in lat.items())
            p95s = sorted((v[1], q) for q, v in lat.items())
            w(f"| {r['cmocs']} | {name} | {statistics.median(v for v, _ in p50s) * 1000:.1f} ms | "
              f"{p50s[-1][0] * 1000:.1f} ms ({p50s[-1][1]}) | {p95s[-1][0] * 1000:.1f} ms ({p95s[-1][1]}) | "
              f"{s['qps']:.1f} | {s['errors']} | {s['peak_rss_mib']:.0f} MiB |\n")
    w("\nRatios (cmokg vs peers, same run): ")
    for r in results:
        s = r["servers"]
        assert isinstance(s, dict)
        c, o, rd = s["cmokg"], s["oxigraph"], s["rdflib"]
        med = {k: statistics.median(v[0] for v in x["latency"].values()) for k, x in s.items()}
        w(f"\n- {r['cmocs']} CMOCs: throughput cmokg/rdflib-endpoint = {c['qps'] / rd['qps']:.1f}x, "
          f"cmokg/Oxigraph server = {c['qps'] / o['qps']:.2f}x; median catalog p50 cmokg/Oxigraph server = "
          f"{med['cmokg'] / med['oxigraph']:.2f}x, rdflib-endpoint/cmokg = {med['rdflib'] / med['cmokg']:.1f}x")
    w("\n\nPer-query p50 / p95 (ms), cmokg | oxigraph | rdflib:\n")
    for r in results:
        s = r["servers"]
        assert isinstance(s, dict)
        w(f"\n{r['cmocs']} CMOCs:\n\n| query | cmokg | oxigraph | rdflib |\n|---|---|---|---|\n")
        for q in s["cmokg"]["latency"]:
            cells = [f"{s[k]['latency'][q][0] * 1000:.1f} / {s[k]['latency'][q][1] * 1000:.1f}"
                     for k in ("cmokg", "oxigraph", "rdflib")]
            w(f"| {q} | " + " | ".join(cells) + " |\n")
    return lines.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description="cmokg benchmark against rdflib-endpoint and the Oxigraph server")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", type=Path, default=ROOT / "var/bench")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        print(f"== {size} CMOCs", flush=True)
        results.append(bench_size(size, args.out))
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(report(results))


if __name__ == "__main__":
    main()
