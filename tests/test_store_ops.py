"""Store operations under operator mistakes and faults: restore, push, backup, build on the wrong folder or
a store in use, a server going away. Real servers on loopback; a fault is a proxy that drops connections."""

from __future__ import annotations

import fcntl
import json
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from servers import DroppingProxy, OxigraphServer, require

from graph.backend import StoreError
from graph.namespaces import BATCH_PREFIX
from graph.pipeline import build
from graph.remote import STAGING_PREFIX, RemoteStore
from graph.store import EvidenceStore

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests/fixtures/workbooks"
B1, B2, B3 = BATCH_PREFIX + "b1", BATCH_PREFIX + "b2", BATCH_PREFIX + "b3"
OTHER = "http://example.org/other-data"


def nt(n: int, tag: str) -> bytes:
    return "".join(f'<{BATCH_PREFIX}s{i}> <https://w3id.org/cmokg/ontology#label> "{tag} {i}" .\n'
                   for i in range(n)).encode()


def cmokg(*args: str, limit_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([str(Path(sys.executable).parent / "cmokg"), *args], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT, preexec_fn=limit)


def staging_graphs(store: RemoteStore) -> list[str]:
    result = store.query(f'SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(STRSTARTS(STR(?g), '
                         f'"{STAGING_PREFIX}")) }}', union=False)
    assert isinstance(result, ox.QuerySolutions)
    return [row[0].value for row in result]  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphServer]:
    require("oxigraph")
    with OxigraphServer(tmp_path_factory.mktemp("oxigraph-ops") / "db") as s:
        yield s


@pytest.fixture
def remote(server: OxigraphServer) -> Iterator[RemoteStore]:
    store = RemoteStore(server.query_url)
    store.clear()
    yield store
    store.clear()
    store.close()


def local_store(path: Path, graphs: dict[str, bytes]) -> Path:
    store = EvidenceStore(path)
    for g, data in graphs.items():
        store.replace_graph(g, data)
    store.flush()
    del store
    return path


# -- restore on an endpoint (bug: the endpoint was emptied before the load was known to work) ---------------


def test_remote_restore_interrupted_keeps_the_previous_content(remote: RemoteStore, server: OxigraphServer,
                                                               tmp_path: Path) -> None:
    """The server goes away after two write requests of a restore: the endpoint still holds what it held;
    the staging graphs left behind are removed by the next restore, which then succeeds."""
    source = EvidenceStore(tmp_path / "source")
    source.replace_graph(B1, nt(300, "new"))
    source.backup(tmp_path / "bk")
    remote.replace_graph(B2, nt(40, "old"))
    before = remote.quads()
    with DroppingProxy(server.query_url.rsplit("/", 1)[0], writes_allowed=2) as proxy:
        broken = RemoteStore(proxy.url + "/query", dialect="oxigraph", chunk=50, timeout=10)
        with pytest.raises(StoreError):
            broken.restore(tmp_path / "bk")
        assert proxy.dead
    assert remote.named_graphs() == [B2]
    assert {q for q in remote.quads() if q.graph_name == ox.NamedNode(B2)} == before
    assert staging_graphs(remote)  # what the interrupted load left
    assert remote.restore(tmp_path / "bk") == 300
    assert remote.named_graphs() == [B1] and staging_graphs(remote) == []


def test_restore_refuses_a_manifest_whose_count_is_not_a_number(tmp_path: Path) -> None:
    source = EvidenceStore(tmp_path / "source")
    source.replace_graph(B1, nt(4, "new"))
    source.backup(tmp_path / "bk")
    manifest_path = tmp_path / "bk/manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["quads"] = str(manifest["quads"])
    manifest_path.write_text(json.dumps(manifest))
    target = EvidenceStore(tmp_path / "store")
    target.replace_graph(B2, nt(3, "old"))
    before = target.quads()
    with pytest.raises(StoreError, match='"quads"'):  # the message names the field that is wrong
        target.restore(tmp_path / "bk")
    assert target.quads() == before


# -- push ------------------------------------------------------------------------------------------------


def test_push_mirrors_the_cmokg_graphs_and_keeps_other_data(remote: RemoteStore, server: OxigraphServer,
                                                           tmp_path: Path) -> None:
    """A batch retracted (or superseded) locally is dropped from the endpoint by the next push; a graph that
    is not cmokg's stays; a graph describing itself as an import batch counts as cmokg's."""
    path = local_store(tmp_path / "store", {B1: nt(5, "one"), B2: nt(6, "two")})
    assert cmokg("push", "--endpoint", server.query_url, "--store", str(path)).returncode == 0
    remote.replace_graph(OTHER, b"<http://example.org/a> <http://example.org/b> <http://example.org/c> .\n")
    described = "http://example.org/elsewhere-batch"
    remote.replace_graph(described, f"<{described}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
                         f"<https://w3id.org/cmokg/ontology#ImportBatch> .\n".encode())
    store = EvidenceStore(path)
    store.drop_graph(B2)  # retracted
    store.replace_graph(B3, nt(7, "three"))
    del store
    pushed = cmokg("push", "--endpoint", server.query_url, "--store", str(path))
    assert pushed.returncode == 0, pushed.stderr
    assert remote.named_graphs() == sorted([B1, B3, OTHER])
    assert remote.graph_quad_count(B1) == 5 and remote.graph_quad_count(B3) == 7


def test_an_interrupted_push_leaves_a_staging_graph_the_next_push_removes(remote: RemoteStore,
                                                                         server: OxigraphServer,
                                                                         tmp_path: Path) -> None:
    path = local_store(tmp_path / "store", {B1: nt(400, "big")})
    with DroppingProxy(server.query_url.rsplit("/", 1)[0], writes_allowed=2) as proxy:
        failed = cmokg("push", "--endpoint", proxy.url + "/query", "--dialect", "oxigraph", "--chunk", "100",
                       "--store", str(path))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert staging_graphs(remote)
    assert not remote.has_graph(B1)
    again = cmokg("push", "--endpoint", server.query_url, "--store", str(path))
    assert again.returncode == 0, again.stderr
    assert staging_graphs(remote) == [] and remote.graph_quad_count(B1) == 400


@pytest.mark.parametrize("args", [["--endpoint", "not-a-url"], ["--endpoint", "ftp://127.0.0.1/query"],
                                  ["--chunk", "0"], ["--chunk", "-1"], ["--chunk", "many"], ["update-endpoint"]],
                         ids=["not-a-url", "not-http", "chunk-0", "chunk-negative", "chunk-text", "update-url"])
def test_push_refuses_bad_options_and_changes_nothing(remote: RemoteStore, server: OxigraphServer,
                                                      tmp_path: Path, args: list[str]) -> None:
    path = local_store(tmp_path / "store", {B1: nt(5, "one")})
    remote.replace_graph(B2, nt(8, "there"))
    before = remote.quads()
    if args == ["update-endpoint"]:
        args = ["--endpoint", server.update_url]  # the update URL where the query URL belongs
    elif args[0] == "--chunk":
        args = ["--endpoint", server.query_url, *args]
    done = cmokg("push", *args, "--store", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert remote.quads() == before


def test_facade_quads_for_pattern_is_one_request(remote: RemoteStore, server: OxigraphServer) -> None:
    """The linked-data pages ask for the quads around one node: one query, not a download of every graph."""
    for i in range(5):
        remote.replace_graph(BATCH_PREFIX + f"g{i}", nt(20, f"g{i}"))
    node = ox.NamedNode(BATCH_PREFIX + "s3")
    with DroppingProxy(server.query_url.rsplit("/", 1)[0]) as proxy:
        through = RemoteStore(proxy.url + "/query", dialect="oxigraph")
        found = set(through.ox.quads_for_pattern(node, None, None, None))
        assert proxy.requests == 1
    assert len(found) == 5 and {q.subject for q in found} == {node}


def test_web_dump_on_a_remote_store(remote: RemoteStore) -> None:
    from webapp import create_app

    remote.replace_graph(B1, nt(5, "one"))
    remote.replace_graph(B2, nt(3, "two"))
    app = create_app({"CMOKG_STORE_OBJECT": remote, "CMOKG_QUERY_WORKERS": 0, "TESTING": True})
    client = app.test_client()
    for route, fmt in (("/dump.nq", ox.RdfFormat.N_QUADS), ("/dump.trig", ox.RdfFormat.TRIG)):
        response = client.get(route)
        assert response.status_code == 200, response.data[:300]
        assert set(ox.parse(response.data, fmt)) == remote.quads()


# -- backup ---------------------------------------------------------------------------------------------


def test_backup_into_an_impossible_place_is_a_clear_error(tmp_path: Path) -> None:
    path = local_store(tmp_path / "store", {B1: nt(5, "one")})
    (tmp_path / "a-file").write_text("x")
    for target in (tmp_path / "a-file" / "bk", Path("/proc/cmokg-bk")):
        done = cmokg("backup", str(target), "--store", str(path))
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


def test_a_backup_that_fails_midway_leaves_nothing_and_can_be_run_again(tmp_path: Path) -> None:
    path = local_store(tmp_path / "store", {B1: nt(20_000, "big")})
    out = tmp_path / "out"
    out.mkdir()
    failed = cmokg("backup", str(out / "bk"), "--store", str(path), limit_bytes=200_000)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
    assert list(out.iterdir()) == []
    done = cmokg("backup", str(out / "bk"), "--store", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "bk/manifest.json").read_text())["quads"] == 20_000


# -- folders that are not stores, stores in use -----------------------------------------------------------


def _folder_with_precious_data(path: Path) -> dict[str, str]:
    (path / "sub").mkdir(parents=True)
    (path / "sub/data.csv").write_text("precious\n")
    return {str(p.relative_to(path)): p.read_bytes().hex() if p.is_file() else "" for p in path.rglob("*")}


def _snapshot(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_bytes().hex() if p.is_file() else "" for p in path.rglob("*")}


@pytest.mark.parametrize("command", ["build", "restore", "import", "batches", "serve"])
def test_a_folder_that_is_not_a_store_is_refused_and_left_alone(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "mine"
    before = _folder_with_precious_data(folder)
    args = {
        "build": ["build", "--data", str(tmp_path / "data")],
        "restore": ["restore", str(tmp_path / "bk")],
        "import": ["import", str(FIXTURES / "good")],
        "batches": ["batches"],
        "serve": ["serve", "--port", "1"],
    }[command]
    if command == "build":
        (tmp_path / "data/workbooks").mkdir(parents=True)
        import shutil

        shutil.copytree(FIXTURES / "good", tmp_path / "data/workbooks/good")
    if command == "restore":
        EvidenceStore(tmp_path / "src").backup(tmp_path / "bk")
    done = cmokg(*args, "--store", str(folder))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert _snapshot(folder) == before


@pytest.mark.parametrize("command", ["import", "batches", "serve"])
def test_an_empty_folder_is_not_a_store(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    args = {"import": ["import", str(FIXTURES / "good")], "batches": ["batches"], "serve": ["serve", "--port", "1"]}
    done = cmokg(*args[command], "--store", str(folder))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert list(folder.iterdir()) == []


HOLD = textwrap.dedent("""
    import sys, time
    from graph.store import EvidenceStore
    store = EvidenceStore(sys.argv[1])  # as `cmokg serve` holds its store
    print("ready", flush=True)
    time.sleep(60)
""")


def test_build_refuses_a_store_in_use(tmp_path: Path) -> None:
    """While another process (`cmokg serve`) has the store open, build refuses and leaves it in place."""
    data = tmp_path / "data/workbooks"
    import shutil

    shutil.copytree(FIXTURES / "good", data / "good")
    store = local_store(tmp_path / "store", {B1: nt(5, "one")})
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ready"
        with pytest.raises(StoreError):
            build(store, tmp_path / "data")
        done = cmokg("build", "--store", str(store), "--data", str(tmp_path / "data"))
        assert done.returncode == 2, done.stderr
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "store"]
    assert {q.graph_name for q in EvidenceStore(store, read_only=True).quads()} == {ox.NamedNode(B1)}


def test_a_second_build_beside_a_running_one_is_refused(tmp_path: Path) -> None:
    """Two builds into the same fresh path would share their private folder: the second one is refused."""
    data = tmp_path / "data/workbooks"
    import shutil

    shutil.copytree(FIXTURES / "good", data / "good")
    target = tmp_path / "var" / "store"
    target.parent.mkdir()
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what a running build holds (another process: flock is per open file)
    try:
        with pytest.raises(StoreError):
            build(target, tmp_path / "data")
    finally:
        os.close(fd)
    assert not target.exists()
    assert all(r.imported for r in build(target, tmp_path / "data"))
