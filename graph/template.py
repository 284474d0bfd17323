"""`cmokg template`: an empty extraction workbook with headers, a note on every column and drop-downs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from .vocab import ConceptIndex
from .workbook import CONTROLLED_LITERALS, DATE_COLUMNS, HELPER_SHEET_PREFIX, REQUIRED_COLUMNS, SHEETS

if TYPE_CHECKING:
    from .store import EvidenceStore

NOTES: dict[str, str] = {
    "sources.source_id": "Short key used in the other sheets, unique (e.g. tierney2020).",
    "sources.type": "review, study or grey.",
    "sources.title": "The document's title.",
    "sources.authors": "Family, Given; Family, Given",
    "sources.year": "Four digits.",
    "sources.venue": "Journal or publisher.",
    "sources.doi": "Bare DOI (10.1186/...); a https://doi.org/ prefix is stripped. A source needs doi, pmid or url.",
    "sources.pmid": "PubMed identifier (digits).",
    "sources.url": "Web address (https://...).",
    "sources.cited_by": "source_id(s) of documents that cite this one, separated by ';' (optional).",
    "cmocs.cmoc_id": "Key unique in the workbook (and the graph): prefix it with the source_id.",
    "cmocs.source_id": "The review or evaluation that states this CMOC.",
    "cmocs.label": "The label the authors gave it (CMOC1).",
    "cmocs.statement": "The full sentence as published.",
    "cmocs.context": "The circumstances (C).",
    "cmocs.mechanism_resource": "What the programme offers (M, resource). This or mechanism_reasoning is required.",
    "cmocs.mechanism_reasoning": "How people respond to it (M, reasoning). This or mechanism_resource is required.",
    "cmocs.outcome": "What results (O).",
    "cmocs.setting": "general practice, link workers, community sector (or a concept IRI); several separated by ';'.",
    "cmocs.framework_resource": "Framework resource(s) by label (leadership, stable funding...) or concept IRI, ';' "
                                "between several.",
    "cmocs.leads_to": "cmoc_id(s) whose context this CMOC's outcome becomes.",
    "cmocs.programme_theory": "Name of the programme theory this CMOC refines.",
    "cmocs.extracted_by": "Reviewer's name or ORCID.",
    "cmocs.extracted_on": "ISO date (YYYY-MM-DD).",
    "evidence.evidence_id": "Key unique in the workbook.",
    "evidence.cmoc_id": "The CMOC this quote bears on.",
    "evidence.source_id": "The document quoted.",
    "evidence.quote": "Verbatim text.",
    "evidence.page": "Page number or range.",
    "evidence.section": "Section of the document.",
    "evidence.relation": "supports or refutes.",
    "evidence.interpretive_level": "participant, author or reviewer.",
    "evidence.relevance": "high, moderate or low.",
    "evidence.rigour": "high, moderate or low.",
}
LIST_COLUMNS = {
    ("cmocs", "setting"): "setting",
    ("cmocs", "framework_resource"): "framework_resource",
    ("evidence", "interpretive_level"): "interpretive_level",
    ("evidence", "relevance"): "relevance",
    ("evidence", "rigour"): "rigour",
}
ROWS_WITH_LISTS = 2000
TEXT_FORMAT = "@"  # Excel's Text format: 4-5 stays a page range and 3/4 an id instead of becoming dates


def _preferred_labels(store: EvidenceStore | None, column: str) -> list[str]:
    """The drop-down of a concept column: preferred labels, an ordered scale (`cmo:rank`: high, moderate, low) in
    its order, the others alphabetically."""
    from rdflib.namespace import SKOS

    from .namespaces import CMO
    from .validate import ontology_graph
    from .vocab import CONCEPT_COLUMNS

    _, klass = CONCEPT_COLUMNS[column]
    if store is not None:
        rows = store.select(f"SELECT ?l (MIN(?r) AS ?rank) WHERE {{ ?c a <{klass}> ; skos:prefLabel ?l "
                            "OPTIONAL { ?c cmo:rank ?r } } GROUP BY ?l")
        ranked = [(_rank(r["rank"].value if r["rank"] is not None else None), str(r["l"].value))
                  for r in rows if r["l"] is not None]
        if ranked:
            return _in_order(ranked)
    g = ontology_graph()
    index = ConceptIndex.from_graph(g)
    concepts = set(index.by_class.get(klass, {}).values())
    return _in_order([(_rank(g.value(c, CMO.rank)), str(g.value(c, SKOS.prefLabel))) for c in concepts])


def _rank(value: object) -> float:
    try:
        return float(str(value)) if value is not None else float("inf")
    except ValueError:
        return float("inf")


def _in_order(ranked: list[tuple[float, str]]) -> list[str]:
    return list(dict.fromkeys(label for _, label in sorted(ranked)))


def write_template(path: Path, store: EvidenceStore | None = None) -> None:
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    lists = wb.create_sheet(HELPER_SHEET_PREFIX + "lists")
    lists.sheet_state = "hidden"
    list_ranges: dict[tuple[str, str], str] = {}
    col = 1
    for key, literals in CONTROLLED_LITERALS.items():
        values = list(literals)
        letter = get_column_letter(col)
        for i, v in enumerate(values, start=1):
            lists.cell(row=i, column=col, value=v)
        list_ranges[key] = f"'{lists.title}'!${letter}$1:${letter}${len(values)}"
        col += 1
    for key, column in LIST_COLUMNS.items():
        values = _preferred_labels(store, column)
        letter = get_column_letter(col)
        for i, v in enumerate(values, start=1):
            lists.cell(row=i, column=col, value=v)
        list_ranges[key] = f"'{lists.title}'!${letter}$1:${letter}${max(len(values), 1)}"
        col += 1
    bold = Font(bold=True)
    required_fill = PatternFill("solid", fgColor="FFF2CC")
    for sheet, columns in SHEETS.items():
        ws = wb.create_sheet(sheet)
        for i, name in enumerate(columns, start=1):
            cell = ws.cell(row=1, column=i, value=name)
            cell.font = bold
            required = name in REQUIRED_COLUMNS[sheet]
            if required:
                cell.fill = required_fill
            note = NOTES.get(f"{sheet}.{name}", "")
            cell.comment = Comment(("Required. " if required else "") + note, "cmokg")
            dimension = ws.column_dimensions[get_column_letter(i)]
            dimension.width = max(14, min(40, len(name) + 6))
            if (sheet, name) not in DATE_COLUMNS:  # typed into, a cell takes its column's format
                dimension.number_format = TEXT_FORMAT
            if (sheet, name) in list_ranges:
                multi = (sheet, name) in {("cmocs", "setting"), ("cmocs", "framework_resource")}
                dv = DataValidation(type="list", formula1=list_ranges[(sheet, name)], allow_blank=True,
                                    showErrorMessage=not multi, errorStyle="information" if multi else "stop")
                dv.error = f"Choose a value from the list for {name}."
                letter = get_column_letter(i)
                dv.add(f"{letter}2:{letter}{ROWS_WITH_LISTS}")
                ws.add_data_validation(dv)
        ws.freeze_panes = "A2"
    wb.move_sheet(lists, offset=len(wb.sheetnames))
    wb.active = 0
    wb.save(path)
