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
        out["triples"] = self.quad_count()
        return out

    def batches(self) -> list[BatchInfo]:
        rows = self.select("""
            SELECT ?b ?label ?file ?sha ?time ?who ?n WHERE {
              GRAPH ?b { ?b a cmo:ImportBatch ; rdfs:label ?label ; cmo:sourceFileName ?file ; cmo:sha256 ?sha ;
                           prov:generatedAtTime ?time ; cmo:tripleCount ?n ; prov:wasAttributedTo ?a .
                         OPTIONAL { ?a rdfs:label ?who } }
            } ORDER BY ?time""")
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
        a checksum; the format is the same for every backend, so a backup restores into any of them."""
        directory = Path(directory)
        if directory.exists():
            raise StoreError(f"{directory} exists: a backup goes into a new folder")
        directory.mkdir(parents=True)
        data = directory / BACKUP_DATA
        with data.open("wb") as fh:
            self.dump(fh, ox.RdfFormat.N_QUADS)
        digest = hashlib.sha256(data.read_bytes()).hexdigest()
        quads = sum(1 for _ in ox.parse(path=str(data), format=ox.RdfFormat.N_QUADS))
        manifest: dict[str, object] = {"format": "application/n-quads", "file": BACKUP_DATA, "quads": quads,
                                       "sha256": digest, "graphs": len(self.named_graphs())}
        (directory / BACKUP_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
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
        if not isinstance(manifest, dict):
            raise StoreError(f"{manifest_path}: not a manifest object; nothing was restored")
        digest = hashlib.sha256()
        with data.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != manifest.get("sha256"):
            raise StoreError(f"{data}: checksum does not match the manifest; nothing was restored")
        return data, manifest

    def restore(self, directory: Path) -> int:
        """Replace the store's content with a backup made by `backup`; returns the number of quads restored.
        The checksum is verified before anything is cleared."""
        data, manifest = self.verified_backup(Path(directory))
        self.clear()
        self.add_quads(data.read_bytes(), ox.RdfFormat.N_QUADS)
        self.flush()
        count = self.quad_count()
        if count != manifest.get("quads"):
            raise StoreError(f"restored {count} quads, the backup holds {manifest.get('quads')}")
        return count
