"""Controlled vocabularies: finding the SKOS concept a workbook cell names, by label or IRI."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SKOS

from .namespaces import CMO, ID, slug

ROOT = Path(__file__).resolve().parent.parent
ONTOLOGY_DIR = ROOT / "ontology"
ONTOLOGY_FILE = ONTOLOGY_DIR / "cmokg.ttl"
VOCAB_DIR = ONTOLOGY_DIR / "vocab"

# workbook column -> (scheme slug, class every concept named there must have)
CONCEPT_COLUMNS: dict[str, tuple[str, URIRef]] = {
    "setting": ("setting", CMO.Setting),
    "framework_resource": ("framework", CMO.FrameworkResource),
    "interpretive_level": ("level", CMO.InterpretiveLevel),
    "relevance": ("appraisal", CMO.AppraisalLevel),
    "rigour": ("appraisal", CMO.AppraisalLevel),
}


def vocab_paths() -> list[Path]:
    return sorted(VOCAB_DIR.glob("*.ttl"))


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def _norm(label: str) -> str:
    """Labels match case-insensitively, with curly quotes and dashes as their straight forms, spaces folded."""
    return " ".join(label.translate(_QUOTES).lower().split())


@dataclass
class ConceptIndex:
    """Labels (pref and alt, case-insensitive) of the concepts of each class, mapped to their IRIs."""

    by_class: dict[URIRef, dict[str, URIRef]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str]]) -> ConceptIndex:
        """Rows of (class IRI, concept IRI, label)."""
        index = cls()
        for klass, concept, label in rows:
            index.by_class.setdefault(URIRef(klass), {})[_norm(label)] = URIRef(concept)
        return index

    @classmethod
    def from_graph(cls, graph: Graph) -> ConceptIndex:
        rows: list[tuple[str, str, str]] = []
        for _, klass in CONCEPT_COLUMNS.values():
            for concept in graph.subjects(RDF.type, klass):
                for prop in (SKOS.prefLabel, SKOS.altLabel):
                    rows.extend((str(klass), str(concept), str(lbl)) for lbl in graph.objects(concept, prop))
        return cls.from_rows(rows)

    @classmethod
    def from_files(cls) -> ConceptIndex:
        g = Graph()
        for p in vocab_paths():
            g.parse(p, format="turtle")
        return cls.from_graph(g)

    def resolve(self, column: str, text: str) -> tuple[URIRef, bool]:
        """The concept a cell names, and whether it is known. Unknown labels get an IRI SHACL will reject."""
        scheme, klass = CONCEPT_COLUMNS[column]
        text = text.strip()
        if text.startswith(("http://", "https://")):
            iri = URIRef(text)
            return iri, iri in self.by_class.get(klass, {}).values()
        found = self.by_class.get(klass, {}).get(_norm(text))
        if found is not None:
            return found, True
        return ID[f"concept/{scheme}/{slug(text) or 'blank'}"], False

    def labels(self, column: str) -> list[str]:
        _, klass = CONCEPT_COLUMNS[column]
        return sorted(self.by_class.get(klass, {}))
