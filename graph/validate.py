"""SHACL validation of an extraction, with each result mapped back to its sheet, row and column.

Only the incoming batch is validated, together with the types of the nodes it references that the store
already holds (its neighbourhood), so the cost follows the workbook, not the size of the graph.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF
from rdflib.term import Node

from .importer import Extraction, add_provenance, convert, default_reviewer, path_key
from .namespaces import SH
from .report import Finding, Report, Severity
from .vocab import ONTOLOGY_FILE, ROOT, ConceptIndex, vocab_paths
from .workbook import UnreadableWorkbook, read_workbook

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


def validate_extraction(ext: Extraction, store: EvidenceStore | None) -> list[Finding]:
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
        for s, t in store.types_of(referenced):
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


def validate_workbook(paths: Sequence[Path], store: EvidenceStore | None = None,
                      reviewer: str | None = None) -> Validated:
    name = ", ".join(str(p) for p in paths)
    report = Report(input_name=name)
    try:
        wb = read_workbook(paths)
    except UnreadableWorkbook as exc:
        report.unreadable = True
        report.extend([exc.finding])
        return Validated(report, None)
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ext = convert(wb, _concepts(store))
    add_provenance(ext, wb, reviewer or default_reviewer(), shapes_version(), started)
    report.extend(wb.findings)
    shacl = validate_extraction(ext, store)
    # A missing column is reported once, not once per row; a cell the reader already faulted is not
    # faulted again by SHACL.
    missing = {(sheet, col) for sheet, cols in wb.missing_columns.items() for col in cols}
    seen = {(f.sheet, f.row, f.column) for f in wb.findings if f.severity == "Violation"}
    for f in shacl:
        if (f.sheet, f.column) in missing or (f.sheet, f.row, f.column) in seen:
            continue
        report.findings.append(f)
    report.checked_triples = len(ext.graph)
    return Validated(report, ext)
