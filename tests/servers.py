"""Real triple-store servers for tests and the benchmark: started on free loopback ports, stopped afterwards.

`OxigraphServer` runs the `oxigraph` CLI from the venv (the `oxigraph` package on PyPI); `VirtuosoServer`
runs Debian's `virtuoso-t` in the foreground with a private ini and data folder. Each is a context manager
that yields once the SPARQL endpoint answers, and kills only the process it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

VENV_BIN = Path(sys.executable).parent
VIRTUOSO_VAD = Path("/usr/share/virtuoso-opensource-7/vad")
VIRTUOSO_PLUGINS = Path("/usr/lib/x86_64-linux-gnu/virtuoso-opensource-7/hosting")
VIRTUOSO_PASSWORD = "dba"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def oxigraph_program() -> str | None:
    candidate = VENV_BIN / "oxigraph"
    return str(candidate) if candidate.exists() else shutil.which("oxigraph")


def virtuoso_program() -> str | None:
    return shutil.which("virtuoso-t")


def missing_reason(name: str) -> str:
    if name == "oxigraph":
        return "the Oxigraph server is absent: `pip install oxigraph` (the venv's `oxigraph` program) is needed"
    return "Virtuoso is absent: `apt-get install virtuoso-opensource` (the `virtuoso-t` program) is needed"


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within {timeout:.0f} s: {log.read_text(errors='replace')[-2000:]}")


@contextlib.contextmanager
def cmokg_serve(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
                timeout: float = 30) -> Iterator[str]:
    """`cmokg serve --port PORT *args` (gunicorn) on a free loopback port: yields its base URL once it answers
    HTTP, and stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen([str(VENV_BIN / "cmokg"), "serve", "--port", str(port), *args], cwd=cwd,
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/favicon.ico", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stderr:
            proc.stderr.close()


class _Server:
    proc: subprocess.Popen[bytes] | None = None
    query_url = ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class OxigraphServer(_Server):
    """`oxigraph serve --location DIR --bind 127.0.0.1:PORT`: /query, /update, /store (Graph Store Protocol)."""

    def __init__(self, location: Path, port: int | None = None) -> None:
        self.location = Path(location)
        self.port = port or free_port()
        base = f"http://127.0.0.1:{self.port}"
        self.query_url, self.update_url, self.store_url = f"{base}/query", f"{base}/update", f"{base}/store"

    def __enter__(self) -> OxigraphServer:
        program = oxigraph_program()
        if program is None:
            raise RuntimeError(missing_reason("oxigraph"))
        self.location.mkdir(parents=True, exist_ok=True)
        log = self.location.parent / f"oxigraph-{self.port}.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [program, "serve", "--location", str(self.location), "--bind", f"127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT)
        ask = urllib.parse.quote("ASK {}")
        try:
            _wait_http(f"{self.query_url}?query={ask}", self.proc, 30, log)
        except BaseException:
            self.stop()
            raise
        return self


VIRTUOSO_INI = """\
[Database]
DatabaseFile = {d}/virtuoso.db
ErrorLogFile = {d}/virtuoso.log
LockFile = {d}/virtuoso.lck
TransactionFile = {d}/virtuoso.trx
xa_persistent_file = {d}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {d}/virtuoso-temp.db
TransactionFile = {d}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{sql_port}
LiteMode = 0
DisableUnixSocket = 1
DisableTcpSocket = 0
MaxClientConnections = 20
CheckpointInterval = 60
O_DIRECT = 0
CaseMode = 2
MaxStaticCursorRows = 5000
CheckpointAuditTrail = 0
AllowOSCalls = 0
SchedulerInterval = 10
DirsAllowed = ., {d}, {vad}
ThreadCleanupInterval = 0
ThreadThreshold = 10
ResourcesCleanupInterval = 0
FreeTextBatchSize = 100000
SingleCPU = 0
VADInstallDir = {vad}/
PrefixResultNames = 0
RdfFreeTextRulesSize = 100
IndexTreeMaps = 64
MaxQueryMem = 1G
VectorSize = 1000
MaxVectorSize = 1000000
AdjustVectorSize = 0
ThreadsPerQuery = 2
AsyncQueueMaxThreads = 10
NumberOfBuffers = {buffers}
MaxDirtyBuffers = {dirty}

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {d}/vsp
MaxClientConnections = 20
DavRoot = DAV
EnabledDavVSP = 0
HTTPProxyEnabled = 0
TempASPXDir = 0
ServerThreads = 20
MaxKeepAlives = 10
KeepAliveTimeout = 10
HTTPThreadSize = 280000
HttpPrintWarningsInOutput = 0
Charset = UTF-8
EnabledGzipContent = 0

[Client]
SQL_PREFETCH_ROWS = 100
SQL_PREFETCH_BYTES = 16000
SQL_QUERY_TIMEOUT = 0
SQL_TXN_TIMEOUT = 0

[SPARQL]
ResultSetMaxRows = 10000000
MaxQueryCostEstimationTime = 400
MaxQueryExecutionTime = 120
DeferInferenceRulesInit = 0
"""


class VirtuosoServer(_Server):
    """`virtuoso-t +foreground` with a private ini: SPARQL at /sparql, update at /sparql-auth (digest auth)."""

    def __init__(self, folder: Path, buffers: int = 20000) -> None:
        self.folder = Path(folder)
        self.sql_port, self.http_port = free_port(), free_port()
        base = f"http://127.0.0.1:{self.http_port}"
        self.query_url, self.update_url = f"{base}/sparql", f"{base}/sparql-auth"
        self.user, self.password = "dba", VIRTUOSO_PASSWORD
        self.buffers = buffers

    def __enter__(self) -> VirtuosoServer:
        program = virtuoso_program()
        if program is None:
            raise RuntimeError(missing_reason("virtuoso"))
        (self.folder / "vsp").mkdir(parents=True, exist_ok=True)
        ini = self.folder / "virtuoso.ini"
        ini.write_text(VIRTUOSO_INI.format(d=self.folder, sql_port=self.sql_port, http_port=self.http_port,
                                           vad=VIRTUOSO_VAD, buffers=self.buffers,
                                           dirty=self.buffers * 3 // 4), encoding="utf-8")
        log = self.folder / "stdout.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen([program, "+foreground", "+configfile", str(ini)], cwd=self.folder,
                                         stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "LC_ALL": "C.UTF-8"})
        ask = urllib.parse.quote("ASK {}")
        try:
            _wait_http(f"{self.query_url}?query={ask}", self.proc, 90, log)
        except BaseException:
            self.stop()
            raise
        return self


def require(name: str) -> None:
    """Skip when a server program is absent, except under CI (CI=true), where its absence fails the run."""
    import pytest

    program = oxigraph_program() if name == "oxigraph" else virtuoso_program()
    if program is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(missing_reason(name) + " (CI=true: a missing server fails the run)")
        pytest.skip(missing_reason(name))


def tree_rss(pid: int, field: str = "VmRSS") -> int:
    """KiB of `field` (VmRSS now, VmHWM peak) summed over a process and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class DroppingProxy:
    """A forwarding HTTP proxy on loopback, in a thread, that counts the requests it forwards and, once
    `writes_allowed` write requests (POSTs to anything but the query path) have passed, drops every later
    connection without an answer, as a server that went away would."""

    def __init__(self, upstream: str, writes_allowed: int | None = None, query_path: str = "/query") -> None:
        import http.server
        import socketserver
        import threading

        self.upstream, self.writes_allowed, self.query_path = upstream.rstrip("/"), writes_allowed, query_path
        self.requests = 0
        self.writes = 0
        self.dead = False
        lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else None
                with lock:
                    proxy.requests += 1
                    if method == "POST" and not self.path.startswith(proxy.query_path):
                        proxy.writes += 1
                        if proxy.writes_allowed is not None and proxy.writes > proxy.writes_allowed:
                            proxy.dead = True
                    dead = proxy.dead
                if dead:
                    self.close_connection = True
                    self.connection.close()
                    return
                request = urllib.request.Request(proxy.upstream + self.path, data=body, method=method)
                for k, v in self.headers.items():
                    if k.lower() not in ("host", "content-length", "connection"):
                        request.add_header(k, v)
                try:
                    with urllib.request.urlopen(request, timeout=60) as r:
                        code, headers, data = r.status, r.headers, r.read()
                except urllib.error.HTTPError as e:
                    code, headers, data = e.code, e.headers, e.read()
                self.send_response(code)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

            def version_string(self) -> str:
                return proxy.server_header

            def log_message(self, *args: object) -> None:
                return None

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server_header = ""
        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
