"""Batches as units of accountability: who superseded what, what depends on what, and retracting one.

Every import is one named graph `id:batch/{hash}`. A workbook keeps its identity across revisions through
its *workbook id* (by default the file name without extension, or the folder name for a folder of CSVs):
each batch is `prov:specializationOf <id:workbook/{slug(workbook id)}>` (a workbook id with no letters or
digits, such as `★.xlsx`, is named by a hash of it instead: `id:workbook/_{hash}`). Importing a workbook whose id
already has a batch in the store supersedes that batch: the new batch is `prov:wasRevisionOf` the old
one, and the old graph is dropped in the same transaction that writes the new one.

A revision records what it changed (`changes`): before the earlier graphs are dropped, the CMOCs, sources and
evidence fragments they defined are compared with the new batch's, and each one new, changed or gone is written
into the new batch as a `cmo:Change` (see docs/model.md), which the catalog query batch-changes lists.

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
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, RDF
from rdflib.term import Node

from .backend import Backend, StoreError
from .namespaces import BATCH_PREFIX, CMO, ID, OA, slug
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
    A revision's record of a node it dropped (`cmo:changedNode`, `cmo:formerBatch`, see `changes`) is no
    reference: it names what was there.
    """
    removed = {batch, *also_removed}
    filters = " ".join(f"FILTER(?g2 != <{g}>)" for g in sorted(removed))
    rows = store.select(f"""
        SELECT DISTINCT ?g ?s ?p ?o WHERE {{
          GRAPH <{batch}> {{ ?o a ?t }}
          FILTER NOT EXISTS {{ GRAPH ?g2 {{ ?o a ?t2 }} {filters} }}
          GRAPH ?g {{ ?s ?p ?o }}
          FILTER(STRSTARTS(STR(?g), "{BATCH_PREFIX}"))
          FILTER(?p != <{CMO.changedNode}> && ?p != <{CMO.formerBatch}>)
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


# -- what a revision changed ----------------------------------------------------------------------------

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple
Triple = tuple[Term, Term, Term]  # as Oxigraph gives a quad's subject, predicate and object

# The nodes a revision's changes are reported for, by class, and the kind of node each class is.
CHANGE_KINDS: dict[str, str] = {
    str(CMO.CMOConfiguration): "CMOC", str(CMO.Review): "source", str(CMO.Study): "source",
    str(CMO.GreyLiterature): "source", str(CMO.EvidenceFragment): "evidence",
}
# A node's parts, whose triples are part of what it says: a CMOC's context, mechanism (and its resource and
# reasoning) and outcome, an evidence fragment's target and its selectors (the quote, its position).
PART_PROPERTIES = frozenset(str(p) for p in (CMO.hasContext, CMO.hasMechanism, CMO.hasOutcome, CMO.hasResource,
                                             CMO.hasReasoning, OA.hasTarget, OA.hasSelector))
_TYPE, _IDENTIFIER, _EXACT = str(RDF.type), str(DCTERMS.identifier), str(OA.exact)
_LABELS = frozenset((str(CMO.authorLabel), str(DCTERMS.title)))
CHANGE_ORDER = ("changed", "gone", "new")


@dataclass(frozen=True)
class Described:
    """A keyed node (CMOC, source, evidence fragment) as one graph has it: its kind, the triples of it and of
    its parts, and what names it for a reader (identifier; label, title or quote)."""

    kind: str
    triples: frozenset[tuple[object, str, object]]  # (subject, predicate IRI, object), as the store gave them
    identifier: str | None
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """One node a revision brought ("new"), described otherwise ("changed") or dropped ("gone")."""

    change: str
    kind: str
    node: str
    identifier: str | None = None  # as the superseded batch had it (changed, gone)
    texts: tuple[str, ...] = ()  # its label, title or quote in the superseded batch (changed, gone)
    earlier: str | None = None  # gone: the superseded batch that defined it

    def sort_key(self) -> tuple[int, str, str, str]:
        return CHANGE_ORDER.index(self.change), self.kind, self.identifier or "", self.node


def described(triples: Iterable[Triple]) -> dict[str, Described]:
    """The keyed nodes of one batch's triples, by IRI."""
    about: dict[Term, list[tuple[str, Term]]] = {}
    for s, p, o in triples:
        if isinstance(p, ox.NamedNode):
            about.setdefault(s, []).append((p.value, o))
    out: dict[str, Described] = {}
    for node, pos in about.items():
        kinds = sorted({CHANGE_KINDS[o.value] for p, o in pos
                        if p == _TYPE and isinstance(o, ox.NamedNode) and o.value in CHANGE_KINDS})
        if not kinds or not isinstance(node, ox.NamedNode):
            continue
        seen: set[Term] = {node}
        todo: list[Term] = [node]
        mine: set[tuple[object, str, object]] = set()
        while todo:
            part = todo.pop()
            for pred, o in about.get(part, ()):
                mine.add((part, pred, o))
                if pred in PART_PROPERTIES and o not in seen and not isinstance(o, ox.Literal):
                    seen.add(o)
                    todo.append(o)
        identifiers = sorted(o.value for p, o in pos if p == _IDENTIFIER and isinstance(o, ox.Literal))
        texts = [o.value for p, o in pos if p in _LABELS and isinstance(o, ox.Literal)]
        texts += [o.value for _, p, o in mine if p == _EXACT and isinstance(o, ox.Literal)]
        out[node.value] = Described(kinds[0], frozenset(mine), identifiers[0] if identifiers else None,
                                    tuple(sorted(set(texts))))
    return out


def compare(earlier: Sequence[tuple[str, dict[str, Described]]], now: dict[str, Described]) -> list[Change]:
    """What a batch changed against the batches it supersedes (each with its keyed nodes): a node none of them
    defined is "new"; one that some of them defined is "changed" when its triples or its parts' differ from
    any of theirs; one that some of them defined and the batch does not is "gone". Unchanged nodes are left
    out. A node is reported once: its kind is the batch's (or, gone, the earlier batch's), and a gone node's
    earlier batch is the first, by IRI, that defined it."""
    before: dict[str, list[tuple[str, Described]]] = {}
    for batch, nodes in sorted(earlier, key=lambda e: e[0]):
        for node, d in nodes.items():
            before.setdefault(node, []).append((batch, d))
    out = []
    for node, d in now.items():
        if node not in before:
            out.append(Change("new", d.kind, node))
        elif any(old.triples != d.triples for _, old in before[node]):
            out.append(Change("changed", d.kind, node, *_former(before[node])))
    for node, olds in before.items():
        if node not in now:
            out.append(Change("gone", olds[0][1].kind, node, *_former(olds), earlier=olds[0][0]))
    return sorted(out, key=Change.sort_key)


def _former(olds: list[tuple[str, Described]]) -> tuple[str | None, tuple[str, ...]]:
    ids = sorted({d.identifier for _, d in olds if d.identifier is not None})
    return (ids[0] if ids else None), tuple(sorted({t for _, d in olds for t in d.texts}))


def graph_triples(store: Backend, graph: str) -> list[Triple]:
    """Every triple of one named graph (a batch: bounded by its workbook)."""
    if isinstance(store, EvidenceStore):
        quads = store.ox.quads_for_pattern(None, None, None, ox.NamedNode(graph))
        return [(q.subject, q.predicate, q.object) for q in quads]
    rows = store.select(f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    return [(s, p, o) for r in rows
            if (s := r["s"]) is not None and (p := r["p"]) is not None and (o := r["o"]) is not None]


def change_triples(batch: str, found: Sequence[Change]) -> list[tuple[Node, Node, Node]]:
    """The record of a revision's changes in its own graph: `<batch> cmo:changeCount n`, and per change
    `<batch> cmo:recordsChange <batch/change/i>`, a `cmo:Change` naming the change, the node and its kind;
    for a node changed or gone, its identifier and texts as the superseded batch had them, and for a gone node
    the batch that defined it (its graph is dropped with the import)."""
    b = URIRef(batch)
    out: list[tuple[Node, Node, Node]] = [(b, CMO.changeCount, Literal(len(found)))]
    for i, ch in enumerate(found, start=1):
        c = URIRef(f"{batch}/change/{i}")
        out += [(b, CMO.recordsChange, c), (c, RDF.type, CMO.Change), (c, CMO.changeKind, Literal(ch.change)),
                (c, CMO.changedNode, URIRef(ch.node)), (c, CMO.nodeKind, Literal(ch.kind))]
        if ch.identifier is not None:
            out.append((c, CMO.formerIdentifier, Literal(ch.identifier)))
        out += [(c, CMO.formerText, Literal(t)) for t in ch.texts]
        if ch.earlier is not None:
            out.append((c, CMO.formerBatch, URIRef(ch.earlier)))
    return out


def recorded_changes(store: Backend, batch: str) -> list[tuple[Node, Node, Node]] | None:
    """The change record a batch in the store holds (`change_triples`), to keep when the same file is imported
    again; None when it has none (imported before revisions recorded their changes, or not a revision)."""
    prefix = f"{batch}/change/"
    mine = [(s, p, o) for s, p, o in graph_triples(store, batch)
            if isinstance(s, ox.NamedNode) and isinstance(p, ox.NamedNode)
            and ((s.value == batch and p.value in (str(CMO.changeCount), str(CMO.recordsChange)))
                 or s.value.startswith(prefix))]
    if not any(p.value == str(CMO.changeCount) for _, p, _ in mine):
        return None
    return [(URIRef(s.value), URIRef(p.value), _rdflib(o)) for s, p, o in mine]


def _rdflib(term: Term) -> Node:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        return Literal(term.value, datatype=URIRef(term.datatype.value))
    raise StoreError(f"a change record holds a blank node: {term}")


def changes(store: Backend, batch: str, now: Iterable[Triple], supersedes: Sequence[str]) -> list[Change]:
    """What the batch `batch`, whose triples are `now`, changes against the batches it supersedes, read from
    the store before their graphs are dropped: bounded by those graphs and the batch."""
    earlier = [(old, described(graph_triples(store, old))) for old in supersedes]
    return compare(earlier, described(now))
