"""Nothing is lost under faults: killed imports, readers during an import, backup and restore, a load test.

Bounded in time and loopback only. The store's promise under test: a batch lands whole or not at all, the
store opens cleanly after a SIGKILL, and readers see the graph before or after a batch, never a part of it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyoxigraph as ox
import pytest
from servers import OxigraphServer, free_port, require, tree_rss

from graph import store as store_module
from graph.backend import Backend, StoreError
from graph.namespaces import BATCH_PREFIX
from graph.remote import RemoteStore
from graph.store import EvidenceStore, swap_in

ROOT = Path(__file__).resolve().parent.parent
BATCH = BATCH_PREFIX + "fault-test"
BIG = 20_000  # triples in the batch that is killed mid-write and read during its import


def batch_nt(n: int, tag: str) -> bytes:
    return "".join(f'<{BATCH_PREFIX}fault/s{i}> <https://w3id.org/cmokg/ontology#label> "{tag} {i}" .\n'
                   for i in range(n)).encode()


def graph_count(store: Backend, graph: str) -> int:
    return store.graph_quad_count(graph)


def kill_after(script: str, args: list[str], delay: float) -> None:
    """Run `python -c script args` from the project root, wait for its "ready" line, then SIGKILL it `delay`
    seconds later (or find it done) and reap it."""
    child = subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)


# -- SIGKILL during an import ------------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from graph.store import EvidenceStore
    store = EvidenceStore(Path(sys.argv[1]))
    data = Path(sys.argv[2]).read_bytes()
    print("ready", flush=True)
    if sys.argv[4] == "write_batch":  # the importer's path (graph.pipeline)
        store.write_batch(sys.argv[3], data)
    else:
        store.replace_graph(sys.argv[3], data)
    store.flush()
    print("done", flush=True)
""")


def test_sigkill_during_import_leaves_batch_whole_or_absent(seed_store_path: Path, tmp_path: Path) -> None:
    """20 trials: a process writing a batch (new, or replacing an older version; through replace_graph or the
    importer's write_batch) is killed with SIGKILL at a random point; the store then opens cleanly and holds
    the old batch or the new one, entirely."""
    rng = random.Random(6)
    new = tmp_path / "new.nt"
    new.write_bytes(batch_nt(BIG, "new"))
    base = tmp_path / "base"
    shutil.copytree(seed_store_path, base)
    seed_quads = EvidenceStore(base, read_only=True).quad_count()
    # how long a complete write takes here, to spread the kills over it
    timing = tmp_path / "timing"
    shutil.copytree(base, timing)
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", CHILD, str(timing), str(new), BATCH, "replace_graph"], check=True,
                   cwd=ROOT, timeout=120, capture_output=True)
    full = time.monotonic() - start
    outcomes = {"absent": 0, "old": 0, "new": 0}
    for trial in range(20):
        store_dir = tmp_path / f"t{trial}"
        shutil.copytree(base, store_dir)
        replacing = trial % 2 == 1
        if replacing:  # an older version of the batch is in place: the kill hits a replacement
            s = EvidenceStore(store_dir)
            s.replace_graph(BATCH, batch_nt(BIG // 2, "old"))
            s.flush()
            del s
        method = "write_batch" if trial % 4 >= 2 else "replace_graph"
        # 'ready' comes after start-up: the write takes the rest
        kill_after(CHILD, [str(store_dir), str(new), BATCH, method], rng.uniform(0, full * 0.6))
        store = EvidenceStore(store_dir)  # opens cleanly (not read-only: it must recover the log)
        n = graph_count(store, BATCH)
        if n == BIG:
            outcomes["new"] += 1
            assert {str(q.object.value).split()[0] for q in store.ox.quads_for_pattern(
                None, None, None, ox.NamedNode(BATCH))} == {"new"}  # type: ignore[union-attr]
        elif replacing:
            assert n == BIG // 2, f"trial {trial}: {n} triples of the batch survived a kill mid-replacement"
            outcomes["old"] += 1
        else:
            assert n == 0, f"trial {trial}: {n} of {BIG} triples survived a kill mid-import"
            outcomes["absent"] += 1
        assert store.quad_count() == seed_quads + n
        del store
        shutil.rmtree(store_dir)
    assert sum(outcomes.values()) == 20


# -- readers during an import ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oxigraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphServer]:
    require("oxigraph")
    with OxigraphServer(tmp_path_factory.mktemp("oxigraph-faults") / "db") as server:
        yield server


def _readers_during(store: Backend, write: Callable[[], None], allowed: set[int], readers: int = 8) -> set[int]:
    seen: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(graph_count(store, BATCH))
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=read) for _ in range(readers)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    try:
        write()
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:3]
    assert seen <= allowed, f"readers saw part of a batch: {sorted(seen - allowed)}"
    return seen


def test_readers_see_before_or_after_embedded(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "store")
    store.replace_graph(BATCH, batch_nt(BIG // 2, "old"))
    data = batch_nt(BIG, "new")
    seen = _readers_during(store, lambda: store.replace_graph(BATCH, data), {BIG // 2, BIG})
    assert BIG in seen and graph_count(store, BATCH) == BIG


def test_readers_see_before_or_after_oxigraph_server(oxigraph_server: OxigraphServer) -> None:
    """On a remote store a graph larger than a chunk is staged and moved into place in one request."""
    store = RemoteStore(oxigraph_server.query_url, chunk=10_000)
    store.clear()
    store.replace_graph(BATCH, batch_nt(BIG // 4, "old"))
    data = batch_nt(BIG, "new")
    seen = _readers_during(store, lambda: store.replace_graph(BATCH, data), {BIG // 4, BIG})
    assert BIG in seen and graph_count(store, BATCH) == BIG
    assert store.named_graphs() == [BATCH]  # no staging graph left behind
    store.clear()


# -- backup and restore --------------------------------------------------------------------------------


def test_backup_restore_cli_round_trip(seed_store_path: Path, seed_evidence_store: EvidenceStore,
                                       tmp_path: Path) -> None:
    cmokg = str(Path(sys.executable).parent / "cmokg")
    subprocess.run([cmokg, "backup", str(tmp_path / "bk"), "--store", str(seed_store_path)], check=True,
                   timeout=120, capture_output=True)
    target = tmp_path / "restored"
    s = EvidenceStore(target)
    s.replace_graph(BATCH, batch_nt(10, "stale"))  # restore replaces whatever was there
    del s
    subprocess.run([cmokg, "restore", str(tmp_path / "bk"), "--store", str(target)], check=True, timeout=120,
                   capture_output=True)
    restored = ox.Dataset(EvidenceStore(target, read_only=True).quads())
    original = ox.Dataset(seed_evidence_store.quads())
    for ds in (restored, original):  # blank nodes are relabelled on the way: compare canonical forms
        ds.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    assert set(restored) == set(original)


RESTORE_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from graph.store import EvidenceStore
    store = EvidenceStore(Path(sys.argv[1]))
    print("ready", flush=True)
    store.restore(Path(sys.argv[2]))
    print("done", flush=True)
""")


def _quads(path: Path) -> set[ox.Quad]:
    store = EvidenceStore(path)  # not read-only: it must recover the log after a kill
    try:
        return set(store.ox)
    finally:
        del store


def test_sigkill_during_restore_leaves_the_old_store_or_the_new(tmp_path: Path) -> None:
    """12 trials: `restore` into an on-disk store is killed with SIGKILL at a random point; the store then
    opens and holds exactly the quads it held before or exactly the backup's, never a mix or nothing."""
    rng = random.Random(11)
    source = EvidenceStore(tmp_path / "source")
    source.replace_graph(BATCH, batch_nt(BIG * 5, "new"))
    source.backup(tmp_path / "bk")
    new = set(source.ox)
    del source
    base = tmp_path / "base"
    old_store = EvidenceStore(base)
    old_store.replace_graph(BATCH, batch_nt(BIG // 2, "old"))
    old = set(old_store.ox)
    del old_store
    timing = tmp_path / "timing"
    shutil.copytree(base, timing)
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", RESTORE_CHILD, str(timing), str(tmp_path / "bk")], check=True, cwd=ROOT,
                   timeout=120, capture_output=True)
    full = time.monotonic() - start
    assert _quads(timing) == new
    outcomes = {"old": 0, "new": 0}
    for trial in range(12):
        store_dir = tmp_path / f"r{trial}" / "store"
        shutil.copytree(base, store_dir)
        kill_after(RESTORE_CHILD, [str(store_dir), str(tmp_path / "bk")], rng.uniform(0, full * 0.8))
        found = _quads(store_dir)
        assert found in (old, new), f"trial {trial}: {len(found)} quads, neither the old store nor the backup"
        outcomes["new" if found == new else "old"] += 1
        shutil.rmtree(store_dir.parent)
    assert sum(outcomes.values()) == 12


BUILD_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from graph.pipeline import _Writer, build
    _Writer.FIRST_CHUNK_BYTES = _Writer.CHUNK_BYTES = 200_000  # many chunks, so that kills land between them
    print("ready", flush=True)
    assert all(r.imported for r in build(Path(sys.argv[1]), Path(sys.argv[2])))
    print("done", flush=True)
""")
PROV_TIMES = {ox.NamedNode(f"http://www.w3.org/ns/prov#{t}") for t in ("generatedAtTime", "startedAtTime",
                                                                       "endedAtTime")}


def _signature(quads: set[ox.Quad]) -> tuple[dict[str, int], set[ox.Quad]]:
    """What two builds of the same data share: the quads per graph, and the quads without blank nodes (the
    ontology's axioms, labelled anew by each build) or times."""
    counts: dict[str, int] = {}
    for q in quads:
        counts[str(q.graph_name)] = counts.get(str(q.graph_name), 0) + 1
    return counts, {q for q in quads if q.predicate not in PROV_TIMES
                    and not isinstance(q.subject, ox.BlankNode) and not isinstance(q.object, ox.BlankNode)}


def test_sigkill_during_build_leaves_the_old_store_or_the_new(seed_store_path: Path, tmp_path: Path) -> None:
    """10 trials: `cmokg build` of 6 synthetic workbooks (600 CMOCs), its writer thread bulk-loading small chunks
    while the next workbooks are validated, is killed with SIGKILL at a random point. The store then opens and
    holds the graph it held before (the seed graph) or the whole new graph; a build after the last kill
    succeeds in spite of what the killed one left beside the store."""
    sys.path.insert(0, str(ROOT / "bench"))
    from generate import generate

    rng = random.Random(5)
    data = tmp_path / "data"
    generate(data, 600)
    seed = ox.Store.read_only(str(seed_store_path))
    old = set(seed)
    del seed
    timing = tmp_path / "timing" / "store"
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", BUILD_CHILD, str(timing), str(data)], check=True, cwd=ROOT,
                   timeout=300, capture_output=True)
    full = time.monotonic() - start
    new = _signature(_quads(timing))
    assert len(new[0]) == 2 + 6  # the ontology's and the vocabularies' graphs, and a batch per workbook
    outcomes = {"old": 0, "new": 0}
    for trial in range(10):
        store_dir = tmp_path / f"b{trial}" / "store"
        shutil.copytree(seed_store_path, store_dir)
        kill_after(BUILD_CHILD, [str(store_dir), str(data)], rng.uniform(0, full * 0.9))
        found = _quads(store_dir)
        if found != old:
            assert _signature(found) == new, f"trial {trial}: {len(found)} quads, neither the old graph nor the new"
        outcomes["old" if found == old else "new"] += 1
        if trial < 9:
            shutil.rmtree(store_dir.parent)
    assert sum(outcomes.values()) == 10, outcomes
    subprocess.run([sys.executable, "-c", BUILD_CHILD, str(store_dir), str(data)], check=True, cwd=ROOT,
                   timeout=300, capture_output=True)
    assert _signature(_quads(store_dir)) == new
    assert sorted(p.name for p in store_dir.parent.iterdir()) == ["store"]


def test_restore_refuses_a_backup_its_manifest_does_not_count(tmp_path: Path) -> None:
    """A backup whose quads do not number what its manifest says is refused: the store keeps its quads and no
    private folder is left beside it."""
    source = EvidenceStore(tmp_path / "source")
    source.replace_graph(BATCH, batch_nt(10, "new"))
    source.backup(tmp_path / "bk")
    manifest_path = tmp_path / "bk" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["quads"] += 1
    manifest_path.write_text(json.dumps(manifest))
    target = EvidenceStore(tmp_path / "var" / "store")
    target.replace_graph(BATCH, batch_nt(3, "old"))
    before = set(target.ox)
    with pytest.raises(StoreError, match="manifest says 11"):
        target.restore(tmp_path / "bk")
    assert set(target.ox) == before
    assert sorted(p.name for p in (tmp_path / "var").iterdir()) == ["store"]


@pytest.mark.parametrize("manifest", ["{not json", "[1, 2]"], ids=["not-json", "not-an-object"])
def test_restore_refuses_an_unreadable_manifest(tmp_path: Path, manifest: str) -> None:
    """A manifest that is not a JSON object is a StoreError naming the file, and the store keeps its quads."""
    source = EvidenceStore(tmp_path / "source")
    source.replace_graph(BATCH, batch_nt(4, "new"))
    source.backup(tmp_path / "bk")
    (tmp_path / "bk" / "manifest.json").write_text(manifest)
    target = EvidenceStore(tmp_path / "store")
    target.replace_graph(BATCH, batch_nt(3, "old"))
    before = set(target.ox)
    with pytest.raises(StoreError, match=r"manifest\.json"):
        target.restore(tmp_path / "bk")
    assert set(target.ox) == before


def test_restore_into_memory(tmp_path: Path) -> None:
    """An in-memory store restores as every backend does (clear, then one transaction)."""
    source = EvidenceStore(tmp_path / "source")
    source.replace_graph(BATCH, batch_nt(10, "new"))
    source.backup(tmp_path / "bk")
    memory = EvidenceStore(None)
    memory.replace_graph(BATCH, batch_nt(3, "old"))
    assert memory.restore(tmp_path / "bk") == 10
    assert set(memory.ox) == set(source.ox)


@pytest.mark.parametrize("exchange", [True, False], ids=["exchanged", "moved-aside"])
def test_swap_in_replaces_the_store_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool) -> None:
    """`swap_in` leaves the new folder at the store's path and nothing else, whether the system exchanges the
    two folders in one step or the old one is moved aside first."""
    if not exchange:
        monkeypatch.setattr(store_module, "_exchange", lambda a, b: False)
    old, new = tmp_path / "store", tmp_path / "store.new"
    for folder, tag in ((old, "old"), (new, "new")):
        s = EvidenceStore(folder)
        s.replace_graph(BATCH, batch_nt(5, tag))
        del s
    expected = _quads(new)
    swap_in(new, old)
    assert _quads(old) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    fresh = tmp_path / "fresh"
    EvidenceStore(fresh).replace_graph(BATCH, batch_nt(2, "fresh"))
    swap_in(fresh, tmp_path / "absent")  # nothing at the store's path yet: a plain rename
    assert len(_quads(tmp_path / "absent")) == 2


# -- a bounded load test against the WSGI server ---------------------------------------------------------------


LOAD_REQUESTS = int(os.environ.get("CMOKG_LOAD_REQUESTS", "10000"))


@pytest.mark.slow
def test_load_wsgi_server(seed_store_path: Path, tmp_path: Path) -> None:
    """10,000 catalog-style queries over 8 keep-alive connections against `cmokg serve`: zero errors, and
    the server's memory after the run is back near its level after warm-up."""
    import http.client

    store = tmp_path / "store"
    shutil.copytree(seed_store_path, store)
    port = free_port()
    cmokg = str(Path(sys.executable).parent / "cmokg")
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([cmokg, "serve", "--store", str(store), "--port", str(port)], stdout=log,
                              stderr=subprocess.STDOUT, env={**os.environ, "CMOKG_READ_ONLY": "1"})
    log.close()
    queries = [
        "SELECT (COUNT(*) AS ?n) WHERE { ?c a <https://w3id.org/cmokg/ontology#CMOConfiguration> }",
        "SELECT ?s ?l WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?l } LIMIT 50",
        "ASK { ?s ?p ?o }",
    ]
    paths = [f"/sparql?query={urllib.parse.quote(q)}" for q in queries]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{paths[0]}", timeout=5) as r:
                    assert r.status == 200
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)

        def client(n: int, seed: int) -> list[int]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            bad = []
            rng = random.Random(seed)
            for _ in range(n):
                conn.request("GET", rng.choice(paths), headers={"Accept": "application/sparql-results+json"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    bad.append(response.status)
            conn.close()
            return bad

        client(200, 0)  # warm-up
        baseline = tree_rss(server.pid)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(client, [LOAD_REQUESTS // 8] * 8, range(8)))
        errors = [s for r in results for s in r]
        assert errors == [], f"{len(errors)} errors: {errors[:10]}"
        time.sleep(1)
        after = tree_rss(server.pid)
        assert after <= baseline * 1.25 + 20 * 1024, f"server memory grew from {baseline} KiB to {after} KiB"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

