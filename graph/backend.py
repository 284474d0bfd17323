"""The storage interface every backend implements: the embedded Oxigraph store and remote SPARQL 1.1 stores.

Why an abstract class: the importer, validation, the CLI and the web app are written once against this
interface, and one test suite (tests/test_backends.py) runs on every backend. A backend supplies the
primitives (query, update, graph writes, counts, dump); the operations cmokg builds on them (counts by kind,
batches, the concept index, backup and restore) live here once.

Data lives in named graphs: one per import batch, one for the ontology, one for the vocabularies. Queries see
the union of the named graphs as their default graph unless told otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyoxigraph as ox
from rdflib import Graph, URIRef

from .namespaces import BATCH_PREFIX, ONTOLOGY_GRAPH, VOCAB_GRAPH, sparql_prologue
from .vocab import CONCEPT_COLUMNS, ConceptIndex

QueryResult = ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples
Row = dict[str, ox.NamedNode | ox.BlankNode | ox.Literal | None]

BACKUP_DATA = "quads.nq"
STAGING_PREFIX = "urn:cmokg:staging:"
BACKUP_MANIFEST = "manifest.json"


class StoreError(Exception):
    """The store cannot be opened or written (in use by another process, damaged, not writable, unreachable)."""


@dataclass(frozen=True)
class BatchInfo:
    iri: str
    label: str
    file: str
    sha256: str
    generated: str
    attributed_to: str
    triples: int


def graph_to_nt(graph: Graph) -> bytes:
    return graph.serialize(format="nt", encoding="utf-8")


def quads_to_nq(quads: Iterable[ox.Quad]) -> bytes:
    return ox.serialize(quads, format=ox.RdfFormat.N_QUADS) or b""


class Backend(ABC):
    """What cmokg needs from a quad store. Subclasses implement the abstract primitives."""

    takes_default_graph = True  # False where only named graphs can be written (Virtuoso)

    # -- primitives ---------------------------------------------------------------------------------
    @abstractmethod
    def query(self, sparql: str, *, substitutions: dict[ox.Variable, object] | None = None, union: bool = True,
              default_graph: list[str] | None = None, named_graphs: list[str] | None = None,
              ) -> QueryResult:
        """Run a SPARQL query; the default graph is the union of the named graphs unless `default_graph` names
        the graphs to use; `named_graphs` restricts GRAPH. Raises SyntaxError for a malformed query."""

    @abstractmethod
    def update(self, sparql: str) -> None:
        """Run a SPARQL update as one transaction (one request). Raises SyntaxError for a malformed update."""

    @abstractmethod
    def quad_count(self) -> int: ...

    @abstractmethod
    def quads(self) -> set[ox.Quad]: ...

    @abstractmethod
    def named_graphs(self) -> list[str]: ...

    @abstractmethod
    def has_graph(self, iri: str) -> bool: ...

    @abstractmethod
    def replace_graph(self, graph_iri: str, data: bytes, fmt: ox.RdfFormat = ox.RdfFormat.N_TRIPLES) -> None:
        """Put `data` into the named graph, replacing what it held; readers see the old graph or the new one."""

    @abstractmethod
    def add_quads(self, data: bytes, fmt: ox.RdfFormat = ox.RdfFormat.N_QUADS) -> None:
        """Add quads (N-Quads or TriG) to the store: the bulk path of restore and push."""

    @abstractmethod
    def drop_graph(self, graph_iri: str) -> None: ...

    @abstractmethod
    def clear(self) -> None: ...

    @abstractmethod
    def dump(self, out: IO[bytes], fmt: ox.RdfFormat = ox.RdfFormat.N_QUADS, graph: str | None = None) -> None: ...

    def graph_quad_count(self, graph_iri: str) -> int:
        """How many triples a named graph holds (what `push` verifies per batch)."""
        result = self.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph_iri}> {{ ?s ?p ?o }} }}")
        assert isinstance(result, ox.QuerySolutions)
        for row in result:
            n = row["n"]
            return int(n.value) if isinstance(n, ox.Literal) else 0
        return 0

    def flush(self) -> None:
        """Make writes durable (a no-op where every request is durable when it returns)."""
        return None

    def close(self) -> None:
        """Release connections or locks."""
        return None

    # -- built on the primitives --------------------------------------------------------------------
    def select(self, sparql: str) -> list[Row]:
        result = self.query(sparql_prologue() + sparql)
        assert isinstance(result, ox.QuerySolutions)
        names = [v.value for v in result.variables]
        return [{n: row[n] for n in names} for row in result]

    def types_of(self, iris: Iterable[URIRef]) -> Iterator[tuple[URIRef, URIRef]]:
        """rdf:type triples of the given nodes, from every graph (the neighbourhood of a batch)."""
        values = " ".join(f"<{i}>" for i in sorted(iris))
        if not values:
            return
        for row in self.select(f"SELECT DISTINCT ?s ?t WHERE {{ VALUES ?s {{ {values} }} ?s a ?t }}"):
            s, t = row["s"], row["t"]
            if isinstance(s, ox.NamedNode) and isinstance(t, ox.NamedNode):
                yield URIRef(s.value), URIRef(t.value)

    def concept_index(self) -> ConceptIndex:
        klasses = " ".join(f"<{k}>" for _, k in CONCEPT_COLUMNS.values())
        rows = self.select(
            f"SELECT ?k ?c ?l WHERE {{ VALUES ?k {{ {klasses} }} ?c a ?k . "
            "{ ?c skos:prefLabel ?l } UNION { ?c skos:altLabel ?l } }"
        )
        return ConceptIndex.from_rows(
            (str(r["k"].value), str(r["c"].value), str(r["l"].value))  # type: ignore[union-attr]
            for r in rows
        )

    def counts(self) -> dict[str, int]:
        """How much the graph holds, by kind."""
        row = self.select("""
            SELECT
              (COUNT(DISTINCT ?review) AS ?reviews) (COUNT(DISTINCT ?doc) AS ?sources)
              (COUNT(DISTINCT ?cmoc) AS ?cmocs) (COUNT(DISTINCT ?ev) AS ?evidence)
            WHERE {
              { ?doc a cmo:Document } UNION { ?review a cmo:Review }
              UNION { ?cmoc a cmo:CMOConfiguration } UNION { ?ev a cmo:EvidenceFragment }
            }""")[0]
        out = {k: int(v.value) for k, v in row.items() if isinstance(v, ox.Literal)}
        out["batches"] = len(self.batches())
        out["statements"] = self.quad_count()  # quads: a triple once per graph stating it
        return out

    def batches(self) -> list[BatchInfo]:
        rows = self.select("""
            SELECT ?b ?label ?file ?sha ?time ?who ?n WHERE {
              GRAPH ?b { ?b a cmo:ImportBatch ; rdfs:label ?label ; cmo:sourceFileName ?file ; cmo:sha256 ?sha ;
                           prov:generatedAtTime ?time ; cmo:tripleCount ?n ; prov:wasAttributedTo ?a .
                         OPTIONAL { ?a rdfs:label ?who } }
            } ORDER BY ?time ?label ?b""")  # batches of one build share the second: by name, then IRI
        return [
            BatchInfo(
                iri=r["b"].value,  # type: ignore[union-attr]
                label=r["label"].value,  # type: ignore[union-attr]
                file=r["file"].value,  # type: ignore[union-attr]
                sha256=r["sha"].value,  # type: ignore[union-attr]
                generated=r["time"].value,  # type: ignore[union-attr]
                attributed_to=r["who"].value if r["who"] is not None else "",
                triples=int(r["n"].value),  # type: ignore[union-attr]
            )
            for r in rows
        ]

    def put_graph(self, graph_iri: str, graph: Graph) -> None:
        self.replace_graph(graph_iri, graph_to_nt(graph))

    def load_file(self, path: Path, graph_iri: str) -> None:
        fmt = ox.RdfFormat.from_extension(path.suffix.lstrip("."))
        if fmt is None:
            raise StoreError(f"{path}: unknown RDF format")
        self.replace_graph(graph_iri, path.read_bytes(), fmt)

    def load_ontology(self, ontology: Path, vocabularies: Iterable[Path]) -> None:
        """Ontology into its graph; all vocabularies together into the vocabulary graph."""
        self.load_file(ontology, ONTOLOGY_GRAPH)
        data = b"".join(
            f"{t} .\n".encode() for p in vocabularies for t in ox.parse(path=str(p), format=ox.RdfFormat.TURTLE)
        )
        self.replace_graph(VOCAB_GRAPH, data)

    def is_batch(self, iri: str) -> bool:
        return iri.startswith(BATCH_PREFIX) and self.has_graph(iri)

    # -- backup and restore: one portable format for every backend ------------------------------------
    def backup(self, directory: Path) -> dict[str, object]:
        """Write every quad as N-Quads into `directory` (which must not exist) with a manifest of counts and
        a checksum; the format is the same for every backend, so a backup restores into any of them.

        The backup is written into a private folder beside `directory` and renamed to it once complete: a
        failure (a full disk, a lost connection) leaves nothing behind, and the same command can be run again."""
        directory = Path(directory)
        if directory.exists() or directory.is_symlink():
            raise StoreError(f"{directory} exists: a backup goes into a new folder")
        partial = directory.with_name(f".{directory.name}.partial-{uuid.uuid4().hex[:12]}")
        try:
            directory.parent.mkdir(parents=True, exist_ok=True)
            partial.mkdir()
        except OSError as exc:
            raise StoreError(f"cannot create the backup folder {directory}: {exc.strerror or exc}") from None
        try:
            data = partial / BACKUP_DATA
            with data.open("wb") as fh:
                self.dump(fh, ox.RdfFormat.N_QUADS)
            digest = hashlib.sha256()
            with data.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            quads = sum(1 for _ in ox.parse(path=str(data), format=ox.RdfFormat.N_QUADS))
            manifest: dict[str, object] = {"format": "application/n-quads", "file": BACKUP_DATA, "quads": quads,
                                           "sha256": digest.hexdigest(), "graphs": len(self.named_graphs())}
            (partial / BACKUP_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            if directory.exists() or directory.is_symlink():
                raise StoreError(f"{directory} exists: a backup goes into a new folder")
            partial.rename(directory)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise StoreError(f"writing the backup to {directory} failed: {exc.strerror or exc}; "
                             "no backup was left there") from None
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return manifest

    @staticmethod
    def verified_backup(directory: Path) -> tuple[Path, dict[str, Any]]:
        """The data file and the manifest of a backup made by `backup`, its checksum verified."""
        manifest_path, data = directory / BACKUP_MANIFEST, directory / BACKUP_DATA
        if not manifest_path.is_file() or not data.is_file():
            raise StoreError(f"{directory}: not a cmokg backup (needs {BACKUP_MANIFEST} and {BACKUP_DATA})")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreError(f"{manifest_path}: not JSON ({exc}); nothing was restored") from None
        except OSError as exc:
            raise StoreError(f"{manifest_path}: cannot be read ({exc.strerror or exc}); nothing was restored") from None
        if not isinstance(manifest, dict):
            raise StoreError(f"{manifest_path}: not a manifest object; nothing was restored")
        quads, sha = manifest.get("quads"), manifest.get("sha256")
        if type(quads) is not int or quads < 0:
            raise StoreError(f"{manifest_path}: \"quads\" must be a whole number of quads, not {quads!r}; "
                             "nothing was restored")
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise StoreError(f"{manifest_path}: \"sha256\" must be 64 lowercase hexadecimal digits, not {sha!r}; "
                             "nothing was restored")
        digest = hashlib.sha256()
        try:
            with data.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise StoreError(f"{data}: cannot be read ({exc.strerror or exc}); nothing was restored") from None
        if digest.hexdigest() != sha:
            raise StoreError(f"{data}: checksum does not match the manifest; nothing was restored")
        return data, manifest

    @classmethod
    def parsed_backup(cls, directory: Path) -> tuple[list[ox.Quad], dict[str, Any]]:
        """The quads of a verified backup, every one parsed and counted against the manifest before anything
        is touched: a malformed or truncated file is refused here."""
        data, manifest = cls.verified_backup(Path(directory))
        try:
            quads = list(ox.parse(path=str(data), format=ox.RdfFormat.N_QUADS))
        except (SyntaxError, ValueError) as exc:
            raise StoreError(f"{data}: {exc}; nothing was restored") from None
        if any(isinstance(q.graph_name, ox.BlankNode) for q in quads):
            raise StoreError(f"{data}: a graph named by a blank node cannot be restored; nothing was restored")
        if len(quads) != manifest["quads"]:
            raise StoreError(f"{data}: {len(quads)} quads read, the manifest says {manifest['quads']}; "
                             "nothing was restored")
        return quads, manifest

    def remove_staging(self) -> list[str]:
        """Drop the staging graphs an interrupted push or restore left behind; returns their IRIs."""
        found = self.query(f"SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ ?s ?p ?o }} "
                           f'FILTER(STRSTARTS(STR(?g), "{STAGING_PREFIX}")) }}', union=False)
        assert isinstance(found, ox.QuerySolutions)
        graphs = sorted(g.value for row in found if isinstance(g := row[0], ox.NamedNode))
        for g in graphs:
            self.drop_graph(g)
        return graphs

    def restore(self, directory: Path) -> int:
        """Replace the store's content with a backup made by `backup`; returns the number of quads restored.

        The whole backup is parsed and counted first (a damaged one is refused with the store untouched); then
        every graph is loaded into a staging graph of its own, and one final update drops what the store held
        and moves the staging graphs into place. A failure while loading leaves the previous content (and
        perhaps staging graphs, which the next push or restore removes); the final update is one request."""
        quads, manifest = self.parsed_backup(Path(directory))
        if not self.takes_default_graph and any(isinstance(q.graph_name, ox.DefaultGraph) for q in quads):
            raise StoreError(f"{directory}: the backup holds quads in the default graph, and this store takes "
                             "named graphs only; nothing was restored")
        self.remove_staging()
        token = STAGING_PREFIX + "restore-" + uuid.uuid4().hex
        targets: dict[ox.NamedNode | ox.BlankNode | ox.DefaultGraph, str] = {}  # graph -> its staging graph
        for q in quads:
            if q.graph_name not in targets:
                targets[q.graph_name] = f"{token}-{len(targets)}"
        staged = [ox.Quad(q.subject, q.predicate, q.object, ox.NamedNode(targets[q.graph_name])) for q in quads]
        try:
            if staged:
                self.add_quads(quads_to_nq(staged), ox.RdfFormat.N_QUADS)
        except BaseException as exc:
            left = ""
            try:
                for stage in targets.values():
                    self.drop_graph(stage)
            except Exception:  # the store is unreachable: say what may be left
                left = (f"; staging graphs {token}-* may be left there, and the next `cmokg push` or "
                        "`cmokg restore` removes them")
            if isinstance(exc, Exception):
                raise StoreError(f"restoring {directory} failed while loading: {exc}; the store still holds "
                                 f"its previous content{left}") from None
            raise
        ops = [f"DROP SILENT GRAPH <{g}>" for g in self.named_graphs()
               if ox.NamedNode(g) not in targets and not g.startswith(STAGING_PREFIX)]
        ops += self._clear_default_ops()
        for graph, stage in targets.items():
            target = "DEFAULT" if isinstance(graph, ox.DefaultGraph) else f"GRAPH {graph}"
            ops.append(f"MOVE SILENT GRAPH <{stage}> TO {target}")
        try:
            self.update(" ;\n".join(ops))
        except (StoreError, OSError) as exc:
            raise StoreError(f"restoring {directory} failed at the final switch: {exc}; that switch is one "
                             "request: check the store's quad count to see whether it holds the previous "
                             f"content or the backup (staging graphs {token}-* may be left, and the next "
                             "`cmokg push` or `cmokg restore` removes them)") from None
        self.flush()
        count = self.quad_count()
        if count != manifest["quads"]:
            raise StoreError(f"restored {count} quads, the backup holds {manifest['quads']}")
        return count

    def _clear_default_ops(self) -> list[str]:
        """The update operations that empty the default graph before a restore (where it holds data of its own)."""
        return ["DROP SILENT DEFAULT"]
