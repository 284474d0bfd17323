"""Workbook rows to triples, with deterministic IRIs, remembering which cell each triple came from.

The conversion never refuses a row: whatever a reviewer typed becomes triples, and SHACL judges them.
Where a cell cannot become a well-typed value (an unknown concept, a malformed date), the importer writes
something SHACL will reject, and `Extraction.locate` maps the result back to sheet, row and column.
Two things only the conversion can see are reported by it (`Extraction.findings`): a key or name with no
letter or digit to make an IRI of, and a key that makes the same IRI as an earlier row's different key
(`fx_c1` after `fx-c1`); a row of the latter kind is not converted, like a duplicate row.

Triples are written directly as N-Triples lines: Oxigraph parses them (in Rust) into the in-memory store
validation queries and into the embedded store, with no per-term Python objects, which were the cost of
conversion at scale (rdflib Graphs, then pyoxigraph terms). `Extraction.graph` still gives an rdflib
Graph of the same triples for callers that want one.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, XSD
from rdflib.term import Node

from . import __version__
from .namespaces import BATCH_PREFIX, CITO, CMO, FABIO, ID, OA, PRISM, SH, slug
from .report import Finding
from .vocab import ConceptIndex
from .workbook import Row, Workbook

DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
# An ORCID iD as reviewers write it: bare, as its URI, or as ORCID displays it (`orcid.org/…`); ASCII digits
# only, the check character X in either case. Every form names the same agent, <https://orcid.org/…>.
ORCID = re.compile(r"^(?:(?:https?://)?(?:www\.)?orcid\.org/)?([0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9X])/?$",
                   re.IGNORECASE)
YEAR = re.compile(r"[0-9]{4}")  # ASCII digits: `\d` also matches other scripts' digits, which no xsd:gYear holds
Location = tuple[str | None, int | None, str | None, str | None]
Term = ox.NamedNode | ox.BlankNode | ox.Literal
XSD_STRING = str(XSD.string)


def split_cell(text: str) -> list[str]:
    """Cells holding several values separate them with ';'."""
    return [part.strip() for part in text.split(";") if part.strip()]


# The keyed rows' IRIs: a prefix and the slug of the row's key; a row whose key is blank, or has no letter
# or digit, is `{prefix}_row-{row number}` (a slug never holds '_', so no key can name it).
SOURCE, CMOC, EVIDENCE = f"{ID}source/", f"{ID}cmoc/", f"{ID}evidence/"


def agent_iri(who: str) -> URIRef:
    """An ORCID, or `id:agent/{slug}`; a name with no letter or digit (a reviewer given on the command line;
    in a cell it is a violation) is named by a hash of it, so that two such names stay two agents."""
    m = ORCID.match(who.strip())
    if m:
        return URIRef(f"https://orcid.org/{m.group(1).upper()}")
    return ID[f"agent/{slug(who) or '_' + hashlib.sha256(who.encode('utf-8')).hexdigest()[:16]}"]


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


def to_ox(term: Node) -> Term:
    """An rdflib term as a pyoxigraph term (plain literals are xsd:string)."""
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype or XSD_STRING)))
    raise TypeError(f"not an RDF term: {term!r}")


def _key(term: object) -> str:
    """How a node is keyed in `origins`, `cells` and `raw`: its IRI, or a literal's text."""
    value = getattr(term, "value", None)
    return value if isinstance(value, str) else str(term)


def literal(text: str, datatype: str | None = None) -> str:
    """A literal in N-Triples syntax."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"^^<{datatype}>' if datatype else f'"{escaped}"'


def _nt(term: Node) -> str:
    if isinstance(term, URIRef):
        return f"<{checked_iri(str(term), str(term))}>"
    if isinstance(term, Literal):
        text = literal(str(term), str(term.datatype) if term.datatype else None)
        return f"{text}@{term.language}" if term.language else text
    raise TypeError(f"not an IRI or a literal: {term!r}")


def checked_iri(text: str, fallback: str) -> str:
    """An IRI typed into a cell, if it is one (Oxigraph's parser decides); otherwise `fallback`."""
    try:
        return ox.NamedNode(text).value
    except ValueError:
        return fallback


@dataclass
class Extraction:
    """The triples of one workbook and where each of their subjects and properties came from.

    `lines` holds the triples as N-Triples lines (an ordered set). `origins` maps a subject IRI to (sheet,
    row); `cells` maps (subject IRI, path key) to a column; `raw` maps (subject IRI, path key, value IRI) to
    the cell text that named the value; `rows` maps (sheet, row) to the node a converted keyed row defines.
    `findings` are the violations only the conversion sees (see the module's docstring). `store` is an
    in-memory Oxigraph store holding the triples in the named graph `batch`, for validation and for the
    checks against the graph.
    """

    batch: URIRef
    lines: dict[str, None] = field(default_factory=dict)
    origins: dict[str, tuple[str, int]] = field(default_factory=dict)
    cells: dict[tuple[str, str], str] = field(default_factory=dict)
    raw: dict[tuple[str, str, str], str] = field(default_factory=dict)
    rows: dict[tuple[str, int], str] = field(default_factory=dict)  # (sheet, row) -> the node a keyed row defines
    findings: list[Finding] = field(default_factory=list)  # what the conversion found wrong with keys and names
    _store: ox.Store | None = field(default=None, repr=False)
    _graph: Graph | None = field(default=None, repr=False)

    def add(self, triple: tuple[Node, Node, Node]) -> None:
        """Add a triple given as rdflib terms."""
        self.extend([triple])

    def extend(self, triples: Iterable[tuple[Node, Node, Node]]) -> None:
        """Add triples given as rdflib terms. A store already built gets them too (parsed as strictly), so
        that it can be built ahead of the provenance (`graph.validate.convert_workbook`)."""
        new = [line for line in (" ".join(_nt(t) for t in triple) + " .\n" for triple in triples)
               if line not in self.lines]
        self.lines.update(dict.fromkeys(new))
        self._graph = None
        if self._store is not None and new:
            self._store.load("".join(new).encode("utf-8"), ox.RdfFormat.N_TRIPLES,
                             to_graph=ox.NamedNode(str(self.batch)))

    def __len__(self) -> int:
        return len(self.lines)

    def nt(self) -> bytes:
        return "".join(self.lines).encode("utf-8")

    @property
    def store(self) -> ox.Store:
        """An in-memory store holding the triples in the named graph `batch` (built on first use)."""
        if self._store is None:
            self._store = ox.Store()
            self._store.load(self.nt(), ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(str(self.batch)))
        return self._store

    @property
    def graph(self) -> Graph:
        """The triples as an rdflib Graph (built on first use)."""
        if self._graph is None:
            self._graph = Graph().parse(data=self.nt(), format="nt")
        return self._graph

    def select(self, sparql: str) -> list[dict[str, Term]]:
        """Run a SELECT over the batch's triples."""
        result = self.store.query(sparql, default_graph=ox.NamedNode(str(self.batch)))
        assert isinstance(result, ox.QuerySolutions)
        names = [v.value for v in result.variables]
        return [{n: row[n] for n in names if row[n] is not None} for row in result]

    def about(self, subject: str) -> list[tuple[str, Term]]:
        """(predicate IRI, object) of the triples whose subject is this IRI."""
        return [(r["p"].value, r["o"]) for r in self.select(f"SELECT ?p ?o WHERE {{ <{subject}> ?p ?o }}")]

    def referenced(self) -> set[URIRef]:
        """IRIs the triples mention (cited, cited from, pointed at) without typing them: the graph must."""
        # MINUS, not FILTER NOT EXISTS: the same nodes here (?n is bound on both sides), in half the time
        rows = self.select("SELECT DISTINCT ?n WHERE { { ?n ?p ?o } UNION { ?s ?p ?n FILTER(isIRI(?n)) } "
                           f"MINUS {{ ?n <{RDF.type}> ?t }} }}")
        return {URIRef(r["n"].value) for r in rows}

    def locate(self, focus: str | None, path: str | None, value: Term | None) -> Location:
        """(sheet, row, column, cell text) for a SHACL result on `focus` along `path`."""
        if focus is None or focus not in self.origins:
            return None, None, None, None
        sheet, row = self.origins[focus]
        column = self.cells.get((focus, path)) if path else None
        text = None
        if path and value is not None:
            text = self.raw.get((focus, path, _key(value)))
            if text is None and isinstance(value, ox.Literal):
                text = value.value
        return sheet, row, column, text


P = {name: str(iri) for name, iri in {
    "identifier": DCTERMS.identifier, "title": DCTERMS.title, "creator": DCTERMS.creator,
    "created": DCTERMS.created, "authorList": CMO.authorList, "year": FABIO.hasPublicationYear,
    "venue": PRISM.publicationName, "doi": PRISM.doi, "pmid": FABIO.hasPubMedId, "url": FABIO.hasURL,
    "cites": CITO.cites, "statedIn": CMO.statedIn, "authorLabel": CMO.authorLabel, "statement": CMO.statement,
    "description": CMO.description, "hasMechanism": CMO.hasMechanism, "leadsTo": CMO.leadsTo,
    "refines": CMO.refines, "theoryOf": CMO.theoryOf, "extractedBy": CMO.extractedBy,
    "supports": CMO.supports, "refutes": CMO.refutes, "hasTarget": OA.hasTarget, "hasSource": OA.hasSource,
    "hasSelector": OA.hasSelector, "exact": OA.exact, "page": CMO.page, "section": CMO.section,
    "type": RDF.type, "label": RDFS.label,
}.items()}
DOC_CLASSES = {"review": str(CMO.Review), "study": str(CMO.Study), "grey": str(CMO.GreyLiterature)}
PARTS_OF_CMOC = (("context", str(CMO.hasContext), str(CMO.Context), "context"),
                 ("outcome", str(CMO.hasOutcome), str(CMO.Outcome), "outcome"))
PARTS_OF_MECHANISM = (("resource", str(CMO.hasResource), str(CMO.MechanismResource), "mechanism_resource"),
                      ("reasoning", str(CMO.hasReasoning), str(CMO.MechanismReasoning), "mechanism_reasoning"))
CONCEPT_PROPERTIES = {"setting": str(CMO.inSetting), "framework_resource": str(CMO.drawsOn),
                      "interpretive_level": str(CMO.interpretiveLevel), "relevance": str(CMO.relevance),
                      "rigour": str(CMO.rigour)}
# The IRIs and path keys the row loops write, as strings once: a namespace lookup (`CMO.X`) builds and checks a
# URIRef each time, which was a fifth of the conversion.
K = {name: str(iri) for name, iri in {
    "Document": CMO.Document, "Person": PROV.Person, "CMOConfiguration": CMO.CMOConfiguration,
    "Mechanism": CMO.Mechanism, "ProgrammeTheory": CMO.ProgrammeTheory, "Agent": PROV.Agent,
    "EvidenceFragment": CMO.EvidenceFragment, "SpecificResource": OA.SpecificResource,
    "TextQuoteSelector": OA.TextQuoteSelector, "gYear": XSD.gYear, "anyURI": XSD.anyURI, "date": XSD.date,
    "identifiers": f"{PRISM.doi}|{FABIO.hasPubMedId}|{FABIO.hasURL}", "citedBy": f"^{CITO.cites}",
    "mechanismParts": f"{CMO.hasResource}|{CMO.hasReasoning}", "bearing": f"^{CMO.supports}|^{CMO.refutes}",
    "bearsOn": f"{CMO.supports}|{CMO.refutes}",
}.items()}


class _Builder:
    """Rows to N-Triples lines. Subjects, predicates and classes are IRIs built here from slugs and constants;
    an IRI typed into a cell goes through `checked_iri`, and literals through `literal`."""

    def __init__(self, workbook: Workbook, concepts: ConceptIndex) -> None:
        self.wb = workbook
        self.concepts = concepts
        self.ext = Extraction(batch_iri(workbook.sha256))
        self.out = self.ext.lines
        self._concept_cache: dict[tuple[str, str], str] = {}
        self._keys: dict[str, tuple[int, str]] = {}  # keyed node IRI -> (row, key) of the row defining it
        # A mechanism with neither part is blamed on a mechanism column the sheet has (it may have only one).
        present = workbook.columns.get("cmocs", [])
        self._mechanism_column = next((c for c in ("mechanism_resource", "mechanism_reasoning") if c in present),
                                      "mechanism_resource")

    # -- helpers that remember where a triple came from ---------------------------------------------
    def add(self, s: str, p: str, o: str) -> None:
        """A triple: subject and predicate IRIs, the object in N-Triples syntax."""
        self.out[f"<{s}> <{p}> {o} .\n"] = None

    def node(self, iri: str, row: Row, *types: str) -> str:
        self.ext.origins.setdefault(iri, (row.sheet, row.number))
        for t in types:
            self.add(iri, P["type"], f"<{t}>")
        return iri

    def column(self, subject: str, path: str, column: str) -> None:
        self.ext.cells.setdefault((subject, path), column)

    def text(self, subject: str, pred: str, row: Row, column: str) -> None:
        self.column(subject, pred, column)
        value = row.get(column)
        if value:
            self.add(subject, pred, literal(value))

    def ref(self, subject: str, pred: str, obj: str, text: str, column: str) -> None:
        self.column(subject, pred, column)
        self.add(subject, pred, f"<{obj}>")
        self.ext.raw[(subject, pred, obj)] = text

    def fault(self, row: Row, column: str, text: str, message: str, focus: str | None = None) -> None:
        self.ext.findings.append(Finding("Violation", message, sheet=row.sheet, row=row.number, column=column,
                                         value=text, focus_node=focus, origin="reader"))

    def named(self, prefix: str, text: str, row: Row, column: str, what: str = "") -> str | None:
        """`prefix` + the slug of a key or name typed in a cell; None, and a violation, if it has no letter
        or digit to make one of (an empty slug would make every such cell name one shared node)."""
        name = slug(text)
        if name:
            return prefix + name
        self.fault(row, column, text, f"{what or column} '{text}' has no letter or digit to identify it by "
                   "(punctuation, symbols and emoji are left out of identifiers): add some")
        return None

    def keyed(self, prefix: str, row: Row, column: str, klass: str) -> str | None:
        """The node a keyed row defines; None (the row is not converted) if its key makes the same IRI as
        the different key of an earlier row: merging the two would fault the earlier row for cells it has."""
        key = row.get(column)
        iri = self.named(prefix, key, row, column) if key else None
        if iri is None:
            iri = f"{prefix}_row-{row.number}"
        elif iri in self._keys:
            first, other = self._keys[iri]
            self.fault(row, column, key, f"{column} '{key}' makes the same identifier as '{other}' in row {first} "
                       f"(<{iri}>): keys differing only in case, accents, spaces or punctuation name one "
                       "thing; give this row another key, or refer to that row's", iri)
            return None
        else:
            self._keys[iri] = (row.number, key)
        self.ext.rows[(row.sheet, row.number)] = iri
        return self.node(iri, row, klass)

    def concept(self, subject: str, row: Row, column: str) -> None:
        pred = CONCEPT_PROPERTIES[column]
        self.column(subject, pred, column)
        for part in split_cell(row.get(column)):
            iri = self._concept_cache.get((column, part))
            if iri is None:
                found, _ = self.concepts.resolve(column, part)
                iri = checked_iri(str(found), f"{ID}concept/invalid/{slug(part) or 'blank'}")
                self._concept_cache[(column, part)] = iri
            self.ref(subject, pred, iri, part, column)

    # -- sheets -------------------------------------------------------------------------------------
    def sources(self) -> None:
        for row in self.wb.rows("sources"):
            s = self.keyed(SOURCE, row, "source_id", K["Document"])
            if s is None:
                continue
            self.text(s, P["identifier"], row, "source_id")
            self.column(s, P["type"], "type")
            klass = DOC_CLASSES.get(row.get("type").strip().lower())
            if klass is not None:
                self.add(s, P["type"], f"<{klass}>")
            self.text(s, P["title"], row, "title")
            self.text(s, P["authorList"], row, "authors")
            self.column(s, P["creator"], "authors")
            authors = split_cell(row.get("authors"))
            if row.get("authors") and not authors:  # ';' and spaces only: the required cell names no one
                self.fault(row, "authors", row.get("authors"), f"authors '{row.get('authors')}' names no author: "
                           "write 'Family, Given; Family, Given'", s)
            for author in authors:
                named = self.named(f"{ID}person/", author, row, "authors", "the author")
                if named is None:
                    continue
                person = self.node(named, row, K["Person"])
                self.add(person, P["label"], literal(author))
                self.ref(s, P["creator"], person, author, "authors")
            self.column(s, P["year"], "year")
            year = row.get("year")
            if year:
                self.add(s, P["year"], literal(year, K["gYear"] if YEAR.fullmatch(year) else None))
            self.text(s, P["venue"], row, "venue")
            self.column(s, P["doi"], "doi")
            doi = DOI_PREFIX.sub("", row.get("doi")).strip()
            if doi:
                self.add(s, P["doi"], literal(doi))
            self.text(s, P["pmid"], row, "pmid")
            self.column(s, P["url"], "url")
            url = row.get("url")
            if url:
                ok = re.fullmatch(r"https?://\S+", url) is not None
                self.add(s, P["url"], literal(url, K["anyURI"] if ok else None))
            self.column(s, K["identifiers"], "doi")
            self.column(s, K["citedBy"], "cited_by")
            for citing in split_cell(row.get("cited_by")):
                citing_iri = self.named(SOURCE, citing, row, "cited_by", "the source_id")
                if citing_iri is None:
                    continue
                self.add(citing_iri, P["cites"], f"<{s}>")
                self.ext.raw[(s, K["citedBy"], citing_iri)] = citing

    def cmocs(self) -> None:
        for row in self.wb.rows("cmocs"):
            source_id = row.get("source_id")
            c = self.keyed(CMOC, row, "cmoc_id", K["CMOConfiguration"])
            if c is None:
                continue
            self.text(c, P["identifier"], row, "cmoc_id")
            self.column(c, P["statedIn"], "source_id")
            source = self.named(SOURCE, source_id, row, "source_id") if source_id else None
            if source is not None:
                self.ref(c, P["statedIn"], source, source_id, "source_id")
            self.text(c, P["authorLabel"], row, "label")
            self.text(c, P["statement"], row, "statement")
            self._parts(c, c, row, PARTS_OF_CMOC)
            m = self.node(f"{c}/mechanism", row, K["Mechanism"])
            self.add(c, P["hasMechanism"], f"<{m}>")
            self.column(m, K["mechanismParts"], self._mechanism_column)
            self._parts(c, m, row, PARTS_OF_MECHANISM)
            self.concept(c, row, "setting")
            self.concept(c, row, "framework_resource")
            self.column(c, P["leadsTo"], "leads_to")
            for target in split_cell(row.get("leads_to")):
                cmoc = self.named(CMOC, target, row, "leads_to", "the cmoc_id")
                if cmoc is not None:
                    self.ref(c, P["leadsTo"], cmoc, target, "leads_to")
            self.column(c, P["refines"], "programme_theory")
            theory = row.get("programme_theory")
            named = self.named(f"{ID}theory/{slug(source_id) or 'unknown'}/", theory, row,
                               "programme_theory") if theory else None
            if theory and named is not None:
                t = self.node(named, row, K["ProgrammeTheory"])
                self.add(t, P["label"], literal(theory))
                if source is not None:
                    self.add(t, P["theoryOf"], f"<{source}>")
                self.ref(c, P["refines"], t, theory, "programme_theory")
            self.column(c, P["extractedBy"], "extracted_by")
            who = row.get("extracted_by")
            if who and (ORCID.match(who.strip()) or self.named("", who, row, "extracted_by")):
                a = self.node(str(agent_iri(who)), row, K["Agent"])
                self.add(a, P["label"], literal(who))
                self.ref(c, P["extractedBy"], a, who, "extracted_by")
            self.column(c, P["created"], "extracted_on")
            on = row.get("extracted_on")
            if on:
                self.add(c, P["created"], _date_literal(on))
            self.column(c, K["bearing"], "cmoc_id")

    def _parts(self, cmoc: str, owner: str, row: Row, parts: Iterable[tuple[str, str, str, str]]) -> None:
        """The described parts of a CMOC (context, outcome) or of its mechanism (resource, reasoning)."""
        for part, pred, klass, column in parts:
            self.column(owner, pred, column)
            if row.get(column):
                n = self.node(f"{cmoc}/{part}", row, klass)
                self.add(owner, pred, f"<{n}>")
                self.text(n, P["description"], row, column)

    def evidence(self) -> None:
        for row in self.wb.rows("evidence"):
            e = self.keyed(EVIDENCE, row, "evidence_id", K["EvidenceFragment"])
            if e is None:
                continue
            self.text(e, P["identifier"], row, "evidence_id")
            relation = {"supports": P["supports"], "refutes": P["refutes"]}.get(row.get("relation").strip().lower())
            # the fragment bears on no CMOC: blame the relation if it is unusable, else the missing cmoc_id
            self.column(e, K["bearsOn"], "relation" if relation is None else "cmoc_id")
            for pred in (P["supports"], P["refutes"]):
                self.column(e, pred, "cmoc_id")
            cmoc = self.named(CMOC, row.get("cmoc_id"), row, "cmoc_id") if row.get("cmoc_id") else None
            if relation is not None and cmoc is not None:
                self.ref(e, relation, cmoc, row.get("cmoc_id"), "cmoc_id")
            target = self.node(f"{e}/target", row, K["SpecificResource"])
            self.add(e, P["hasTarget"], f"<{target}>")
            self.column(target, P["hasSource"], "source_id")
            source = self.named(SOURCE, row.get("source_id"), row, "source_id") if row.get("source_id") else None
            if source is not None:
                self.ref(target, P["hasSource"], source, row.get("source_id"), "source_id")
            self.column(target, P["hasSelector"], "quote")
            if row.get("quote"):
                q = self.node(f"{e}/quote", row, K["TextQuoteSelector"])
                self.add(target, P["hasSelector"], f"<{q}>")
                self.text(q, P["exact"], row, "quote")
            self.text(e, P["page"], row, "page")
            self.text(e, P["section"], row, "section")
            self.concept(e, row, "interpretive_level")
            self.concept(e, row, "relevance")
            self.concept(e, row, "rigour")


def _date_literal(text: str) -> str:
    try:
        return literal(dt.date.fromisoformat(text).isoformat(), K["date"])
    except ValueError:
        return literal(text)


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

    batch = ext.batch
    ended = dt.datetime.now(dt.UTC).replace(microsecond=0)  # HermiT rejects sub-millisecond digits
    agent = agent_iri(reviewer)
    activity = URIRef(f"{batch}/activity")
    triples: list[tuple[Node, Node, Node]] = []
    if workbook_id is not None:
        triples.append((batch, PROV.specializationOf, workbook_iri(workbook_id)))
    triples += [(batch, PROV.wasRevisionOf, URIRef(old)) for old in revision_of]
    triples += [
        (batch, RDF.type, CMO.ImportBatch),
        (batch, RDF.type, PROV.Entity),
        (batch, RDFS.label, Literal(workbook.name)),
        (batch, CMO.sourceFileName, Literal(";".join(p.name for p in workbook.paths))),
        (batch, CMO.sha256, Literal(workbook.sha256)),
        (batch, CMO.shapesVersion, Literal(shapes_version)),
        (batch, CMO.softwareVersion, Literal(__version__)),
        (batch, PROV.wasAttributedTo, agent),
        (batch, PROV.generatedAtTime, Literal(ended.isoformat(), datatype=XSD.dateTime)),
        (batch, PROV.wasGeneratedBy, activity),
        (activity, RDF.type, PROV.Activity),
        (activity, PROV.startedAtTime, Literal(started.isoformat(), datatype=XSD.dateTime)),
        (activity, PROV.endedAtTime, Literal(ended.isoformat(), datatype=XSD.dateTime)),
        (activity, PROV.wasAssociatedWith, agent),
        (agent, RDF.type, PROV.Agent),
    ]
    if not ext.select(f"SELECT ?l WHERE {{ <{agent}> <{RDFS.label}> ?l }} LIMIT 1"):
        triples.append((agent, RDFS.label, Literal(reviewer)))
    ext.extend(triples)
    # count includes this triple itself
    ext.add((batch, CMO.tripleCount, Literal(len(ext) + 1, datatype=XSD.integer)))



def add_revisions(ext: Extraction, revision_of: Sequence[str]) -> None:
    """Record more earlier batches (`prov:wasRevisionOf`) in provenance `add_provenance` already wrote, its
    `cmo:tripleCount` kept right."""
    batch = ext.batch
    add_to_provenance(ext, [(batch, PROV.wasRevisionOf, URIRef(old)) for old in revision_of])


def add_to_provenance(ext: Extraction, triples: Sequence[tuple[Node, Node, Node]]) -> None:
    """Add triples to the batch's description after `add_provenance` wrote it (earlier revisions, what a
    revision changed: graph.batches.change_triples), its `cmo:tripleCount` kept right."""
    if not triples:
        return
    batch = ext.batch
    count = f"<{batch}> <{CMO.tripleCount}> "
    old = [line for line in ext.lines if line.startswith(count)]
    for line in old:
        del ext.lines[line]
    if ext._store is not None and old:
        graph = ox.NamedNode(str(batch))
        for t in ox.parse("".join(old).encode("utf-8"), ox.RdfFormat.N_TRIPLES):
            ext._store.remove(ox.Quad(t.subject, t.predicate, t.object, graph))
    ext._graph = None
    ext.extend(triples)
    ext.add((batch, CMO.tripleCount, Literal(len(ext) + 1, datatype=XSD.integer)))

__all__ = ["Extraction", "add_provenance", "add_revisions", "add_to_provenance", "convert", "literal", "path_key",
           "to_ox"]
