"""The embedded store: Oxigraph on disk, one named graph per import batch, the union as default graph."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import pyoxigraph as ox

from .backend import Backend, BatchInfo, StoreError

__all__ = ["DEFAULT_STORE", "BatchInfo", "EvidenceStore", "StoreError", "is_store", "replacing", "require_store",
           "swap_in"]

DEFAULT_STORE = Path("var/store")


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a))


def is_store(path: Path) -> bool:
    """Whether `path` is an Oxigraph (RocksDB) store folder: its CURRENT file names a MANIFEST."""
    path = Path(path)
    return (path / "CURRENT").is_file() and any(path.glob("MANIFEST-*"))


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and next(path.iterdir(), None) is None


def check_target(path: Path) -> None:
    """A folder cmokg may create a store in or replace: absent, an empty folder, or a store. Anything else (a
    file, a folder holding other files) is refused, and nothing is created or deleted."""
    path = Path(path)
    if not path.exists() or is_store(path):
        return
    if not path.is_dir():
        raise StoreError(f"{path} is not a cmokg store (it is a file); nothing was changed")
    if not _is_empty_folder(path):
        raise StoreError(f"{path} is not a cmokg store (a folder holding other files); nothing was changed: "
                         "give a new or empty folder, or an existing store")


def require_store(path: Path) -> None:
    """Refuse a path that holds no store (absent, empty, or a folder of other files) with a message saying so."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no store at {path}: run `cmokg build --store {path}` first")
    if not is_store(path):
        what = "an empty folder" if _is_empty_folder(path) else ("a file" if not path.is_dir() else
                                                                 "a folder holding other files")
        raise StoreError(f"{path} is not a cmokg store ({what}): run `cmokg build --store {path}` for a new one")


def _lock_parent(store_path: Path) -> int:
    """An exclusive lock on the store's parent folder (flock on its descriptor: no file is created, and the lock
    goes with the process), so that two builds or restores beside each other do not share their private
    folders. Refuses at once when another one holds it. Returns the descriptor, to be closed to unlock."""
    fd = os.open(store_path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"another cmokg build or restore is writing beside {store_path} (in {store_path.parent}); "
                         "nothing was changed") from None
    return fd


def _hold(store_path: Path) -> ox.Store | None:
    """Open the existing store at `store_path` for writing: its RocksDB lock keeps `cmokg serve` and every
    other cmokg writer out while it is held; None where there is no store yet."""
    if not is_store(store_path):
        return None
    try:
        return ox.Store(str(store_path))
    except OSError as exc:
        hint = " (is `cmokg serve` or another cmokg command using it?)" if "lock" in str(exc).lower() else ""
        raise StoreError(f"cannot open the store at {store_path}{hint}: {exc}; nothing was changed") from None


@contextlib.contextmanager
def replacing(store_path: Path) -> Iterator[Callable[[], None]]:
    """Around the making of a store that will replace the one at `store_path` (build): refuse a target that is
    not a store (`check_target`), lock the parent folder against another build beside it, and hold the lock of
    the existing store (refused while `cmokg serve` or another command has it open) until the new store is
    ready. Yields `release`, which `swap_in` calls right before the folders move."""
    store_path = Path(store_path)
    check_target(store_path)
    try:
        store_path.parent.mkdir(parents=True, exist_ok=True)
        fd = _lock_parent(store_path)
    except OSError as exc:
        raise StoreError(f"cannot write beside {store_path}: {exc}; nothing was changed") from None
    held: list[ox.Store | None] = []
    try:
        held.append(_hold(store_path))

        def release() -> None:
            held.clear()  # closes the old store (its folder has moved aside), releasing its lock

        yield release
    finally:
        held.clear()
        os.close(fd)


def swap_in(new: Path, store_path: Path, release: Callable[[], None] | None = None) -> None:
    """Make the store folder `new` the store at `store_path` and delete what was there.

    Where `store_path` exists the two folders are exchanged in one step, so a kill at any moment leaves a
    whole store at `store_path`, the old one or the new one (a leftover `new` folder is only disk space);
    where the system cannot exchange, the old store is moved aside first.
    """
    if release is not None:
        # the old store is closed before its folder moves: RocksDB writes files (a MANIFEST, a flush) by path
        # while it closes, which after the exchange would land in the new store's folder
        release()
    if not store_path.exists():
        new.rename(store_path)
        return
    check_target(store_path)
    if not _exchange(new, store_path):
        aside = store_path.with_name(store_path.name + ".replaced")
        shutil.rmtree(aside, ignore_errors=True)
        store_path.rename(aside)
        new.rename(store_path)
        new = aside
    shutil.rmtree(new, ignore_errors=True)


class EvidenceStore(Backend):
    """A pyoxigraph Store with the operations cmokg needs; `path=None` keeps it in memory."""

    def __init__(self, path: Path | str | None = None, *, read_only: bool = False, create: bool = True) -> None:
        """`create=False` (or `read_only`) refuses a path that holds no store yet instead of making one there; a
        folder that holds anything but a store is always refused, and nothing is created in it."""
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            if read_only or not create:
                require_store(self.path)
            else:
                check_target(self.path)
        try:
            if self.path is None:
                self.ox = ox.Store()
            elif read_only:
                self.ox = ox.Store.read_only(str(self.path))
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self.ox = ox.Store(str(self.path))
        except OSError as exc:
            hint = " (is `cmokg serve` or another cmokg command using it?)" if "lock" in str(exc).lower() else ""
            raise StoreError(f"cannot open the store at {self.path}{hint}: {exc}") from None

    # -- reading ------------------------------------------------------------------------------------
    def query(self, sparql: str, *, substitutions: dict[ox.Variable, object] | None = None, union: bool = True,
              default_graph: list[str] | None = None, named_graphs: list[str] | None = None,
              ) -> ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples:
        """Run a SPARQL query. The default graph is the union of all graphs unless `default_graph` names the
        graphs to use (SPARQL Protocol `default-graph-uri`); `named_graphs` restricts GRAPH (`named-graph-uri`).
        Raises SyntaxError (with line and column) for a malformed query."""
        kwargs: dict[str, object] = {"substitutions": substitutions}
        if default_graph is not None:
            kwargs["default_graph"] = [ox.NamedNode(g) for g in default_graph]
        else:
            kwargs["use_default_graph_as_union"] = union
        if named_graphs is not None:
            kwargs["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
        return self.ox.query(sparql, **kwargs)  # type: ignore[arg-type]

    def update(self, sparql: str) -> None:
        """Run a SPARQL update in one transaction. Raises SyntaxError for a malformed update."""
        self.ox.update(sparql)

    def quad_count(self) -> int:
        return len(self.ox)

    def quads(self) -> set[ox.Quad]:
        return set(self.ox)

    def named_graphs(self) -> list[str]:
        return sorted(g.value for g in self.ox.named_graphs() if isinstance(g, ox.NamedNode))

    def has_graph(self, iri: str) -> bool:
        return self.ox.contains_named_graph(ox.NamedNode(iri))

    # -- writing ------------------------------------------------------------------------------------
    def replace_graph(self, graph_iri: str, data: bytes, fmt: ox.RdfFormat = ox.RdfFormat.N_TRIPLES) -> None:
        """Put `data` into the named graph, replacing what it held, in one transaction.

        Readers see the old graph or the new one, never a mix: a fresh graph is loaded with `load`
        (transactional); a graph that exists is dropped and refilled in one SPARQL update.
        """
        g = ox.NamedNode(graph_iri)
        if not self.ox.contains_named_graph(g):
            self.ox.load(data, fmt, to_graph=g)
            return
        if fmt != ox.RdfFormat.N_TRIPLES:
            data = b"".join(
                f"{q.subject} {q.predicate} {q.object} .\n".encode() for q in ox.parse(data, fmt)
            )
        self.ox.update(f"DROP SILENT GRAPH <{graph_iri}> ;\nINSERT DATA {{ GRAPH <{graph_iri}> {{\n"
                       + data.decode("utf-8") + "\n} }")

    def write_batch(self, graph_iri: str, data: bytes, drop: Sequence[str] = (), *, checked: bool = False) -> None:
        """Write `data` (N-Triples) as the named graph `graph_iri`, dropping the graphs `drop` and what the
        graph held: one transaction, so a failure or a kill leaves the store as it was or as it will be.

        A new graph with nothing to drop takes the fast path, `Store.load` (transactional, parsed in Rust;
        leniently if `checked` says these bytes were already parsed strictly, which costs a third more);
        otherwise one SPARQL update drops and inserts.
        """
        g = ox.NamedNode(graph_iri)
        if not drop and not self.ox.contains_named_graph(g):
            self.ox.load(data, ox.RdfFormat.N_TRIPLES, to_graph=g, lenient=checked)
            return
        drops = "".join(f"DROP SILENT GRAPH <{d}> ;\n" for d in [*drop, graph_iri])
        self.update(f"{drops}INSERT DATA {{ GRAPH <{graph_iri}> {{\n{data.decode('utf-8')}\n}} }}")

    def drop_graph(self, graph_iri: str) -> None:
        self.ox.update(f"DROP SILENT GRAPH <{graph_iri}>")

    def add_quads(self, data: bytes, fmt: ox.RdfFormat = ox.RdfFormat.N_QUADS) -> None:
        """Add quads in one transaction (`load` is transactional: all of them or none)."""
        self.ox.load(data, fmt)

    def restore(self, directory: Path) -> int:
        """Replace the store's content with a backup made by `backup`. On disk the backup is bulk-loaded into a
        private folder beside the store, counted, and only then swapped in (`swap_in`): a bad backup or a kill
        leaves the previous store as it was, and a large backup needs no transaction held in memory (5.3M
        quads: ~9 GiB for one `load`). In memory, as every backend does (clear, then one transaction)."""
        if self.path is None:
            return super().restore(directory)
        data, manifest = self.verified_backup(Path(directory))
        fresh_path = self.path.with_name(self.path.name + ".restoring")
        shutil.rmtree(fresh_path, ignore_errors=True)
        try:
            fresh = ox.Store(str(fresh_path))
            try:
                fresh.bulk_load(path=str(data), format=ox.RdfFormat.N_QUADS)
            except (SyntaxError, ValueError) as exc:
                raise StoreError(f"{data}: {exc}; nothing was restored") from None
            fresh.flush()
            count = len(fresh)
            del fresh
            if count != manifest.get("quads"):
                raise StoreError(f"{data}: {count} quads read, the manifest says {manifest.get('quads')}; "
                                 "nothing was restored")
        except BaseException:
            shutil.rmtree(fresh_path, ignore_errors=True)
            raise
        del self.ox  # close RocksDB before its folder moves
        try:
            swap_in(fresh_path, self.path)
        finally:
            self.ox = ox.Store(str(self.path))
        return count

    def backup_native(self, directory: Path) -> None:
        """A RocksDB checkpoint of an on-disk store (hard links: fast, same machine only)."""
        if self.path is None:
            raise StoreError("an in-memory store has no native backup; use backup()")
        self.ox.flush()
        self.ox.backup(str(directory))

    def clear(self) -> None:
        self.ox.clear()

    def flush(self) -> None:
        if self.path is not None:
            self.ox.flush()

    def dump(self, out: IO[bytes], fmt: ox.RdfFormat = ox.RdfFormat.N_QUADS, graph: str | None = None) -> None:
        if graph is not None:
            self.ox.dump(out, fmt, from_graph=ox.NamedNode(graph))
        else:
            self.ox.dump(out, fmt)
