"""Import and build: validated workbooks into the store as atomic batches."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

from .backend import Backend
from .batches import batch_record, workbook_iri
from .importer import add_revisions
from .report import Finding, Report
from .store import EvidenceStore, StoreError, check_target, replacing, swap_in
from .validate import (
    Converted,
    Engine,
    Validated,
    concepts_for,
    convert_workbook,
    validate_converted,
    validate_read,
    validate_workbook,
)
from .vocab import ONTOLOGY_FILE, ROOT, ConceptIndex, vocab_paths
from .workbook import Workbook

DATA_DIR = ROOT / "data"


@dataclass
class ImportResult:
    report: Report
    batch: str | None = None
    triples: int = 0
    imported: bool = False
    replaced: bool = False  # the same file again, or a revision superseding earlier batches
    superseded: list[str] = field(default_factory=list)
    workbook_id: str | None = None


def import_workbook(store: EvidenceStore, paths: Sequence[Path], reviewer: str | None = None, *,
                    workbook_id: str | None = None, fulltext: Path | None = None,
                    engine: Engine = "sparql") -> ImportResult:
    """Validate against the store, then write the batch in one transaction; refuse (and write nothing) on
    any violation. A workbook whose id has a batch already supersedes it (graph.batches)."""
    return _commit(store, validate_workbook(paths, store, reviewer, workbook_id=workbook_id, fulltext=fulltext,
                                            engine=engine))


def import_read(store: EvidenceStore, wb: Workbook, reviewer: str | None, *, workbook_id: str,
                fulltext: Path | None = None) -> ImportResult:
    """Import a workbook already read (e.g. sources from a bibliography)."""
    return _commit(store, validate_read(wb, store, reviewer, workbook_id=workbook_id, fulltext=fulltext))


def _commit(store: EvidenceStore, validated: Validated,
            also: Callable[[str, bytes, list[str]], None] | None = None) -> ImportResult:
    """Write a validated batch; `also`, when given, receives (batch, N-Triples, graphs dropped) once written."""
    result = ImportResult(validated.report, workbook_id=validated.workbook_id)
    ext = validated.extraction
    if ext is None or not validated.report.conforms:
        return result
    earlier = _restated_batch(store, validated)
    if not validated.report.conforms:
        return result
    if earlier:  # the same file again: the batch keeps the revisions it recorded when first imported
        add_revisions(ext, earlier)
    result.batch = str(ext.batch)
    result.superseded = list(validated.supersedes)
    result.replaced = store.has_graph(result.batch) or bool(result.superseded)
    result.triples = len(ext)
    data = ext.nt()
    ext.store  # noqa: B018  (built by the validation) has parsed these very bytes strictly
    _write(store, result.batch, data, result.superseded, checked=True)
    result.imported = True
    if also is not None:
        also(result.batch, data, [*result.superseded, result.batch] if result.replaced else [])
    return result


def same_file_findings(store: EvidenceStore | None, validated: Validated) -> list[Finding]:
    """A workbook whose content (hence its batch IRI, a hash of it) is already in the store as the batch of
    another workbook: importing it would take that batch from its workbook (whose next revision would then
    supersede nothing and collide with it) and drop what it recorded. A violation, to import it under the
    workbook's own name instead."""
    ext = validated.extraction
    if store is None or ext is None or validated.workbook_id is None or not store.has_graph(str(ext.batch)):
        return []
    workbooks, _ = batch_record(store, str(ext.batch))
    mine = str(workbook_iri(validated.workbook_id))
    others = [w for w in workbooks if w != mine]
    if not others:
        return []
    names = ", ".join(w.rsplit("/", 1)[-1] for w in others)
    return [Finding("Violation", f"this file is already in the graph as batch {ext.batch} of workbook '{names}' "
                    f"(the same content, not the same name '{validated.workbook_id}'): import it under that "
                    "workbook's name to revise it, or change it before importing it as a workbook of its own",
                    origin="graph")]


def _restated_batch(store: EvidenceStore, validated: Validated) -> list[str]:
    """Before writing a batch whose graph is already in the store (the same file again): add a violation to
    the report if it belongs to another workbook (`same_file_findings`), else return the earlier batches it
    recorded as revisions of, so that writing it again keeps them."""
    ext = validated.extraction
    if ext is None or not store.has_graph(str(ext.batch)):
        return []
    found = same_file_findings(store, validated)
    if found:
        validated.report.extend(found)
        return []
    _, earlier = batch_record(store, str(ext.batch))
    return [b for b in earlier if b not in validated.supersedes]


def _write(store: Backend, batch: str, data: bytes, supersedes: Sequence[str], *, checked: bool = False) -> None:
    """The batch's N-Triples as its named graph, dropping the batches it supersedes: in one transaction on the
    embedded store; on a remote store staged in chunks and switched by one final request that moves the batch
    into place before it drops anything (`RemoteStore.write_batch`), so no failure loses a batch. `checked`:
    the bytes were already parsed strictly (see `EvidenceStore.write_batch`)."""
    from .remote import RemoteStore  # here: the embedded store's imports need no SPARQL client

    if isinstance(store, EvidenceStore):
        store.write_batch(batch, data, supersedes, checked=checked)
    elif isinstance(store, RemoteStore):
        store.write_batch(batch, data, supersedes)
    else:
        raise TypeError(f"cannot write a batch to {store!r}")


def workbooks_in(data_dir: Path) -> list[list[Path]]:
    """Every workbook under data_dir/workbooks in name order: .xlsx files, and folders of .csv files."""
    root = data_dir / "workbooks"
    if not root.is_dir():
        raise StoreError(f"{root}: no workbooks folder")
    found = []
    for p in sorted(root.iterdir()):
        if (p.is_dir() and any(p.glob("*.csv"))) or p.suffix.lower() == ".xlsx":
            found.append([p])
    return found


def load_schema(store: EvidenceStore) -> None:
    store.load_ontology(ONTOLOGY_FILE, vocab_paths())


def build(store_path: Path, data_dir: Path = DATA_DIR, reviewer: str = "cmokg build",
          progress: Callable[[str], None] | None = None, engine: Engine = "sparql",
          timings: dict[str, float] | None = None) -> list[ImportResult]:
    """Build the graph from scratch into a fresh store beside `store_path`, then swap it in.

    Every workbook is validated against the graph built so far and imported as its own batch, as
    `cmokg import` would. A reader thread reads and converts the next workbooks meanwhile (`_read_ahead`).
    The graph built so far is staged in memory (about 0.4 KB per triple), where the validation of the next
    workbook looks it up; each imported batch is also handed to a writer thread that bulk-loads it, in
    chunks, into a private folder (see `_Writer`). That folder replaces `store_path` only when every workbook
    was imported; if any workbook is refused, it is deleted and the previous store is left as it was.

    `timings`, when given, receives the seconds spent staging (reading, converting, validating, handing
    batches to the writer: "stage_s"), the writer's busy time (its bulk loads, on its own thread while the
    staging goes on: "write_s"), and the time from the end of staging to the store in place ("tail_s").
    """
    results: list[ImportResult] = []
    started = time.perf_counter()
    with replacing(store_path) as release:  # refuses a folder that is not a store, or a store in use
        building = store_path.with_name(store_path.name + ".building")
        check_target(building)  # what a killed build left (a store), never a folder of the user's
        shutil.rmtree(building, ignore_errors=True)
        staged = EvidenceStore(None)
        load_schema(staged)
        writer = _Writer(building)
        try:
            schema = staged.ox.dump(format=ox.RdfFormat.N_QUADS)  # the ontology and vocabularies
            assert schema is not None
            writer.add_quads(schema)
            for converted in _read_ahead(workbooks_in(data_dir), concepts_for(staged)):
                if progress:
                    progress(converted.paths[0].name)
                result = _commit(staged, validate_converted(converted, staged, reviewer, engine=engine), writer.put)
                results.append(result)
                if not result.imported:
                    writer.abandon()
                    shutil.rmtree(building, ignore_errors=True)
                    return results
            staged_at = time.perf_counter()
            writer.send()  # the last chunk is written while the staged graph is freed (3.6 s at 5.3M quads)
            del staged
            writer.finish()
        except BaseException:
            writer.abandon()
            shutil.rmtree(building, ignore_errors=True)
            raise
        swap_in(building, store_path, release)
    if timings is not None:
        timings.update(stage_s=staged_at - started, write_s=writer.busy_s, tail_s=time.perf_counter() - staged_at)
    return results


def _read_ahead(workbooks: list[list[Path]], concepts: ConceptIndex, ahead: int = 2) -> Iterator[Converted]:
    """The workbooks read and converted, in order, by a thread that keeps `ahead` of them ready: their
    reading and conversion do not depend on the graph built so far, and they run while the build's own
    thread waits on Oxigraph (which releases the GIL) to validate and stage the one before."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cmokg-build-reader") as reader:
        pending: deque[Future[Converted]] = deque()
        rest = iter(workbooks)
        try:
            while True:
                while len(pending) < ahead and (paths := next(rest, None)) is not None:
                    pending.append(reader.submit(convert_workbook, paths, concepts))
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


class _Writer:
    """The store a build fills, written on a thread of its own while the next workbooks are validated.

    Oxigraph's bulk loader releases the GIL, so on a second core the write runs beside the staging instead
    of after it. Batches are gathered into chunks (each batch a TriG graph block around its N-Triples, which TriG
    accepts as they are) and bulk-loaded chunk by chunk; the chunks grow from FIRST_CHUNK_BYTES to
    CHUNK_BYTES, so that a small build is written beside its staging too. The bulk loader is not
    transactional, which is why the store is a private folder swapped in only when complete. The bytes were
    parsed strictly when the batch was staged, so the loader parses them leniently; and they hold no blank
    nodes (graph.importer writes IRIs and literals only), so batches sharing a chunk share no blank node label.

    Measured on a 1000-workbook build (5.3M quads, two cores): a bulk load per batch writes at 101k t/s,
    chunks of 20 MB at 136k t/s, but in a build those 40 chunks cost 60 s more CPU than one load (RocksDB
    compacting the files each load adds) and slowed the staging by a quarter; chunks of 100 MB cost what one
    load does. The thread also runs at a lower priority (and so do the loader's threads, which inherit it),
    so the staging keeps its core: 141 s with the write after the staging, 112 s with it beside.
    """

    FIRST_CHUNK_BYTES = 10_000_000  # each chunk twice the one before, up to CHUNK_BYTES
    CHUNK_BYTES = 100_000_000
    NICENESS = 10

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: ox.Store | None = EvidenceStore(path).ox
        self.busy_s = 0.0
        self.error: BaseException | None = None
        self._pending: list[bytes] = []
        self._size = 0
        self._limit = self.FIRST_CHUNK_BYTES
        self._queue: queue.Queue[tuple[bytes, ox.RdfFormat, list[str]] | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="cmokg-build-writer", daemon=True)
        self._thread.start()

    def add_quads(self, nquads: bytes) -> None:
        self.send()
        self._hand(nquads, ox.RdfFormat.N_QUADS, [])

    def put(self, graph: str, ntriples: bytes, drop: list[str]) -> None:
        """Add a batch's triples as the graph `graph`, after dropping the graphs `drop` (in this order)."""
        if drop:
            self.send()
            self._hand(b"", ox.RdfFormat.TRIG, drop)
        self._pending.append(b"<%s> {\n%s}\n" % (graph.encode("utf-8"), ntriples))
        self._size += len(ntriples)
        if self._size >= self._limit:
            self.send()
            self._limit = min(2 * self._limit, self.CHUNK_BYTES)

    def finish(self) -> None:
        """Write what is pending and wait for the writer; raises what it raised."""
        self.send()
        self._stop()
        self._raise()
        assert self.store is not None
        self.store.flush()
        self.store = None  # closes the store

    def abandon(self) -> None:
        """Stop without writing what is pending (the caller deletes the folder)."""
        self._pending, self._size = [], 0
        self._stop()
        self.store = None

    def send(self) -> None:
        """Hand what is pending to the writer thread."""
        if self._pending:
            chunk = b"".join(self._pending)
            self._pending, self._size = [], 0
            self._hand(chunk, ox.RdfFormat.TRIG, [])

    def _hand(self, data: bytes, fmt: ox.RdfFormat, drop: list[str]) -> None:
        self._raise()
        self._queue.put((data, fmt, drop))

    def _raise(self) -> None:
        if self.error is not None:
            raise StoreError(f"writing the store at {self.path} failed: {self.error}") from self.error

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        """Until the end marker: drop, then load. After an error, the rest is taken off the queue unwritten
        (a full queue would otherwise block the staging thread)."""
        with contextlib.suppress(AttributeError, OSError):  # where threads have no priority of their own
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.NICENESS)
        while (item := self._queue.get()) is not None:
            if self.error is not None or self.store is None:
                continue
            data, fmt, drop = item
            started = time.perf_counter()
            try:
                for g in drop:
                    self.store.remove_graph(ox.NamedNode(g))
                if data:
                    self.store.bulk_load(data, fmt, lenient=True)
            except BaseException as exc:  # handed to the staging thread, which raises it
                self.error = exc
            self.busy_s += time.perf_counter() - started
