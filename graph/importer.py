"""Workbook rows to triples, with deterministic IRIs, remembering which cell each triple came from.

The conversion never refuses a row: whatever a reviewer typed becomes triples, and SHACL judges them.
Where a cell cannot become a well-typed value (an unknown concept, a malformed date), the importer writes
something SHACL will reject, and `Extraction.locate` maps the result back to sheet, row and column.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, XSD
from rdflib.term import Node

from . import __version__
from .namespaces import BATCH_PREFIX, CITO, CMO, FABIO, ID, OA, PRISM, SH, slug
from .vocab import ConceptIndex
from .workbook import Row, Workbook

DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
ORCID = re.compile(r"^(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
Location = tuple[str | None, int | None, str | None, str | None]
DOC_CLASSES = {"review": CMO.Review, "study": CMO.Study, "grey": CMO.GreyLiterature}


def split_cell(text: str) -> list[str]:
    """Cells holding several values separate them with ';'."""
    return [part.strip() for part in text.split(";") if part.strip()]


def source_iri(source_id: str) -> URIRef:
    return ID[f"source/{slug(source_id)}"]


def cmoc_iri(cmoc_id: str) -> URIRef:
    return ID[f"cmoc/{slug(cmoc_id)}"]


def evidence_iri(evidence_id: str) -> URIRef:
    return ID[f"evidence/{slug(evidence_id)}"]


def agent_iri(who: str) -> URIRef:
    m = ORCID.match(who.strip())
    if m:
        return URIRef(f"https://orcid.org/{m.group(1)}")
    return ID[f"agent/{slug(who) or 'unknown'}"]


def batch_iri(sha256: str) -> URIRef:
    return URIRef(BATCH_PREFIX + sha256[:16])


def path_key(path: Node, shapes: Graph | None = None) -> str:
    """A SHACL property path as a short key: 'p', '^p', 'p|q' (alternatives)."""
    if isinstance(path, URIRef):
        return str(path)
    if shapes is None:
        return "?"
    inverse = shapes.value(path, SH.inversePath)
    if inverse is not None:
        return "^" + path_key(inverse, shapes)
    alternatives = shapes.value(path, SH.alternativePath)
    if alternatives is not None:
        return "|".join(path_key(p, shapes) for p in shapes.items(alternatives))
    return "?"


@dataclass
class Extraction:
    """The triples of one workbook and where each of their subjects and properties came from."""

    graph: Graph
    batch: URIRef
    origins: dict[URIRef, tuple[str, int]] = field(default_factory=dict)
    cells: dict[tuple[URIRef, str], str] = field(default_factory=dict)
    raw: dict[tuple[URIRef, str, Node], str] = field(default_factory=dict)

    def subjects(self) -> set[URIRef]:
        return {s for s in self.graph.subjects() if isinstance(s, URIRef)}

    def referenced(self) -> set[URIRef]:
        """IRIs the triples mention (cited, cited from, pointed at) without typing them: the graph must."""
        typed = {s for s in self.graph.subjects(RDF.type) if isinstance(s, URIRef)}
        nodes = {n for t in self.graph for n in (t[0], t[2]) if isinstance(n, URIRef)}
        return nodes - typed

    def locate(self, focus: Node, path: str | None, value: Node | None) -> Location:
        """(sheet, row, column, cell text) for a SHACL result on `focus` along `path`."""
        if not isinstance(focus, URIRef) or focus not in self.origins:
            return None, None, None, None
        sheet, row = self.origins[focus]
        column = self.cells.get((focus, path)) if path else None
        text = None
        if path and value is not None:
            text = self.raw.get((focus, path, value))
            if text is None and isinstance(value, Literal):
                text = str(value)
        return sheet, row, column, text


class _Builder:
    def __init__(self, workbook: Workbook, concepts: ConceptIndex) -> None:
        self.wb = workbook
        self.concepts = concepts
        self.g = Graph()
        self.ext = Extraction(self.g, batch_iri(workbook.sha256))

    # -- helpers that remember where a triple came from ---------------------------------------------
    def node(self, iri: URIRef, row: Row, *types: URIRef) -> URIRef:
        self.ext.origins.setdefault(iri, (row.sheet, row.number))
        for t in types:
            self.g.add((iri, RDF.type, t))
        return iri

    def column(self, subject: URIRef, path: URIRef | str, column: str) -> None:
        self.ext.cells.setdefault((subject, str(path)), column)

    def text(self, subject: URIRef, pred: URIRef, row: Row, column: str) -> None:
        self.column(subject, pred, column)
        value = row.get(column)
        if value:
            self.g.add((subject, pred, Literal(value)))

    def ref(self, subject: URIRef, pred: URIRef, obj: URIRef, text: str, column: str) -> None:
        self.column(subject, pred, column)
        self.g.add((subject, pred, obj))
        self.ext.raw[(subject, str(pred), obj)] = text

    def concept(self, subject: URIRef, pred: URIRef, row: Row, column: str) -> None:
        self.column(subject, pred, column)
        for part in split_cell(row.get(column)):
            iri, _ = self.concepts.resolve(column, part)
            self.ref(subject, pred, iri, part, column)

    # -- sheets -------------------------------------------------------------------------------------
    def sources(self) -> None:
        for row in self.wb.rows("sources"):
            key = row.get("source_id")
            if not key:
                s = self.node(ID[f"source/row-{row.number}"], row, CMO.Document)
            else:
                s = self.node(source_iri(key), row, CMO.Document)
            self.text(s, DCTERMS.identifier, row, "source_id")
            self.column(s, RDF.type, "type")
            klass = DOC_CLASSES.get(row.get("type").strip().lower())
            if klass is not None:
                self.g.add((s, RDF.type, klass))
            self.text(s, DCTERMS.title, row, "title")
            self.text(s, CMO.authorList, row, "authors")
            self.column(s, DCTERMS.creator, "authors")
            for author in split_cell(row.get("authors")):
                person = self.node(ID[f"person/{slug(author) or 'unknown'}"], row, PROV.Person)
                self.g.add((person, RDFS.label, Literal(author)))
                self.ref(s, DCTERMS.creator, person, author, "authors")
            self.column(s, FABIO.hasPublicationYear, "year")
            year = row.get("year")
            if year:
                typed = Literal(year, datatype=XSD.gYear) if re.fullmatch(r"\d{4}", year) else Literal(year)
                self.g.add((s, FABIO.hasPublicationYear, typed))
            self.text(s, PRISM.publicationName, row, "venue")
            self.column(s, PRISM.doi, "doi")
            doi = DOI_PREFIX.sub("", row.get("doi")).strip()
            if doi:
                self.g.add((s, PRISM.doi, Literal(doi)))
            self.text(s, FABIO.hasPubMedId, row, "pmid")
            self.column(s, FABIO.hasURL, "url")
            url = row.get("url")
            if url:
                ok = re.fullmatch(r"https?://\S+", url) is not None
                self.g.add((s, FABIO.hasURL, Literal(url, datatype=XSD.anyURI) if ok else Literal(url)))
            self.column(s, f"{PRISM.doi}|{FABIO.hasPubMedId}|{FABIO.hasURL}", "doi")
            self.column(s, f"^{CITO.cites}", "cited_by")
            for citing in split_cell(row.get("cited_by")):
                self.g.add((source_iri(citing), CITO.cites, s))
                self.ext.raw[(s, f"^{CITO.cites}", source_iri(citing))] = citing

    def cmocs(self) -> None:
        for row in self.wb.rows("cmocs"):
            key = row.get("cmoc_id")
            c = self.node(cmoc_iri(key) if key else ID[f"cmoc/row-{row.number}"], row, CMO.CMOConfiguration)
            self.text(c, DCTERMS.identifier, row, "cmoc_id")
            self.column(c, CMO.statedIn, "source_id")
            if row.get("source_id"):
                self.ref(c, CMO.statedIn, source_iri(row.get("source_id")), row.get("source_id"), "source_id")
            self.text(c, CMO.authorLabel, row, "label")
            self.text(c, CMO.statement, row, "statement")
            for part, pred, klass, column in (
                ("context", CMO.hasContext, CMO.Context, "context"),
                ("outcome", CMO.hasOutcome, CMO.Outcome, "outcome"),
            ):
                self.column(c, pred, column)
                if row.get(column):
                    n = self.node(URIRef(f"{c}/{part}"), row, klass)
                    self.g.add((c, pred, n))
                    self.text(n, CMO.description, row, column)
            m = self.node(URIRef(f"{c}/mechanism"), row, CMO.Mechanism)
            self.g.add((c, CMO.hasMechanism, m))
            self.column(m, f"{CMO.hasResource}|{CMO.hasReasoning}", "mechanism_resource")
            for part, pred, klass, column in (
                ("resource", CMO.hasResource, CMO.MechanismResource, "mechanism_resource"),
                ("reasoning", CMO.hasReasoning, CMO.MechanismReasoning, "mechanism_reasoning"),
            ):
                self.column(m, pred, column)
                if row.get(column):
                    n = self.node(URIRef(f"{c}/{part}"), row, klass)
                    self.g.add((m, pred, n))
                    self.text(n, CMO.description, row, column)
            self.concept(c, CMO.inSetting, row, "setting")
            self.concept(c, CMO.drawsOn, row, "framework_resource")
            self.column(c, CMO.leadsTo, "leads_to")
            for target in split_cell(row.get("leads_to")):
                self.ref(c, CMO.leadsTo, cmoc_iri(target), target, "leads_to")
            self.column(c, CMO.refines, "programme_theory")
            theory = row.get("programme_theory")
            if theory:
                t = self.node(ID[f"theory/{slug(row.get('source_id')) or 'unknown'}/{slug(theory)}"], row,
                              CMO.ProgrammeTheory)
                self.g.add((t, RDFS.label, Literal(theory)))
                if row.get("source_id"):
                    self.g.add((t, CMO.theoryOf, source_iri(row.get("source_id"))))
                self.ref(c, CMO.refines, t, theory, "programme_theory")
            self.column(c, CMO.extractedBy, "extracted_by")
            who = row.get("extracted_by")
            if who:
                a = self.node(agent_iri(who), row, PROV.Agent)
                self.g.add((a, RDFS.label, Literal(who)))
                self.ref(c, CMO.extractedBy, a, who, "extracted_by")
            self.column(c, DCTERMS.created, "extracted_on")
            on = row.get("extracted_on")
            if on:
                self.g.add((c, DCTERMS.created, _date_literal(on)))
            self.column(c, f"^{CMO.supports}|^{CMO.refutes}", "cmoc_id")

    def evidence(self) -> None:
        for row in self.wb.rows("evidence"):
            key = row.get("evidence_id")
            e = self.node(evidence_iri(key) if key else ID[f"evidence/row-{row.number}"], row,
                          CMO.EvidenceFragment)
            self.text(e, DCTERMS.identifier, row, "evidence_id")
            relation = {"supports": CMO.supports, "refutes": CMO.refutes}.get(row.get("relation").strip().lower())
            # the fragment bears on no CMOC: blame the relation if it is unusable, else the missing cmoc_id
            self.column(e, f"{CMO.supports}|{CMO.refutes}", "relation" if relation is None else "cmoc_id")
            for pred in (CMO.supports, CMO.refutes):
                self.column(e, pred, "cmoc_id")
            if relation is not None and row.get("cmoc_id"):
                self.ref(e, relation, cmoc_iri(row.get("cmoc_id")), row.get("cmoc_id"), "cmoc_id")
            target = self.node(URIRef(f"{e}/target"), row, OA.SpecificResource)
            self.g.add((e, OA.hasTarget, target))
            self.column(target, OA.hasSource, "source_id")
            if row.get("source_id"):
                self.ref(target, OA.hasSource, source_iri(row.get("source_id")), row.get("source_id"), "source_id")
            self.column(target, OA.hasSelector, "quote")
            if row.get("quote"):
                q = self.node(URIRef(f"{e}/quote"), row, OA.TextQuoteSelector)
                self.g.add((target, OA.hasSelector, q))
                self.text(q, OA.exact, row, "quote")
            self.text(e, CMO.page, row, "page")
            self.text(e, CMO.section, row, "section")
            self.concept(e, CMO.interpretiveLevel, row, "interpretive_level")
            self.concept(e, CMO.relevance, row, "relevance")
            self.concept(e, CMO.rigour, row, "rigour")


def _date_literal(text: str) -> Literal:
    try:
        return Literal(dt.date.fromisoformat(text).isoformat(), datatype=XSD.date)
    except ValueError:
        return Literal(text)


def default_reviewer() -> str:
    return os.environ.get("CMOKG_REVIEWER") or getpass.getuser()


def convert(workbook: Workbook, concepts: ConceptIndex) -> Extraction:
    """All triples a workbook stands for (without the batch's provenance)."""
    b = _Builder(workbook, concepts)
    b.sources()
    b.cmocs()
    b.evidence()
    return b.ext


def add_provenance(ext: Extraction, workbook: Workbook, reviewer: str, shapes_version: str,
                   started: dt.datetime, *, workbook_id: str | None = None,
                   revision_of: Sequence[str] = ()) -> None:
    """Describe the batch (who, when, which file, which shapes) inside its own named graph.

    `workbook_id` names the workbook across its revisions (`prov:specializationOf id:workbook/{slug}`);
    `revision_of` lists the earlier batches of that workbook this one supersedes (`prov:wasRevisionOf`).
    """
    from .batches import workbook_iri

    g, batch = ext.graph, ext.batch
    if workbook_id is not None:
        g.add((batch, PROV.specializationOf, workbook_iri(workbook_id)))
    for old in revision_of:
        g.add((batch, PROV.wasRevisionOf, URIRef(old)))
    ended = dt.datetime.now(dt.UTC).replace(microsecond=0)  # HermiT rejects sub-millisecond digits
    agent = agent_iri(reviewer)
    activity = URIRef(f"{batch}/activity")
    g.add((batch, RDF.type, CMO.ImportBatch))
    g.add((batch, RDF.type, PROV.Entity))
    g.add((batch, RDFS.label, Literal(workbook.name)))
    g.add((batch, CMO.sourceFileName, Literal(";".join(p.name for p in workbook.paths))))
    g.add((batch, CMO.sha256, Literal(workbook.sha256)))
    g.add((batch, CMO.shapesVersion, Literal(shapes_version)))
    g.add((batch, CMO.softwareVersion, Literal(__version__)))
    g.add((batch, PROV.wasAttributedTo, agent))
    g.add((batch, PROV.generatedAtTime, Literal(ended.isoformat(), datatype=XSD.dateTime)))
    g.add((batch, PROV.wasGeneratedBy, activity))
    g.add((activity, RDF.type, PROV.Activity))
    g.add((activity, PROV.startedAtTime, Literal(started.isoformat(), datatype=XSD.dateTime)))
    g.add((activity, PROV.endedAtTime, Literal(ended.isoformat(), datatype=XSD.dateTime)))
    g.add((activity, PROV.wasAssociatedWith, agent))
    g.add((agent, RDF.type, PROV.Agent))
    if (agent, RDFS.label, None) not in g:
        g.add((agent, RDFS.label, Literal(reviewer)))
    # count includes this triple itself
    g.add((batch, CMO.tripleCount, Literal(len(g) + 1, datatype=XSD.integer)))


__all__ = ["BNode", "Extraction", "add_provenance", "convert", "path_key"]
