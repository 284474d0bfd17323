"""SHACL validation of an extraction, with each result mapped back to its sheet, row and column.

Only the incoming batch is validated, together with the types of the nodes it references that the store
already holds (its neighbourhood), so the cost follows the workbook, not the size of the graph.

Two engines give the same results (tests/test_shacl_compiled.py): "sparql" (default), the shapes compiled
to SPARQL queries run natively by pyoxigraph (graph.shacl_sparql), and "pyshacl", the reference
implementation, far slower. Both validate the nodes the workbook defines and use the rest of the data
(ontology, vocabularies, neighbourhood types) only as values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyoxigraph as ox
from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF

from .batches import (
    Change,
    batches_of_workbook,
    change_triples,
    changes,
    default_workbook_id,
    defined_in_other_batches,
    dependants,
    described,
    recorded_changes,
    types_outside,
)
from .importer import (
    Extraction,
    Term,
    add_provenance,
    add_to_provenance,
    convert,
    default_reviewer,
    path_key,
    to_ox,
)
from .namespaces import CMO, ID, SH
from .report import Finding, Report
from .shacl_sparql import SEVERITIES, CompiledShapes, Result, compile_shapes, subclass_closure
from .vocab import ONTOLOGY_FILE, ROOT, ConceptIndex, vocab_paths
from .workbook import UnreadableWorkbook, Workbook, read_workbook

if TYPE_CHECKING:
    from .store import EvidenceStore

SHAPES_FILE = ROOT / "shapes" / "cmokg-shapes.ttl"
SHAPES_IRI = URIRef("https://w3id.org/cmokg/shapes")
Engine = Literal["sparql", "pyshacl"]
ENGINES: tuple[Engine, ...] = ("sparql", "pyshacl")
NEIGHBOURHOOD_GRAPH = "urn:cmokg:validation:neighbourhood"


@lru_cache(maxsize=1)
def shapes_graph() -> Graph:
    return Graph().parse(SHAPES_FILE, format="turtle")


def shapes_version() -> str:
    return str(shapes_graph().value(SHAPES_IRI, OWL.versionInfo) or "unversioned")


@lru_cache(maxsize=1)
def ontology_graph() -> Graph:
    """The ontology and vocabularies, mixed into every data graph so sh:class sees subclasses and concepts."""
    g = Graph().parse(ONTOLOGY_FILE, format="turtle")
    for p in vocab_paths():
        g.parse(p, format="turtle")
    return g


@lru_cache(maxsize=1)
def compiled_shapes() -> CompiledShapes:
    """The shapes compiled once per process (UnsupportedShape if they use a feature the compiler lacks)."""
    return compile_shapes(shapes_graph(), subclass_closure(ontology_graph()))


@lru_cache(maxsize=1)
def _ontology_types() -> bytes:
    """rdf:type triples (N-Triples) of every IRI the ontology and vocabularies type (concepts, mostly)."""
    return "".join(f"<{s}> <{RDF.type}> <{t}> .\n" for s, t in ontology_graph().subject_objects(RDF.type)
                   if isinstance(s, URIRef) and isinstance(t, URIRef)).encode("utf-8")


def concepts_for(store: EvidenceStore | None) -> ConceptIndex:
    if store is not None:
        index = store.concept_index()
        if index.by_class:
            return index
    return ConceptIndex.from_graph(ontology_graph())


def _focus(ext: Extraction) -> list[str]:
    """The nodes validated: those the workbook's rows define, and the batch."""
    return [*sorted(ext.origins), str(ext.batch)]


def _load_neighbourhood(ext: Extraction, store: EvidenceStore | None, replacing: Sequence[str]) -> ox.Store:
    """The extraction's in-memory store, with the types of the nodes it mentions beside the batch: from the
    ontology and vocabularies, and, for the nodes it only references, from every graph of the store but the
    batches this import replaces (a node only they define is gone)."""
    mem, graph = ext.store, ox.NamedNode(NEIGHBOURHOOD_GRAPH)
    mem.clear_graph(graph)
    mem.load(_ontology_types(), ox.RdfFormat.N_TRIPLES, to_graph=graph)
    referenced = ext.referenced()
    if store is not None and referenced:
        mem.load("".join(f"<{s}> <{RDF.type}> <{t}> .\n" for s, t in types_outside(store, referenced, replacing))
                 .encode("utf-8"), ox.RdfFormat.N_TRIPLES, to_graph=graph)
    return mem


def shacl_results(ext: Extraction, store: EvidenceStore | None, replacing: Sequence[str] = (),
                  engine: Engine = "sparql") -> list[Result]:
    """The SHACL results on the workbook's nodes, from the chosen engine."""
    if engine == "pyshacl":
        return _pyshacl_results(ext, store, replacing)
    return compiled_shapes().run(_load_neighbourhood(ext, store, replacing), _focus(ext))


def _pyshacl_results(ext: Extraction, store: EvidenceStore | None, replacing: Sequence[str]) -> list[Result]:
    """The reference engine. The ontology and vocabularies go into the data graph itself (pyshacl's
    ont_graph mix-in copies only class and property definitions, not the concepts sh:class must find).
    Every target is validated and results outside the workbook's nodes dropped: pyshacl's focus_nodes
    option would also skip qualified value shapes on values outside the list."""
    from pyshacl import validate

    data = Graph()
    for triple in ontology_graph():
        data.add(triple)
    for triple in ext.graph:
        data.add(triple)
    referenced = ext.referenced()
    if store is not None and referenced:
        for s, t in types_outside(store, referenced, replacing):
            data.add((s, RDF.type, t))
    _conforms, results, _text = validate(data, shacl_graph=shapes_graph(), inference="none", advanced=False,
                                         allow_warnings=True)
    assert isinstance(results, Graph)
    focus = set(_focus(ext))
    shapes = shapes_graph()
    out = []
    for r in results.objects(None, SH.result):
        node = results.value(r, SH.focusNode)
        if str(node) not in focus:
            continue
        shape = results.value(r, SH.sourceShape)
        shape_path = shapes.value(shape, SH.path)
        value = results.value(r, SH.value)
        out.append(Result(
            focus=str(node), path=path_key(shape_path, shapes) if shape_path is not None else None,
            value=to_ox(value) if value is not None else None,
            severity=SEVERITIES.get(results.value(r, SH.resultSeverity) or SH.Violation, "Violation"),
            message=str(results.value(r, SH.resultMessage) or "does not conform"),
            shape=str(shape) if isinstance(shape, URIRef) else f"_:{shape}",
            component=str(results.value(r, SH.sourceConstraintComponent))))
    return list(dict.fromkeys(out))


def validate_extraction(ext: Extraction, store: EvidenceStore | None, replacing: Sequence[str] = (),
                        engine: Engine = "sparql") -> list[Finding]:
    return [_finding(r, ext) for r in shacl_results(ext, store, replacing, engine)]


def _finding(r: Result, ext: Extraction) -> Finding:
    sheet, row, column, text = ext.locate(r.focus, r.path, r.value)
    if text is None and isinstance(r.value, ox.Literal):
        text = r.value.value
    return Finding(severity=r.severity, message=r.message, sheet=sheet, row=row, column=column, value=text,
                   focus_node=r.focus, path=r.path,
                   source_shape=None if r.shape.startswith("_:") else r.shape, origin="shacl")


@dataclass
class Validated:
    """A workbook read, converted and validated: the report and (if it could be read) its triples.

    `changes` is what importing it would change (graph.batches.changes against the batches it supersedes,
    the list its change record is made of): empty for a first import, and for the same file again (its batch
    is already in the store; importing it again changes nothing, and batch-changes still lists the record it
    made when it was first imported)."""

    report: Report
    extraction: Extraction | None
    workbook_id: str | None = None
    supersedes: list[str] = field(default_factory=list)  # earlier revisions this batch replaces
    changes: list[Change] = field(default_factory=list)

    def change_rows(self) -> list[dict[str, object]]:
        """`changes` for a reader, one dict per change: change, kind, node, identifier and texts (label, title
        or quote) as this workbook has them (a gone node's: as the earlier batch had them), former_identifier
        and former_texts as the superseded batch had them (changed, gone), earlier (gone: that batch)."""
        if not self.changes or self.extraction is None:
            return []
        batch = ox.NamedNode(str(self.extraction.batch))
        now = described((q.subject, q.predicate, q.object)
                        for q in self.extraction.store.quads_for_pattern(None, None, None, batch))
        rows: list[dict[str, object]] = []
        for c in self.changes:
            d = now.get(c.node)
            rows.append({"change": c.change, "kind": c.kind, "node": c.node,
                         "identifier": d.identifier if d is not None and d.identifier is not None else c.identifier,
                         "texts": list(d.texts) if d is not None else list(c.texts),
                         "former_identifier": c.identifier, "former_texts": list(c.texts), "earlier": c.earlier})
        return rows


@dataclass
class Converted:
    """A workbook read and converted: the part of validating it that does not depend on the graph (the
    concepts cells name come from the vocabularies, which no batch changes). `wb` is None if unreadable."""

    paths: list[Path]
    report: Report
    wb: Workbook | None = None
    ext: Extraction | None = None
    started: dt.datetime | None = None


def convert_workbook(paths: Sequence[Path], concepts: ConceptIndex) -> Converted:
    """Read and convert a workbook (see `validate_workbook`)."""
    report = Report(input_name=", ".join(str(p) for p in paths))
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        wb = read_workbook(paths)
    except UnreadableWorkbook as exc:
        report.unreadable = True
        report.extend([exc.finding])
        return Converted(list(paths), report)
    ext = convert(wb, concepts)
    ext.store  # noqa: B018  parsed here, on the build's reader thread (`Extraction.extend` keeps it whole)
    return Converted(list(paths), report, wb, ext, started)


def validate_workbook(paths: Sequence[Path], store: EvidenceStore | None = None,
                      reviewer: str | None = None, *, workbook_id: str | None = None,
                      fulltext: Path | None = None, engine: Engine = "sparql") -> Validated:
    """Read, convert and validate a workbook against the store's graph (its neighbourhood only).

    `workbook_id` identifies the workbook across revisions (default: file or folder name, see
    graph.batches); `fulltext` is a folder of `{source_id}.txt` files to check quotes against (default:
    a `fulltext` folder inside the CSV folder or beside the .xlsx, when there is one); `engine` is the SHACL
    engine (see the module's docstring).
    """
    return validate_converted(convert_workbook(paths, concepts_for(store)), store, reviewer, workbook_id=workbook_id,
                              fulltext=fulltext, engine=engine)


def validate_converted(converted: Converted, store: EvidenceStore | None = None, reviewer: str | None = None, *,
                       workbook_id: str | None = None, fulltext: Path | None = None,
                       engine: Engine = "sparql") -> Validated:
    """`validate_workbook` of a workbook `convert_workbook` read and converted."""
    if converted.wb is None or converted.ext is None or converted.started is None:
        return Validated(converted.report, None)
    paths = converted.paths
    return validate_read(converted.wb, store, reviewer, workbook_id=workbook_id or default_workbook_id(paths),
                         fulltext=_fulltext_folder(paths) if fulltext is None else fulltext,
                         report=converted.report, engine=engine, converted=(converted.ext, converted.started))


def _fulltext_folder(paths: Sequence[Path]) -> Path | None:
    p = Path(paths[0])
    folder = p / "fulltext" if p.is_dir() else p.parent / "fulltext"
    return folder if folder.is_dir() else None


def validate_read(wb: Workbook, store: EvidenceStore | None, reviewer: str | None, *, workbook_id: str,
                  fulltext: Path | None = None, report: Report | None = None, engine: Engine = "sparql",
                  converted: tuple[Extraction, dt.datetime] | None = None) -> Validated:
    """Validate a workbook already read (the reader's findings are in `wb.findings`), and converted if
    `converted` gives its extraction and the time its reading began."""
    from .quotes import check_quotes

    report = report or Report(input_name=wb.name)
    if converted is None:
        started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        ext = convert(wb, concepts_for(store))
    else:
        ext, started = converted
    supersedes = [b for b in batches_of_workbook(store, workbook_id) if b != str(ext.batch)] if store else []
    replacing = [*supersedes, str(ext.batch)]
    quote_findings = check_quotes(ext, wb, fulltext) if fulltext is not None else []
    add_provenance(ext, wb, reviewer or default_reviewer(), shapes_version(), started,
                   workbook_id=workbook_id, revision_of=supersedes)
    found = _record_changes(ext, store, supersedes) if store is not None else []
    report.extend(wb.findings)
    report.extend(ext.findings)
    shacl = validate_extraction(ext, store, replacing, engine)
    # A missing column is reported once, not once per row; a cell the reader (or the conversion) already
    # faulted is not faulted again by SHACL.
    missing = {(sheet, col) for sheet, cols in wb.missing_columns.items() for col in cols}
    seen = {(f.sheet, f.row, f.column) for f in [*wb.findings, *ext.findings] if f.severity == "Violation"}
    for f in shacl:
        if (f.sheet, f.column) in missing or (f.sheet, f.row, f.column) in seen:
            continue
        report.findings.append(f)
    # a row already faulted is fixed first: its key is compared with the graph's once the row is valid
    faulted = {(f.sheet, f.row) for f in report.findings if f.severity == "Violation"}
    report.extend(f for f in graph_findings(ext, store, supersedes, replacing)
                  if not (f.path == KEY_COLLISION and (f.sheet, f.row) in faulted))
    report.extend(quote_findings)
    report.checked_triples = len(ext)
    return Validated(report, ext, workbook_id, supersedes, found)


# -- checks against the graph (the neighbourhood of the workbook) ---------------------------------------

KEY_CLASSES = {CMO.Document: ("sources", "source_id"), CMO.CMOConfiguration: ("cmocs", "cmoc_id"),
               CMO.EvidenceFragment: ("evidence", "evidence_id")}
KEY_COLLISION = "key-already-in-graph"
KIND_OF_IRI = {"source/": ("sources", "source_id"), "cmoc/": ("cmocs", "cmoc_id"),
               "evidence/": ("evidence", "evidence_id")}


def _norm_label(text: str) -> str:
    return " ".join(text.lower().split())


def graph_findings(ext: Extraction, store: EvidenceStore | None, supersedes: Sequence[str],
                   replacing: Sequence[str]) -> list[Finding]:
    """Keys already defined by another batch, duplicate CMOCs (same source and label), and references from
    other batches that superseding an earlier revision would break. All bounded by the workbook."""
    out: list[Finding] = []
    keyed: dict[str, tuple[str, str]] = {}
    classes = " ".join(f"<{k}>" for k in KEY_CLASSES)
    for r in ext.select(f"SELECT ?s ?k WHERE {{ ?s a ?k VALUES ?k {{ {classes} }} }}"):
        if r["s"].value in ext.origins:
            keyed[r["s"].value] = KEY_CLASSES[URIRef(r["k"].value)]
    # the same source and label twice in the workbook
    by_label: dict[tuple[str, str], str] = {}
    labelled = [(r["c"].value, r["s"].value, r["l"].value) for r in ext.select(
        f"SELECT ?c ?s ?l WHERE {{ ?c a <{CMO.CMOConfiguration}> ; <{CMO.statedIn}> ?s ; <{CMO.authorLabel}> ?l "
        "FILTER(isIRI(?c) && isIRI(?s)) }")]
    for c, source, label in sorted(labelled, key=lambda t: ext.origins.get(t[0], ("", 0))[1]):
        k = (source, _norm_label(label))
        if k in by_label:
            sheet, row = ext.origins[c]
            out.append(Finding("Violation", f"label '{label}' of source {_key(ext, source)} is already used by "
                               f"CMOC {_key(ext, by_label[k])} in this workbook: a duplicate CMOC?", sheet=sheet,
                               row=row, column="label", value=label, focus_node=c, origin="graph"))
        else:
            by_label[k] = c
    if store is None:
        return out
    # A key another batch defines may be restated word for word (the same extraction as .xlsx and as CSV);
    # saying something else about it would give the graph two descriptions of one thing.
    elsewhere = {str(s): bs for s, bs in defined_in_other_batches(store, map(URIRef, keyed), replacing).items()
                 if any(_description(store, str(s), b) != _description(ext, str(s)) for b in bs)}
    for s, batches in sorted(elsewhere.items()):
        sheet, column = keyed[s]
        _, row = ext.origins[s]
        key = _key(ext, s, default=s)
        theirs = sorted({_value(r["k"]) for r in store.select(
            f"SELECT ?k WHERE {{ GRAPH ?g {{ <{s}> <{DCTERMS.identifier}> ?k }} "
            f"VALUES ?g {{ {' '.join(f'<{b}>' for b in batches)} }} }}")} - {key})
        as_key = f" as '{', '.join(theirs)}' (the same identifier)" if theirs else ""
        out.append(Finding("Violation", f"{column} '{key}' is already in the graph{as_key}, described otherwise (batch "
                           f"{', '.join(batches)}): refer to it without repeating its row, choose another key, "
                           "or correct it by re-importing that batch's workbook under its own name",
                           sheet=sheet, row=row, column=column, value=key, focus_node=s, path=KEY_COLLISION,
                           origin="graph"))
    if labelled:
        values = " ".join(f"<{src}>" for src in sorted({t[1] for t in labelled}))
        rows = store.select(f"""SELECT DISTINCT ?c ?s ?l ?g WHERE {{ VALUES ?s {{ {values} }}
            GRAPH ?g {{ ?c a cmo:CMOConfiguration ; cmo:statedIn ?s ; cmo:authorLabel ?l }} }}""")
        existing: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for found in rows:
            graph_name = _value(found["g"])
            if graph_name in replacing:
                continue
            existing.setdefault((_value(found["s"]), _norm_label(_value(found["l"]))), []).append(
                (_value(found["c"]), graph_name))
        for c, source, label in labelled:
            for other, batch in existing.get((source, _norm_label(label)), []):
                if other == c or c in elsewhere:
                    continue
                sheet, row = ext.origins[c]
                out.append(Finding("Violation", f"a CMOC of source {_key(ext, source)} labelled '{label}' is "
                                   f"already in the graph: <{other}> (batch {batch}); a duplicate CMOC?",
                                   sheet=sheet, row=row, column="label", value=label, focus_node=c,
                                   origin="graph"))
    for old in supersedes:
        for d in dependants(store, old, replacement=ext.graph, also_removed=replacing):
            lost: tuple[str | None, str | None] = next(
                ((sh, col) for prefix, (sh, col) in KIND_OF_IRI.items() if d.target.startswith(str(ID) + prefix)),
                (None, None))
            out.append(Finding("Violation", f"this revision no longer holds <{d.target}>, which batch {d.batch} "
                               f"refers to (<{d.subject}> <{d.predicate}>); keep that row, or correct or retract "
                               f"batch {d.batch} first", sheet=lost[0], column=lost[1], value=d.target,
                               focus_node=d.subject, path=d.predicate, origin="graph"))
    return out


def _value(term: object) -> str:
    value = getattr(term, "value", None)
    return str(value) if value is not None else ""


def _key(ext: Extraction, node: str, default: str | None = None) -> str:
    """The key (dcterms:identifier) the workbook gives a node."""
    ident = next((o.value for p, o in ext.about(node) if p == str(DCTERMS.identifier)), None)
    return ident if ident is not None else default if default is not None else node.rsplit("/", 1)[-1]


PARTS = ("context", "mechanism", "resource", "reasoning", "outcome", "target", "quote")


def _description(source: Extraction | EvidenceStore, node: str, batch: str | None = None) -> set[tuple[str, ...]]:
    """What a row says about a keyed node and its parts (context, quote, ...), as comparable strings."""
    nodes = [node, *(f"{node}/{p}" for p in PARTS)]
    if isinstance(source, Extraction):
        return {(n, p, *_term_key(o)) for n in nodes for p, o in source.about(n)}
    values = " ".join(f"<{n}>" for n in nodes)
    rows = source.select(f"SELECT ?s ?p ?o WHERE {{ VALUES ?s {{ {values} }} GRAPH <{batch}> {{ ?s ?p ?o }} }}")
    return {(_value(r["s"]), _value(r["p"]), *_term_key(r["o"])) for r in rows}  # type: ignore[arg-type]


def _term_key(o: Term) -> tuple[str, ...]:
    if isinstance(o, ox.Literal):
        return (o.value, o.language or "", o.datatype.value if not o.language else "")
    return (o.value,)


def _record_changes(ext: Extraction, store: EvidenceStore, supersedes: Sequence[str]) -> list[Change]:
    """A revision records in its own graph what it changes (graph.batches.changes), worked out against the
    graphs of the batches it supersedes, which the import drops; here, so that what is validated is what is
    written. Returns those changes (what importing it would change). The same file imported again keeps the
    record it made when first imported (the graphs it was made against are gone) and returns none: importing
    it again changes nothing."""
    batch = str(ext.batch)
    if supersedes:
        now = [(q.subject, q.predicate, q.object)
               for q in ext.store.quads_for_pattern(None, None, None, ox.NamedNode(batch))]
        found = changes(store, batch, now, supersedes)
        add_to_provenance(ext, change_triples(batch, found))
        return found
    if store.has_graph(batch):
        add_to_provenance(ext, recorded_changes(store, batch) or [])
    return []
