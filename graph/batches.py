"""Batches as units of accountability: who superseded what, what depends on what, and retracting one.

Every import is one named graph `id:batch/{hash}`. A workbook keeps its identity across revisions through
its *workbook id* (by default the file name without extension, or the folder name for a folder of CSVs):
each batch is `prov:specializationOf <id:workbook/{slug(workbook id)}>` (a workbook id with no letters or
digits, such as `★.xlsx`, is named by a hash of it instead: `id:workbook/_{hash}`). Importing a workbook whose id
already has a batch in the store supersedes that batch: the new batch is `prov:wasRevisionOf` the old
one, and the old graph is dropped in the same transaction that writes the new one.

Every query here is bounded by one batch and the nodes it defines or references (its neighbourhood),
never by the size of the store.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyoxigraph as ox
from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from .backend import StoreError
from .namespaces import BATCH_PREFIX, ID, slug
from .store import EvidenceStore


def workbook_iri(workbook_id: str) -> URIRef:
    """The workbook a batch is a revision of: `id:workbook/{slug}`, or, when the id has no letters or digits
    to slug, `id:workbook/_{hash}` (a slug never holds '_'): distinct ids never share a workbook by accident."""
    key = slug(workbook_id)
    if not key:
        digest = hashlib.sha256(unicodedata.normalize("NFC", workbook_id).encode("utf-8")).hexdigest()
        key = f"_{digest[:16]}"
    return ID[f"workbook/{key}"]


def default_workbook_id(paths: Sequence[Path]) -> str:
    """The file name without extension (.xlsx, .zip), the folder's name, or the folder of several CSVs."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1:
        p = paths[0]
        return p.name if p.is_dir() else p.stem
    parent = paths[0].resolve().parent
    return parent.name


def _iri(term: object) -> str:
    value = getattr(term, "value", None)
    return str(value) if value is not None else str(term)


def batches_of_workbook(store: EvidenceStore, workbook_id: str) -> list[str]:
    """The batches in the store that are revisions of this workbook (normally at most one)."""
    rows = store.select(
        f"SELECT DISTINCT ?b WHERE {{ GRAPH ?b {{ ?b a cmo:ImportBatch ; "
        f"prov:specializationOf <{workbook_iri(workbook_id)}> }} }} ORDER BY ?b")
    return [_iri(r["b"]) for r in rows if r["b"] is not None]


def batch_record(store: EvidenceStore, batch: str) -> tuple[list[str], list[str]]:
    """What a batch already in the store records about itself: the workbooks it is a revision of
    (prov:specializationOf) and the earlier batches it superseded (prov:wasRevisionOf). Both empty when the
    store has no such batch. A batch's IRI is the hash of the file's content, so importing the same file
    again names the same batch: what it recorded must be kept (see graph.pipeline)."""
    rows = store.select(
        f"SELECT DISTINCT ?p ?o WHERE {{ GRAPH <{batch}> {{ <{batch}> ?p ?o "
        f"VALUES ?p {{ prov:specializationOf prov:wasRevisionOf }} }} }}")
    workbooks: set[str] = set()
    earlier: set[str] = set()
    for r in rows:
        (workbooks if _iri(r["p"]).endswith("specializationOf") else earlier).add(_iri(r["o"]))
    return sorted(workbooks), sorted(earlier)


def defined_in_other_batches(store: EvidenceStore, iris: Iterable[URIRef], exclude: Iterable[str],
                             ) -> dict[URIRef, list[str]]:
    """For each IRI: the batch graphs (other than `exclude`) that type it, i.e. define it."""
    values = " ".join(f"<{i}>" for i in sorted(set(iris)))
    if not values:
        return {}
    excluded = set(exclude)
    rows = store.select(
        f"SELECT DISTINCT ?s ?g WHERE {{ VALUES ?s {{ {values} }} GRAPH ?g {{ ?s a ?t }} "
        f"FILTER(STRSTARTS(STR(?g), \"{BATCH_PREFIX}\")) }}")
    out: dict[URIRef, list[str]] = {}
    for r in rows:
        g = _iri(r["g"])
        if g not in excluded:
            out.setdefault(URIRef(_iri(r["s"])), []).append(g)
    return out


def types_outside(store: EvidenceStore, iris: Iterable[URIRef], exclude: Iterable[str],
                  ) -> list[tuple[URIRef, URIRef]]:
    """rdf:type triples of the given nodes from every graph except `exclude` (batches being replaced)."""
    values = " ".join(f"<{i}>" for i in sorted(set(iris)))
    if not values:
        return []
    excluded = set(exclude)
    rows = store.select(f"SELECT DISTINCT ?s ?t ?g WHERE {{ VALUES ?s {{ {values} }} GRAPH ?g {{ ?s a ?t }} }}")
    out = set()
    for r in rows:
        if _iri(r["g"]) in excluded or not isinstance(r["t"], ox.NamedNode):
            continue
        out.add((URIRef(_iri(r["s"])), URIRef(_iri(r["t"]))))
    return sorted(out)


@dataclass(frozen=True)
class Dependant:
    """A triple in another batch that points at a node only `batch` defines."""

    batch: str  # the batch holding the reference
    subject: str
    predicate: str
    target: str  # the node that would disappear


def dependants(store: EvidenceStore, batch: str, replacement: Graph | None = None,
               also_removed: Iterable[str] = ()) -> list[Dependant]:
    """References from other batches to nodes that `batch` alone defines.

    With `replacement` (the graph that will take its place), nodes the replacement defines again do not
    count. `also_removed` are other graphs removed in the same transaction.
    """
    removed = {batch, *also_removed}
    filters = " ".join(f"FILTER(?g2 != <{g}>)" for g in sorted(removed))
    rows = store.select(f"""
        SELECT DISTINCT ?g ?s ?p ?o WHERE {{
          GRAPH <{batch}> {{ ?o a ?t }}
          FILTER NOT EXISTS {{ GRAPH ?g2 {{ ?o a ?t2 }} {filters} }}
          GRAPH ?g {{ ?s ?p ?o }}
          FILTER(STRSTARTS(STR(?g), "{BATCH_PREFIX}"))
        }} ORDER BY ?g ?s ?p ?o""")
    kept = set() if replacement is None else {s for s in replacement.subjects(RDF.type) if isinstance(s, URIRef)}
    out = []
    for r in rows:
        g, o = _iri(r["g"]), _iri(r["o"])
        if g in removed or URIRef(o) in kept:
            continue
        out.append(Dependant(g, _iri(r["s"]), _iri(r["p"]), o))
    return out


def commit(store: EvidenceStore, batch: str, graph: Graph, supersedes: Sequence[str] = ()) -> None:
    """Write `graph` as the named graph `batch` and drop the batches it supersedes: one transaction.

    One SPARQL update is one Oxigraph transaction: a failure or a kill at any point leaves the store as it
    was (the old batches and no new one) or as it will be (the new batch only).
    """
    drops = "".join(f"DROP SILENT GRAPH <{g}> ;\n" for g in [*supersedes, batch])
    data = graph.serialize(format="nt", encoding="utf-8").decode("utf-8")
    store.update(f"{drops}INSERT DATA {{ GRAPH <{batch}> {{\n{data}\n}} }}")


@dataclass
class RetractResult:
    batch: str
    found: bool
    retracted: bool = False
    removed_quads: int = 0
    dependants: list[Dependant] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["dependants"] = [asdict(x) for x in self.dependants]
        return d


def _graph_size(store: EvidenceStore, batch: str) -> int:
    rows = store.select(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{batch}> {{ ?s ?p ?o }} }}")
    n = rows[0]["n"] if rows else None
    return int(n.value) if isinstance(n, ox.Literal) else 0


class AmbiguousBatch(StoreError):
    """A batch named by a prefix of its hash that several batches share. A StoreError, so that a command that
    does not catch it still reports it as bad usage (exit 2) with its message."""

    def __init__(self, name: str, candidates: Sequence[str]) -> None:
        self.name = name
        self.candidates = list(candidates)
        super().__init__(f"batch {name!r} is ambiguous: {len(self.candidates)} batches start with it "
                         f"({', '.join(self.candidates)}); give more of its hash")


def resolve_batch(store: EvidenceStore, name: str) -> str | None:
    """A batch by full IRI, by its hash (or a unique prefix of it), or by `id:batch/...`.

    None when no batch matches; AmbiguousBatch (listing the candidates) when a prefix matches several.
    """
    if name.startswith(BATCH_PREFIX):
        return name if store.has_graph(name) else None
    key = name.removeprefix("id:batch/").strip().lower()
    if not key:
        return None
    matches = sorted(b.iri for b in store.batches() if b.iri[len(BATCH_PREFIX):].startswith(key))
    if len(matches) > 1:
        raise AmbiguousBatch(name, matches)
    return matches[0] if matches else None


def retract(store: EvidenceStore, batch: str, *, force: bool = False) -> RetractResult:
    """Remove one batch graph and nothing else. Refused (nothing removed) when another batch references a
    node only this batch defines, unless `force`; the references are reported either way."""
    if not (batch.startswith(BATCH_PREFIX) and store.has_graph(batch)):
        return RetractResult(batch, found=False)
    result = RetractResult(batch, found=True, dependants=dependants(store, batch))
    if result.dependants and not force:
        return result
    result.removed_quads = _graph_size(store, batch)
    store.update(f"DROP GRAPH <{batch}>")
    result.retracted = True
    return result
