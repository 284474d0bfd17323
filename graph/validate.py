"""SHACL validation of an extraction, with each result mapped back to its sheet, row and column.

Only the incoming batch is validated, together with the types of the nodes it references that the store
already holds (its neighbourhood), so the cost follows the workbook, not the size of the graph.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF
from rdflib.term import Node

from .batches import batches_of_workbook, default_workbook_id, defined_in_other_batches, dependants, types_outside
from .importer import Extraction, add_provenance, convert, default_reviewer, path_key
from .namespaces import CMO, ID, SH
from .report import Finding, Report, Severity
from .vocab import ONTOLOGY_FILE, ROOT, ConceptIndex, vocab_paths
from .workbook import UnreadableWorkbook, Workbook, read_workbook

if TYPE_CHECKING:
    from .store import EvidenceStore

SHAPES_FILE = ROOT / "shapes" / "cmokg-shapes.ttl"
SHAPES_IRI = URIRef("https://w3id.org/cmokg/shapes")
SEVERITIES: dict[Node, Severity] = {SH.Violation: "Violation", SH.Warning: "Warning", SH.Info: "Info"}


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


def _concepts(store: EvidenceStore | None) -> ConceptIndex:
    if store is not None:
        index = store.concept_index()
        if index.by_class:
            return index
    return ConceptIndex.from_graph(ontology_graph())


def validate_extraction(ext: Extraction, store: EvidenceStore | None,
                        replacing: Sequence[str] = ()) -> list[Finding]:
    from pyshacl import validate

    # The ontology and vocabularies go into the data graph itself (pyshacl's ont_graph mix-in copies only
    # class and property definitions, not the concepts that sh:class must find).
    data = Graph()
    for triple in ontology_graph():
        data.add(triple)
    for triple in ext.graph:
        data.add(triple)
    referenced = ext.referenced()
    if store is not None and referenced:
        # types from every graph but the batches this import replaces: a node only they define is gone
        for s, t in types_outside(store, referenced, replacing):
            data.add((s, RDF.type, t))
    focus = [*sorted(str(n) for n in ext.origins), str(ext.batch)]
    _conforms, results, _text = validate(
        data,
        shacl_graph=shapes_graph(),
        inference="none",
        advanced=False,
        allow_warnings=True,
        focus_nodes=focus,
    )
    assert isinstance(results, Graph)
    return list(_findings(results, ext))


def _findings(results: Graph, ext: Extraction) -> list[Finding]:
    shapes = shapes_graph()
    out = []
    for r in results.subjects(RDF.type, SH.ValidationResult):
        focus = results.value(r, SH.focusNode)
        path_node = results.value(r, SH.resultPath)
        value = results.value(r, SH.value)
        shape = results.value(r, SH.sourceShape)
        path = None
        if path_node is not None:
            # the result graph holds a copy of complex paths; read them from the shapes graph
            path = path_key(path_node, results) if not isinstance(path_node, URIRef) else str(path_node)
            shape_path = shapes.value(shape, SH.path) if shape is not None else None
            if path == "?" and shape_path is not None:
                path = path_key(shape_path, shapes)
        sheet, row, column, text = ext.locate(focus, path, value) if focus is not None else (None,) * 4
        message = str(results.value(r, SH.resultMessage) or "does not conform")
        if text is None and isinstance(value, Literal):
            text = str(value)
        out.append(Finding(
            severity=SEVERITIES.get(results.value(r, SH.resultSeverity) or SH.Violation, "Violation"),
            message=message,
            sheet=sheet,
            row=row,
            column=column,
            value=text,
            focus_node=str(focus) if focus is not None else None,
            path=path,
            source_shape=str(shape) if isinstance(shape, URIRef) else None,
            origin="shacl",
        ))
    return out


@dataclass
class Validated:
    """A workbook read, converted and validated: the report and (if it could be read) its triples."""

    report: Report
    extraction: Extraction | None
    workbook_id: str | None = None
    supersedes: list[str] = field(default_factory=list)  # earlier revisions this batch replaces


def validate_workbook(paths: Sequence[Path], store: EvidenceStore | None = None,
                      reviewer: str | None = None, *, workbook_id: str | None = None,
                      fulltext: Path | None = None) -> Validated:
    """Read, convert and validate a workbook against the store's graph (its neighbourhood only).

    `workbook_id` identifies the workbook across revisions (default: file or folder name, see
    graph.batches); `fulltext` is a folder of `{source_id}.txt` files to check quotes against (default:
    a `fulltext` folder inside the CSV folder or beside the .xlsx, when there is one).
    """
    name = ", ".join(str(p) for p in paths)
    report = Report(input_name=name)
    try:
        wb = read_workbook(paths)
    except UnreadableWorkbook as exc:
        report.unreadable = True
        report.extend([exc.finding])
        return Validated(report, None)
    if fulltext is None:
        fulltext = _fulltext_folder(paths)
    return validate_read(wb, store, reviewer, workbook_id=workbook_id or default_workbook_id(paths),
                         fulltext=fulltext, report=report)


def _fulltext_folder(paths: Sequence[Path]) -> Path | None:
    p = Path(paths[0])
    folder = p / "fulltext" if p.is_dir() else p.parent / "fulltext"
    return folder if folder.is_dir() else None


def validate_read(wb: Workbook, store: EvidenceStore | None, reviewer: str | None, *, workbook_id: str,
                  fulltext: Path | None = None, report: Report | None = None) -> Validated:
    """Validate a workbook already read (the reader's findings are in `wb.findings`)."""
    from .quotes import check_quotes

    report = report or Report(input_name=wb.name)
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ext = convert(wb, _concepts(store))
    supersedes = [b for b in batches_of_workbook(store, workbook_id) if b != str(ext.batch)] if store else []
    replacing = [*supersedes, str(ext.batch)]
    quote_findings = check_quotes(ext, wb, fulltext) if fulltext is not None else []
    add_provenance(ext, wb, reviewer or default_reviewer(), shapes_version(), started,
                   workbook_id=workbook_id, revision_of=supersedes)
    report.extend(wb.findings)
    shacl = validate_extraction(ext, store, replacing)
    # A missing column is reported once, not once per row; a cell the reader already faulted is not
    # faulted again by SHACL.
    missing = {(sheet, col) for sheet, cols in wb.missing_columns.items() for col in cols}
    seen = {(f.sheet, f.row, f.column) for f in wb.findings if f.severity == "Violation"}
    for f in shacl:
        if (f.sheet, f.column) in missing or (f.sheet, f.row, f.column) in seen:
            continue
        report.findings.append(f)
    # a row already faulted is fixed first: its key is compared with the graph's once the row is valid
    faulted = {(f.sheet, f.row) for f in report.findings if f.severity == "Violation"}
    report.extend(f for f in graph_findings(ext, store, supersedes, replacing)
                  if not (f.path == KEY_COLLISION and (f.sheet, f.row) in faulted))
    report.extend(quote_findings)
    report.checked_triples = len(ext.graph)
    return Validated(report, ext, workbook_id, supersedes)


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
    g = ext.graph
    keyed: dict[URIRef, tuple[str, str]] = {}
    for klass, where in KEY_CLASSES.items():
        for s in g.subjects(RDF.type, klass):
            if isinstance(s, URIRef) and s in ext.origins:
                keyed[s] = where
    # the same source and label twice in the workbook
    by_label: dict[tuple[str, str], URIRef] = {}
    labelled: list[tuple[URIRef, URIRef, str]] = []
    for node in g.subjects(RDF.type, CMO.CMOConfiguration):
        stated, label_node = g.value(node, CMO.statedIn), g.value(node, CMO.authorLabel)
        if not isinstance(node, URIRef) or not isinstance(stated, URIRef) or label_node is None:
            continue
        labelled.append((node, stated, str(label_node)))
    for c, source, label in sorted(labelled, key=lambda t: ext.origins.get(t[0], ("", 0))[1]):
        k = (str(source), _norm_label(label))
        if k in by_label:
            sheet, row = ext.origins[c]
            out.append(Finding("Violation", f"label '{label}' of source {_key(g, source)} is already used by "
                               f"CMOC {_key(g, by_label[k])} in this workbook: a duplicate CMOC?", sheet=sheet,
                               row=row, column="label", value=label, focus_node=str(c), origin="graph"))
        else:
            by_label[k] = c
    if store is None:
        return out
    # A key another batch defines may be restated word for word (the same extraction as .xlsx and as CSV);
    # saying something else about it would give the graph two descriptions of one thing.
    elsewhere = {s: bs for s, bs in defined_in_other_batches(store, keyed, replacing).items()
                 if any(_description(store, s, b) != _description(g, s) for b in bs)}
    for s, batches in sorted(elsewhere.items()):
        sheet, column = keyed[s]
        _, row = ext.origins[s]
        key = str(g.value(s, DCTERMS.identifier) or s)
        out.append(Finding("Violation", f"{column} '{key}' is already in the graph, described otherwise (batch "
                           f"{', '.join(batches)}): refer to it without repeating its row, choose another key, "
                           "or correct it by re-importing that batch's workbook under its own name",
                           sheet=sheet, row=row, column=column, value=key, focus_node=str(s), path=KEY_COLLISION,
                           origin="graph"))
    if labelled:
        values = " ".join(f"<{src}>" for src in sorted({str(t[1]) for t in labelled}))
        rows = store.select(f"""SELECT DISTINCT ?c ?s ?l ?g WHERE {{ VALUES ?s {{ {values} }}
            GRAPH ?g {{ ?c a cmo:CMOConfiguration ; cmo:statedIn ?s ; cmo:authorLabel ?l }} }}""")
        existing: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for r in rows:
            graph_name = _value(r["g"])
            if graph_name in replacing:
                continue
            existing.setdefault((_value(r["s"]), _norm_label(_value(r["l"]))), []).append(
                (_value(r["c"]), graph_name))
        for c, source, label in labelled:
            for other, batch in existing.get((str(source), _norm_label(label)), []):
                if other == str(c) or c in elsewhere:
                    continue
                sheet, row = ext.origins[c]
                out.append(Finding("Violation", f"a CMOC of source {_key(g, source)} labelled '{label}' is "
                                   f"already in the graph: <{other}> (batch {batch}); a duplicate CMOC?",
                                   sheet=sheet, row=row, column="label", value=label, focus_node=str(c),
                                   origin="graph"))
    for old in supersedes:
        for d in dependants(store, old, replacement=g, also_removed=replacing):
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


def _key(g: Graph, node: Node) -> str:
    ident = g.value(node, DCTERMS.identifier)
    if ident is not None:
        return str(ident)
    return str(node).rsplit("/", 1)[-1]


PARTS = ("context", "mechanism", "resource", "reasoning", "outcome", "target", "quote")


def _description(source: Graph | EvidenceStore, node: URIRef, batch: str | None = None) -> set[tuple[str, ...]]:
    """What a row says about a keyed node and its parts (context, quote, ...), as comparable strings."""
    nodes = [str(node), *(f"{node}/{p}" for p in PARTS)]
    out: set[tuple[str, ...]] = set()
    if isinstance(source, Graph):
        for n in nodes:
            for p, o in source.predicate_objects(URIRef(n)):
                out.add((n, str(p), *_term_key(o)))
        return out
    values = " ".join(f"<{n}>" for n in nodes)
    for r in source.select(f"SELECT ?s ?p ?o WHERE {{ VALUES ?s {{ {values} }} GRAPH <{batch}> {{ ?s ?p ?o }} }}"):
        obj = r["o"]
        if isinstance(obj, ox.Literal):
            okey: tuple[str, ...] = (obj.value, obj.language or "", obj.datatype.value if not obj.language else "")
        else:
            okey = (_value(obj),)
        out.add((_value(r["s"]), _value(r["p"]), *okey))
    return out


def _term_key(o: Node) -> tuple[str, ...]:
    if isinstance(o, Literal):
        datatype = "" if o.language else str(o.datatype or "http://www.w3.org/2001/XMLSchema#string")
        return (str(o), o.language or "", datatype)
    return (str(o),)
