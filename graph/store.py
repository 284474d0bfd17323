"""The embedded store: Oxigraph on disk, one named graph per import batch, the union as default graph."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyoxigraph as ox
from rdflib import Graph, URIRef

from .namespaces import BATCH_PREFIX, ONTOLOGY_GRAPH, VOCAB_GRAPH, sparql_prologue
from .vocab import CONCEPT_COLUMNS, ConceptIndex

DEFAULT_STORE = Path("var/store")


class StoreError(Exception):
    """The store cannot be opened or written (in use by another process, damaged, not writable)."""


@dataclass(frozen=True)
class BatchInfo:
    iri: str
    label: str
    file: str
    sha256: str
    generated: str
    attributed_to: str
    triples: int


def _graph_to_nt(graph: Graph) -> bytes:
    return graph.serialize(format="nt", encoding="utf-8")


class EvidenceStore:
    """A pyoxigraph Store with the operations cmokg needs; `path=None` keeps it in memory."""

    def __init__(self, path: Path | str | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else None
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

    def select(self, sparql: str) -> list[dict[str, ox.NamedNode | ox.BlankNode | ox.Literal | None]]:
        result = self.query(sparql_prologue() + sparql)
        assert isinstance(result, ox.QuerySolutions)
        names = [v.value for v in result.variables]
        return [{n: row[n] for n in names} for row in result]

    def quad_count(self) -> int:
        return len(self.ox)

    def quads(self) -> set[ox.Quad]:
        return set(self.ox)

    def named_graphs(self) -> list[str]:
        return sorted(g.value for g in self.ox.named_graphs() if isinstance(g, ox.NamedNode))

    def has_graph(self, iri: str) -> bool:
        return self.ox.contains_named_graph(ox.NamedNode(iri))

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

    def put_graph(self, graph_iri: str, graph: Graph) -> None:
        self.replace_graph(graph_iri, _graph_to_nt(graph))

    def drop_graph(self, graph_iri: str) -> None:
        self.ox.update(f"DROP SILENT GRAPH <{graph_iri}>")

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

    def is_batch(self, iri: str) -> bool:
        return iri.startswith(BATCH_PREFIX) and self.has_graph(iri)
