"""Running SPARQL queries with a hard timeout: a pool of query worker processes on read-only snapshots.

pyoxigraph cannot interrupt a running query, and a thread cannot be killed, so a query that must be stopped
has to run in a process that can be. The design, measured on the seed store (5 MB, 4.5k triples, 2 cores):

- The web process keeps the one read-write handle on the store (the RocksDB lock, so CLI writes wait) and
  does all writes (SPARQL Update) in one transaction each.
- Query workers never open the live store: opening RocksDB read-only while another process writes it is
  undefined behaviour. They open a **snapshot** instead: `Store.backup` into a directory beside the store
  (hard links to the immutable SST files: 3 ms here, 30 ms after a write), opened with `Store.read_only`
  (45 ms, so a worker keeps its snapshot open between queries). After each write the web process takes a
  new snapshot; a worker switches at its next query; a snapshot is deleted when no worker holds it. Readers
  thus see every write once it is committed, never half of one, and never block a writer.
- A worker copies a snapshot of at most `memory_quads` quads (CMOKG_MEMORY_QUADS) into an in-memory
  store and answers from the copy: the catalog queries ran 6–9× faster on pyoxigraph's in-memory store than
  on RocksDB at 1k and 10k CMOCs (e.g. all-cmocs at 10k: 0.27 s against 2.0 s), for ~0.4 KB of RAM per quad
  per worker, and as much again for the N-Quads text while copying (the server's peak at 10k CMOCs, 527k
  quads, two workers: 939 MiB). A larger snapshot is queried on disk. Workers load their first snapshot as
  they start, a new one at their first query after a write.
- A request waits at most `timeout` for an idle worker and for its answer; past it, the worker is killed
  (SIGKILL) and replaced in the background, and the request gets 503. Other requests use the other workers.
- Workers serialize results themselves (pyoxigraph's native serializers) and enforce the row limit while
  serializing, so a huge result is cut off early instead of filling memory. Without a row limit a SELECT is
  serialized once, straight into the negotiated format (no TSV round trip), and straight into a spool file:
  an answer over SPOOL_BYTES travels by file name and is sent from the open file, so neither the worker nor
  the web process holds it whole (at 100k CMOCs one catalog answer is ~70 MB of JSON; held in memory it was
  copied three times: serialized, pickled, unpickled).
- After each answer a worker returns freed heap pages to the system (malloc_trim); one still more than
  CMOKG_WORKER_GROWTH above its size after opening its snapshot quits after answering, and a fresh one is
  started, so that fragmentation from large aggregates does not pile up.
- A `ResultCache` keeps serialized answers as files beside the snapshots, keyed by the snapshot generation
  and every field of the job (query text, substitutions, dataset, Accept, format parameter, row limit), within
  a byte budget (CMOKG_RESULT_CACHE), least recently used first out, admitted on a query's second asking
  (one-off queries do not evict repeated ones). Every write goes through the app's `WriteLock`, whose
  release takes a new snapshot (if the writer did not), which bumps the generation and empties the cache:
  an answer is never older than the last committed write. Queries whose answer does not depend on the store
  alone (SERVICE, NOW(), RAND(), UUID(), STRUUID(), BNODE()) are not cached. Measured at 10k CMOCs (0.5M
  triples, bench/README.md): the catalog queries take 2 ms–2 s to evaluate, a hit 1–4 ms over HTTP.

`workers=0` runs queries in the request thread (no timeout): for in-memory stores and unit tests.

Oxigraph's parser and optimizer recurse once per level of the query's tree (a nested group, a triple pattern of
a basic graph pattern, an OPTIONAL, BIND or UNION of a group, an operator of an expression): on a thread's
8 MiB stack 2,200 nested `{` or 8,000 triple patterns overflowed it, which killed the process (a query worker,
or the web process for an update). So queries and updates are evaluated on a thread of their own with a
STACK_BYTES stack (address space: only the pages a query reaches are ever touched, and they are handed back
when the thread ends), brackets nested deeper than MAX_NESTING are refused with 400 before anything is parsed,
and a long query that still kills its worker is answered 400 as too complex (see `QueryPool._run`).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import math
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO

import pyoxigraph as ox

from .conneg import RDF_TYPES, RESULT_TYPES, choose


@dataclass(frozen=True)
class Job:
    """One query, everything a worker needs to answer it (picklable)."""

    sparql: str
    accept: str | None = None
    format_param: str | None = None
    base_iri: str | None = None
    default_graph: list[str] | None = None  # protocol dataset; None: the union (or the query's FROM)
    named_graphs: list[str] | None = None
    union: bool = True
    max_rows: int = 0  # 0: no limit
    substitutions: tuple[tuple[str, ox.NamedNode | ox.Literal], ...] = ()
    """Pre-bound variables (name, RDF term), handed to `Store.query(substitutions=...)`: how catalog queries get
    their parameters without pasting them into the text. Part of the query's identity, like `sparql`."""


@dataclass
class Outcome:
    """An answer: status, media type and body. A body larger than SPOOL_BYTES is not held in memory: a
    worker leaves it in the file `path`, and the pool hands it on as the open file `stream`."""

    status: int
    mimetype: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    """A worker's spool file holding the body (then `body` is empty)."""
    retire: bool = False
    """The worker quits after this answer: it grew past its memory budget (see `worker_main`)."""
    stream: BinaryIO | None = field(default=None, repr=False, compare=False)
    """The body as an open file, in the web process (a spooled or cached answer); whoever sends it closes it."""

    @classmethod
    def error(cls, status: int, message: str) -> Outcome:
        return cls(status, "text/plain", (message + "\n").encode())

    def read(self) -> bytes:
        """The whole body (read from `stream`, which is then closed, when not in memory)."""
        if self.stream is not None:
            with self.stream:
                self.body, self.stream = self.stream.read(), None
        return self.body

    def size(self) -> int:
        """Bytes of the body, in memory or in `stream`."""
        if self.stream is not None:
            return os.fstat(self.stream.fileno()).st_size
        return len(self.body)


class _TooManyRows(Exception):
    pass


class _LineCounter:
    """A binary sink that counts lines and stops the serializer once past `limit` of them."""

    def __init__(self, limit: int) -> None:
        self.limit, self.lines, self.chunks = limit, 0, []  # type: ignore[var-annotated]

    def write(self, data: bytes) -> int:
        self.lines += data.count(b"\n")
        if self.limit and self.lines > self.limit:
            raise _TooManyRows
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


MAX_NESTING = 1000
"""Deepest nesting of brackets (`{`, `(`, `[`) a query or update may have; deeper is refused with 400. Each level
takes up to 3.7 KiB of the parser's stack."""

STACK_BYTES = 256 * 1024 * 1024
"""Stack of the thread that parses and evaluates a query or an update: address space, touched only as deep as
the query goes (a few hundred KiB for any ordinary query), and unmapped when the thread ends."""

COMPLEX_CHARS = STACK_BYTES // 4096
"""A query at least this long that kills its worker is taken to have overflowed STACK_BYTES (at most ~1 KiB of
stack per character once brackets are bounded by MAX_NESTING, with a margin of 4): answered 400, not 500."""

_NESTING_TOKENS = re.compile(
    r'''"""(?:[^"\\]|\\.|"(?!""))*(?:"""|\Z)'''  # long strings (to the end if unterminated)
    r"|'''(?:[^'\\]|\\.|'(?!''))*(?:'''|\Z)"
    r'|"(?:[^"\\\n]|\\.)*"?|\'(?:[^\'\\\n]|\\.)*\'?'  # short strings (to the end of the line if unterminated)
    r"|<[^<>\"{}|^`\\\x00-\x20]*>"  # IRIs (a `<` that opens none is an operator)
    r"|#[^\n]*"  # comments
    r"|([{(\[])|[})\]]",
    re.DOTALL,
)


def nesting_depth(text: str) -> int:
    """How deep the brackets of a SPARQL query or update nest (outside strings, IRIs and comments), read
    lexically, in time linear in the text, without recursion: unclosed brackets count too."""
    depth = deepest = 0
    for m in _NESTING_TOKENS.finditer(text):
        token = m.group(0)
        if m.group(1):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("}", ")", "]"):
            depth = max(0, depth - 1)
    return deepest


def nesting_message(text: str, what: str = "query") -> str | None:
    """Why `text` is refused before parsing (its brackets nest deeper than MAX_NESTING), or None."""
    depth = nesting_depth(text)
    if depth <= MAX_NESTING:
        return None
    return (f"the {what} nests brackets ({{ ( [) {depth} levels deep; this endpoint accepts at most {MAX_NESTING} "
            f"(MAX_NESTING): flatten it")


def on_big_stack(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` on a new thread with a STACK_BYTES stack (see the module docstring); its exception, if any,
    is raised here. pyoxigraph results belong to the thread that made them: `fn` must consume them itself."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn(*args))
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    with _STACK_LOCK:  # the stack size is process-wide: set it only for the thread started here
        previous = threading.stack_size(STACK_BYTES)
        try:
            thread = threading.Thread(target=run, name="cmokg-query", daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous)
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


_STACK_LOCK = threading.Lock()


def _too_many(max_rows: int, what: str) -> Outcome:
    return Outcome.error(
        400,
        f"the result has more than {max_rows} {what}, the limit of this endpoint (CMOKG_MAX_ROWS); "
        "add a LIMIT (and OFFSET to page through it) or narrow the query",
    )


SPOOL_BYTES = 64 * 1024
"""A worker's answer larger than this is written to a spool file and handed over by name, never held whole
in memory by the worker or the web process (a 100k-CMOC catalog answer is ~70 MB of JSON)."""


class Spool:
    """Where a worker writes its answers: `PREFIX-N.body`, PREFIX being the spool folder and a name unique to
    the worker (not its pid, which the system reuses), so that the pool can remove what a worker it killed
    left half-written (`Spool.remove`)."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self._n = prefix, 0

    def emit(self, mime: str, write: Callable[[str | None], bytes | None]) -> Outcome:
        """Serialize through `write(path)` into a new spool file; a small body comes back in memory."""
        self._n += 1
        path = f"{self.prefix}-{self._n}.body"
        try:
            write(path)
            if os.path.getsize(path) > SPOOL_BYTES:
                return Outcome(200, mime, b"", path=path)
            with open(path, "rb") as f:
                body = f.read()
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        os.unlink(path)
        return Outcome(200, mime, body)

    @staticmethod
    def remove(prefix: str) -> None:
        folder = Path(prefix)
        for leftover in folder.parent.glob(f"{folder.name}-*.body"):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _emit(spool: Spool | None, mime: str, write: Callable[[str | None], bytes | None]) -> Outcome:
    if spool is None:
        return Outcome(200, mime, write(None) or b"")
    return spool.emit(mime, write)


def run_job(store: ox.Store, job: Job, spool: Spool | None = None) -> Outcome:
    """Execute and serialize one query on `store` (in a worker or, with workers=0, in the caller), on a thread
    with a large stack (`on_big_stack`); brackets nested deeper than MAX_NESTING are refused with 400 unparsed.
    With a `spool`, the answer is serialized straight into a file (see `Spool`)."""
    refused = nesting_message(job.sparql)
    if refused is not None:
        return Outcome.error(400, refused)
    outcome: Outcome = on_big_stack(_run_job, store, job, spool)
    return outcome


def _run_job(store: ox.Store, job: Job, spool: Spool | None) -> Outcome:
    kwargs: dict[str, Any] = {}
    if job.base_iri:
        kwargs["base_iri"] = job.base_iri
    if job.default_graph is not None or job.named_graphs is not None:
        kwargs["default_graph"] = [ox.NamedNode(g) for g in job.default_graph or []]
        kwargs["named_graphs"] = [ox.NamedNode(g) for g in job.named_graphs or []]
    elif job.union:
        kwargs["use_default_graph_as_union"] = True
    if job.substitutions:
        kwargs["substitutions"] = {ox.Variable(name): term for name, term in job.substitutions}
    try:
        result = store.query(job.sparql, **kwargs)
        if isinstance(result, ox.QueryTriples):
            chosen = choose(job.accept, RDF_TYPES, job.format_param)
            if chosen is None:
                return Outcome.error(406, "no acceptable RDF format for a CONSTRUCT/DESCRIBE result; accept one of "
                                     + ", ".join(RDF_TYPES))
            mime, fmt = chosen
            sink = _LineCounter(job.max_rows)  # N-Triples: one triple per line
            try:
                result.serialize(sink, format=ox.RdfFormat.N_TRIPLES)  # type: ignore[arg-type]
            except _TooManyRows:
                return _too_many(job.max_rows, "triples")
            triples = ox.parse(sink.getvalue(), ox.RdfFormat.N_TRIPLES)
            if fmt in (ox.RdfFormat.N_QUADS, ox.RdfFormat.TRIG):
                quads = (ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in triples)
                return _emit(spool, mime, lambda out: ox.serialize(quads, out, format=fmt))
            return _emit(spool, mime, lambda out: ox.serialize(triples, out, format=fmt))
        chosen_r = choose(job.accept, RESULT_TYPES, job.format_param)
        if chosen_r is None:
            return Outcome.error(406, "no acceptable format for SELECT/ASK results; accept one of "
                                 + ", ".join(RESULT_TYPES))
        mime, rfmt = chosen_r
        if isinstance(result, ox.QueryBoolean) or not job.max_rows:
            answer = result
            return _emit(spool, mime, lambda out: answer.serialize(out, format=rfmt))
        sink = _LineCounter(job.max_rows + 1 if job.max_rows else 0)  # TSV: a header line, then one per row
        result.serialize(sink, format=ox.QueryResultsFormat.TSV)  # type: ignore[arg-type]
        tsv = sink.getvalue()
        if rfmt == ox.QueryResultsFormat.TSV:
            return Outcome(200, mime, tsv)
        parsed = ox.parse_query_results(tsv, ox.QueryResultsFormat.TSV)
        return _emit(spool, mime, lambda out: parsed.serialize(out, format=rfmt))
    except _TooManyRows:
        return _too_many(job.max_rows, "rows")
    except SyntaxError as exc:
        return Outcome.error(400, syntax_message(exc))
    except (OSError, ValueError, RuntimeError) as exc:
        return Outcome.error(500, f"query evaluation failed: {exc}")


def syntax_message(exc: SyntaxError) -> str:
    """`SPARQL syntax error at line L, column C: …` from pyoxigraph's `error at L:C: …`."""
    import re

    text = str(exc)
    m = re.match(r"error at (\d+):(\d+)(?:-\d+:\d+)?: ?(.*)", text, re.DOTALL)
    if m:
        return f"SPARQL syntax error at line {m.group(1)}, column {m.group(2)}: {m.group(3)}"
    return f"SPARQL syntax error: {text}"


def open_snapshot(path: str, memory_quads: int) -> ox.Store:
    """The snapshot at `path`, copied into an in-memory store when it holds at most `memory_quads` quads,
    else opened read-only on disk."""
    disk = ox.Store.read_only(path)
    if memory_quads <= 0 or len(disk) > memory_quads:
        return disk
    data = io.BytesIO()
    disk.dump(data, ox.RdfFormat.N_QUADS)
    del disk
    copy = ox.Store()
    data.seek(0)
    copy.load(data, ox.RdfFormat.N_QUADS)
    return copy


def _rss_kib() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _release_free_memory() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise: a worker that answered one large
    aggregate would hold its peak for good)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def worker_main(fd: int, snapshot: str | None = None, memory_quads: int = 0, spool: str | None = None,
                growth_kib: int = 0) -> None:  # pragma: no cover - runs in the child
    """The query worker's loop: receive (snapshot, job), answer an Outcome; exit when the parent is gone.
    `snapshot` is opened (or copied into memory, see `open_snapshot`) before the first job arrives. Answers
    go through `spool` (see `Spool`). After each answer freed memory is returned to the system; a worker still
    more than `growth_kib` above its size just after opening its snapshot marks its answer `retire` and exits,
    and the pool starts a fresh one."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent; it ends us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    conn = Connection(fd)
    sink = Spool(spool) if spool else None
    store: ox.Store | None = None
    opened: str | None = None
    baseline = 0
    if snapshot:
        with contextlib.suppress(Exception):  # e.g. deleted meanwhile: opened at the first job instead
            store, opened = open_snapshot(snapshot, memory_quads), snapshot
            _release_free_memory()
            baseline = _rss_kib()
    while True:
        try:
            snapshot, job = conn.recv()
        except (EOFError, OSError):
            return  # the web process is gone
        try:
            if snapshot != opened:
                store = None
                store = open_snapshot(snapshot, memory_quads)
                opened = snapshot
                _release_free_memory()
                baseline = _rss_kib()
            assert store is not None
            outcome = run_job(store, job, sink)
        except Exception as exc:  # a bad snapshot or a serializer bug: answer, stay alive
            outcome = Outcome.error(500, f"query worker failed: {exc}")
        _release_free_memory()
        outcome.retire = bool(growth_kib) and _rss_kib() - baseline > growth_kib
        try:
            conn.send(outcome)
        except (BrokenPipeError, OSError):
            return
        if outcome.retire:
            return


class _Worker:
    """One query worker: `python -m webapp.queryworker FD SNAPSHOT MEMORY_QUADS SPOOL_PREFIX GROWTH_KIB`,
    talking over a socketpair.

    A plain subprocess rather than multiprocessing's spawn, which re-imports the parent's main module (the
    `cmokg` script, gunicorn, pytest) in the child."""

    def __init__(self, snapshot: str, memory_quads: int, spool: str, growth_kib: int) -> None:
        self.spool = os.path.join(spool, uuid.uuid4().hex)  # this worker's spool prefix (see Spool)
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "webapp.queryworker", str(theirs.fileno()), snapshot, str(memory_quads),
                 self.spool, str(growth_kib)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.snapshot: str | None = snapshot  # kept by _collect while the worker may be opening it

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.conn.close()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)


_UNCACHEABLE = re.compile(r"\bSERVICE\b|\b(?:NOW|RAND|UUID|STRUUID|BNODE)\s*\(", re.IGNORECASE)


def cacheable(job: Job) -> bool:
    """Whether the answer depends on the store alone (no remote call, no clock, no randomness)."""
    return _UNCACHEABLE.search(job.sparql) is None


def _canonical(value: object) -> object:
    """A hashable, type-tagged form of a Job field: RDF terms by their N-Triples text (a literal and an IRI of
    the same text differ), lists as tuples (None stays None: no dataset differs from an empty one)."""
    if isinstance(value, (ox.NamedNode, ox.BlankNode, ox.Literal, ox.Triple)):
        return (type(value).__name__, str(value))
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value


def cache_key(generation: int, job: Job) -> tuple[object, ...]:
    """Everything that can change an answer: the snapshot generation and every field of the Job (a worker is
    given nothing else), substitutions included, in canonical form. Built from the dataclass's fields, so a
    field added to Job cannot be left out of the key."""
    return (generation, *((f.name, _canonical(getattr(job, f.name))) for f in fields(Job)))


class ResultCache:
    """Serialized 200 answers within `budget` bytes, as files in `directory`, least recently used evicted
    first: the web process's memory does not grow with the cache, and a large answer is sent from its file.

    An answer is admitted on its key's second `put` (the first is only remembered, by hash, among the last
    SEEN_KEYS): one-off queries — most ad-hoc ones — then never evict answers that are asked for again.
    Entries carry the snapshot generation in their key; `clear(generation)` (after every write) drops them
    all and refuses late `put`s from queries that started before the write."""

    SEEN_KEYS = 4096

    def __init__(self, budget: int, directory: str | Path) -> None:
        self.budget, self.size, self.generation = budget, 0, 0
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0
        self._entries: OrderedDict[tuple[object, ...], tuple[Outcome, int]] = OrderedDict()  # body in `path`
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()
        self._n = 0

    def get(self, key: tuple[object, ...]) -> Outcome | None:
        """The stored answer: a small body read into memory, a larger one as an open file (`stream`)."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            entry = found[0]
            assert entry.path is not None
            self._entries.move_to_end(key)
            self.hits += 1
            f = open(entry.path, "rb")  # noqa: SIM115 - the response closes it; opened under the lock, so
            # an eviction can unlink the name but not take the body away
        hit = Outcome(entry.status, entry.mimetype, b"", dict(entry.headers), stream=f)
        if os.fstat(f.fileno()).st_size <= SPOOL_BYTES:
            hit.read()
        return hit

    def put(self, key: tuple[object, ...], outcome: Outcome) -> bool:
        """Keep `outcome` if admitted. A spooled body (`path`, opened as `stream` by the caller) is moved into
        the cache: True then tells the caller that the file is no longer its to remove."""
        assert outcome.path is None or outcome.stream is not None, "a spooled body is put with its open stream"
        cost = outcome.size()
        if outcome.status != 200 or cost > self.budget:
            return False
        with self._lock:
            if key[0] != self.generation or key in self._entries or not self._admit(hash(key)):
                return False
            self._n += 1
            path = str(self.directory / f"{self._n}.body")
            try:
                if outcome.path is not None:
                    os.replace(outcome.path, path)
                else:
                    Path(path).write_bytes(outcome.body)
            except OSError:  # e.g. the disk is full: answer anyway, uncached
                with contextlib.suppress(OSError):
                    os.unlink(path)
                return False
            entry = Outcome(outcome.status, outcome.mimetype, b"", dict(outcome.headers), path=path)
            self._entries[key] = (entry, cost)
            self.size += cost
            while self.size > self.budget:
                _, old = self._entries.popitem(last=False)
                self._drop(*old)
            return outcome.path is not None

    def _drop(self, entry: Outcome, cost: int) -> None:
        """Forget an entry (the caller holds the lock); a reader that opened its file keeps reading it."""
        self.size -= cost
        with contextlib.suppress(OSError):
            os.unlink(entry.path or "")

    def _admit(self, digest: int) -> bool:
        """True on the second sighting of a key (the caller holds the lock)."""
        if digest in self._seen:
            del self._seen[digest]
            return True
        self._seen[digest] = None
        if len(self._seen) > self.SEEN_KEYS:
            self._seen.popitem(last=False)
        return False

    def clear(self, generation: int) -> None:
        with self._lock:
            self.generation = generation
            self._seen.clear()
            for entry, cost in self._entries.values():
                self._drop(entry, cost)
            self._entries.clear()
            self.size = 0

    def __len__(self) -> int:
        return len(self._entries)


class WriteLock:
    """The app's one write lock (SPARQL Update, web imports). On release after a write, `after_write` runs
    (the query pool takes a new snapshot and empties the result cache) unless the writer already refreshed:
    so no writer can forget to make its write visible to queries.

    `state` is (version, changed_at) of the store as this app sees it: the version counts the writes made
    under the lock (with or without a query pool), changed_at is when the last one ended (a Unix time), or
    when the lock was made (the store opened) before any. Both are replaced at once, after the write is
    visible to queries, so that a reader that sees a new state also sees the write; webapp.httpcache derives
    ETag and Last-Modified from it. changed_at moves on by at least one whole second per write, so that
    Last-Modified (whole seconds) tells every write from the one before, even two in one second or across a
    clock set back."""

    def __init__(self, generation: Callable[[], int], after_write: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._generation, self._after_write = generation, after_write
        self._held_at = 0
        self.state: tuple[int, float] = (0, time.time())

    def __enter__(self) -> WriteLock:
        self._lock.acquire()
        self._held_at = self._generation()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._generation() == self._held_at:
                self._after_write()
        finally:
            version, changed_at = self.state
            self.state = (version + 1, max(time.time(), math.floor(changed_at) + 1.0))
            self._lock.release()


class QueryPool:
    """`size` worker processes answering queries on snapshots of `store` (see the module docstring)."""

    def __init__(self, store: ox.Store, store_path: Path | None, size: int, cache_bytes: int = 0,
                 memory_quads: int = 0, growth_bytes: int = 0) -> None:
        self.store, self.size, self.memory_quads = store, size, memory_quads
        self.growth_kib = growth_bytes // 1024
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        parent = store_path.parent if store_path is not None else None
        try:
            self._root = Path(tempfile.mkdtemp(prefix=".cmokg-snapshots-", dir=parent))
        except OSError:
            self._root = Path(tempfile.mkdtemp(prefix="cmokg-snapshots-"))
        self.cache = ResultCache(cache_bytes, self._root / "cache")
        self.spool = self._root / "spool"
        self.spool.mkdir()
        self._generation = 0
        self.snapshot = ""
        self.refresh()
        for _ in range(size):
            self._spawn()
        atexit.register(self.close)

    # -- snapshots ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Take a new snapshot of the store (after a write); workers switch to it at their next query."""
        with self._lock:  # the snapshot first, then the generation: a cache key never outruns its snapshot
            path = self._root / f"g{self._generation + 1}"
            self.store.backup(str(path))
            self.snapshot = str(path)
            self._generation += 1
            self.cache.clear(self._generation)
        self._collect()

    @property
    def generation(self) -> int:
        """Bumped by every `refresh`: the version of the store that queries see."""
        return self._generation

    def _collect(self) -> None:
        with self._lock:
            keep = {self.snapshot} | {w.snapshot for w in self._workers if w.snapshot}
            for d in self._root.glob("g*"):
                if str(d) not in keep:
                    shutil.rmtree(d, ignore_errors=True)

    # -- workers --------------------------------------------------------------------------------------
    def _spawn(self) -> None:
        if self._closed:
            return
        with self._lock:
            w = _Worker(self.snapshot, self.memory_quads, str(self.spool), self.growth_kib)
            self._workers.add(w)
        self._idle.put(w)

    def _replace(self, w: _Worker, leftovers: bool = True) -> None:
        """Kill `w` (and remove its half-written spool files, if it may have `leftovers`); start another."""
        with self._lock:
            self._workers.discard(w)

        def replace() -> None:
            w.kill()
            if leftovers:
                Spool.remove(w.spool)
            self._spawn()
            self._collect()

        threading.Thread(target=replace, daemon=True).start()

    def run(self, job: Job, timeout: float) -> Outcome:
        """Answer `job` from the cache or from an idle worker within `timeout` seconds. A large body comes as
        an open file (`Outcome.stream`), which the caller sends and closes."""
        use_cache = bool(self.cache.budget) and cacheable(job)
        key = cache_key(self._generation, job)
        if use_cache:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        outcome = self._run(job, timeout)
        if outcome.path is None:
            if use_cache:
                self.cache.put(key, outcome)
            return outcome
        try:
            outcome.stream = open(outcome.path, "rb")  # noqa: SIM115 - closed by whoever sends it
            if not (use_cache and self.cache.put(key, outcome)):
                os.unlink(outcome.path)  # the open file stays readable
        except OSError as exc:
            return Outcome.error(500, f"the query's answer could not be read back: {exc}")
        outcome.path = None
        return outcome

    def _run(self, job: Job, timeout: float) -> Outcome:
        deadline = time.monotonic() + timeout
        try:
            w = self._idle.get(timeout=timeout)
        except queue.Empty:
            return Outcome.error(503, f"every query worker is busy; the query waited {timeout:g} s "
                                 "(CMOKG_QUERY_TIMEOUT). Try again later.")
        try:
            w.snapshot = self.snapshot
            w.conn.send((w.snapshot, job))
            if w.conn.poll(max(0.0, deadline - time.monotonic())):
                outcome: Outcome = w.conn.recv()
                if outcome.retire:
                    self._replace(w, leftovers=False)  # its last answer is ours to read
                else:
                    self._idle.put(w)
                return outcome
        except (EOFError, OSError):
            self._replace(w)
            return _died(w, job)
        self._replace(w)
        return Outcome.error(503, f"the query ran longer than {timeout:g} s (CMOKG_QUERY_TIMEOUT) and was "
                             "stopped; add a LIMIT or narrow the query")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            workers = list(self._workers)
            self._workers.clear()
        for w in workers:
            w.kill()
        shutil.rmtree(self._root, ignore_errors=True)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self._workers]


def _died(w: _Worker, job: Job) -> Outcome:
    """The answer when worker `w` died while answering `job`: a long query that killed it with a signal
    overflowed its stack (see COMPLEX_CHARS), which is the query's fault (400); anything else is the server's."""
    with contextlib.suppress(Exception):
        w.proc.wait(timeout=2)
    code = w.proc.returncode
    if code is not None and code < 0 and len(job.sparql) >= COMPLEX_CHARS:
        return Outcome.error(400, f"the query is too complex for this endpoint: parsing or evaluating it ran out "
                                  f"of the query worker's stack ({STACK_BYTES // 2**20} MiB), e.g. too long a chain "
                                  "of triple patterns, operators or group elements at one level; split it into "
                                  "smaller queries")
    return Outcome.error(500, "the query worker died while running the query")


def worker_count(value: Any) -> int:
    if value is None or value == "":
        return min(4, max(2, os.cpu_count() or 2))
    return int(value)
