"""Regressions against the extraction-template contract (docs/extraction-template.md), the shapes and the
reasoning check: one test per bug, named after what broke, the bug in its docstring.

Workbooks are the good fixture (tests/fixtures/workbooks/good) with one cell or column changed, written as CSV
to a temporary folder.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD

from graph.namespaces import CMO, FABIO, ID
from graph.reason import check_consistency
from graph.report import Finding
from graph.store import EvidenceStore
from graph.template import write_template
from graph.validate import Engine, Validated, validate_workbook

GOOD = Path(__file__).parent / "fixtures" / "workbooks" / "good"
SHEETS = ("sources", "cmocs", "evidence")
Table = dict[str, list[list[str]]]


def good() -> Table:
    return {s: list(csv.reader(io.StringIO((GOOD / f"{s}.csv").read_text(encoding="utf-8")))) for s in SHEETS}


def set_cell(table: Table, sheet: str, row: int, column: str, value: str) -> None:
    """Row as the spreadsheet numbers it (the header is row 1)."""
    table[sheet][row - 1][table[sheet][0].index(column)] = value


def validate(table: Table, folder: Path, engine: Engine = "sparql") -> Validated:
    folder.mkdir(exist_ok=True)
    for sheet, rows in table.items():
        with open(folder / f"{sheet}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    return validate_workbook([folder], None, reviewer="test", engine=engine)


def located(findings: list[Finding]) -> set[tuple[str, str | None, int | None, str | None]]:
    return {(f.severity, f.sheet, f.row, f.column) for f in findings}


@pytest.mark.parametrize("engine", ["sparql", "pyshacl"])
def test_year_in_digits_of_another_script_is_refused_by_both_engines(tmp_path: Path, engine: Engine) -> None:
    """`year` "٢٠٢١" (Arabic-Indic digits) matched the importer's `\\d{4}` and became an xsd:gYear that the
    compiled engine refused and pySHACL accepted: the engines disagreed, and the contract's four digits are
    ASCII digits. Now it stays a plain literal, a violation at sources/2/year in either engine."""
    table = good()
    set_cell(table, "sources", 2, "year", "\u0662\u0660\u0662\u0661")
    result = validate(table, tmp_path / "wb", engine)
    assert located(result.report.findings) == {("Violation", "sources", 2, "year")}
    assert result.extraction is not None
    years = set(result.extraction.graph.objects(ID["source/fx-review"], FABIO.hasPublicationYear))
    assert years == {Literal("\u0662\u0660\u0662\u0661")}
    assert all(y.datatype != XSD.gYear for y in years if isinstance(y, Literal))


def test_orcid_written_as_orcid_shows_it_names_the_same_agent(tmp_path: Path) -> None:
    """`extracted_by` "orcid.org/0000-…" (the form ORCID displays) or "https://www.orcid.org/…x" was taken for a
    name, `id:agent/orcid-org-0000-…`: the same reviewer became two agents depending on how the ORCID was
    pasted. Every form of one ORCID iD now names <https://orcid.org/…> (check character upper case)."""
    table = good()
    set_cell(table, "cmocs", 2, "extracted_by", "orcid.org/0000-0002-1825-0097")
    set_cell(table, "cmocs", 3, "extracted_by", "https://www.orcid.org/0000-0002-1825-0097/")
    result = validate(table, tmp_path / "wb")
    assert result.report.conforms, result.report.to_json()
    assert result.extraction is not None
    agents = set(result.extraction.graph.objects(None, CMO.extractedBy))
    assert agents == {URIRef("https://orcid.org/0000-0002-1825-0097")}

    set_cell(table, "cmocs", 2, "extracted_by", "0000-0002-1694-233x")
    set_cell(table, "cmocs", 3, "extracted_by", "0000-0002-1694-233X")
    result = validate(table, tmp_path / "wb2")
    assert result.extraction is not None
    agents = set(result.extraction.graph.objects(None, CMO.extractedBy))
    assert agents == {URIRef("https://orcid.org/0000-0002-1694-233X")}


def test_authors_cell_holding_only_separators_is_a_violation(tmp_path: Path) -> None:
    """`authors` is required; a cell holding only "; ;" names no author, yet it passed: the verbatim author
    list was there (so minCount held) and no dcterms:creator was written."""
    table = good()
    set_cell(table, "sources", 2, "authors", " ; ;")
    result = validate(table, tmp_path / "wb")
    assert located(result.report.findings) == {("Violation", "sources", 2, "authors")}


def test_missing_mechanism_is_reported_on_the_mechanism_column_the_sheet_has(tmp_path: Path) -> None:
    """A sheet may have only one of the two mechanism columns. With only `mechanism_reasoning`, a row with
    neither part was reported at column `mechanism_resource`, a column the sheet does not have."""
    table = good()
    drop = table["cmocs"][0].index("mechanism_resource")
    for row in table["cmocs"]:
        del row[drop]
    set_cell(table, "cmocs", 2, "mechanism_reasoning", "")
    result = validate(table, tmp_path / "wb")
    assert located(result.report.findings) == {("Violation", "cmocs", 2, "mechanism_reasoning")}


def test_values_in_a_column_with_no_name_are_a_warning(tmp_path: Path) -> None:
    """Extra columns are ignored *with a warning*; a column with values but no header (in a CSV, often a
    separator typed unquoted in a cell) was ignored silently. Now a warning names its letter."""
    table = good()
    table["evidence"][0].append("")
    for row in table["evidence"][1:]:
        row.append("")
    table["evidence"][2][-1] = "stray"
    result = validate(table, tmp_path / "wb")
    assert result.report.conforms
    assert located(result.report.findings) == {("Warning", "evidence", 3, "K")}


def test_row_with_values_only_in_ignored_columns_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """Extra columns are ignored and blank rows skipped, but a row whose only value sat in an extra column
    (a reviewer's note between CMOCs) was read as a CMOC with every required cell missing: six violations and
    a CMOC `_row-4`. It is now skipped, with a warning on that row."""
    table = good()
    table["cmocs"][0].append("notes")
    for row in table["cmocs"][1:]:
        row.append("")
    table["cmocs"].append([""] * (len(table["cmocs"][0]) - 1) + ["CMOCs of the second theory follow"])
    result = validate(table, tmp_path / "wb")
    assert result.report.conforms, result.report.to_json()
    assert located(result.report.findings) == {("Warning", "cmocs", 1, "notes"), ("Warning", "cmocs", 4, "notes")}
    assert result.extraction is not None
    cmocs = set(result.extraction.graph.subjects(RDF.type, CMO.CMOConfiguration))
    assert cmocs == {ID["cmoc/fx-c1"], ID["cmoc/fx-c2"]}


@pytest.mark.parametrize("with_store", [False, True], ids=["files", "store"])
def test_template_lists_ordered_scales_in_their_order(tmp_path: Path, with_store: bool,
                                                      schema_store: EvidenceStore) -> None:
    """The drop-downs of relevance, rigour and interpretive_level were sorted alphabetically (high, low,
    moderate); the contract and the vocabularies (cmo:rank) order them high, moderate, low."""
    path = tmp_path / "t.xlsx"
    write_template(path, schema_store if with_store else None)
    wb = load_workbook(path)
    lists = wb["_lists"]
    columns = [[c for c in col if c is not None] for col in lists.iter_cols(values_only=True)]
    assert ["high", "moderate", "low"] in columns
    assert ["participant", "author", "reviewer"] in columns
    assert ["community sector", "general practice", "link workers"] in columns  # no rank: alphabetical


def test_reasoner_reports_triples_it_cannot_read_instead_of_dropping_them() -> None:
    """owlready2 drops, without a word, a literal given to an object property (or an IRI to a datatype
    property): `cmo:statedIn "b"` on a review made no contradiction and the check said consistent. Such triples
    are now listed in the report (`not_dl`) and the check fails."""
    data = Graph()
    doc = ID["source/a"]
    data.add((doc, RDF.type, CMO.Review))
    data.add((doc, CMO.statedIn, Literal("b")))
    data.add((doc, CMO.authorLabel, URIRef("https://example.org/b")))
    report = check_consistency(data)
    assert not report.ok
    assert len(report.not_dl) == 2
    assert any(str(CMO.statedIn) in t for t in report.not_dl)
    assert any(str(CMO.authorLabel) in t for t in report.not_dl)


SHACL_PREFIXES = """@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <http://example.org/> .
"""


@pytest.mark.parametrize(("datatype", "lexical"), [
    ("date", "2024-02-30"), ("date", "2024-13-01"), ("dateTime", "2024-01-31T25:00:00"), ("date", "2024-01-31"),
    ("dateTime", "2024-01-31T10:00:00Z"), ("gYear", "2021"),
])
def test_compiled_datatype_check_refuses_impossible_dates_like_pyshacl(datatype: str, lexical: str) -> None:
    """The compiled sh:datatype check only matched a pattern: "2024-02-30"^^xsd:date, a month 13 or an hour
    25 conformed, where pySHACL (and XSD) refuse them. The literal must now also cast to its datatype."""
    import pyoxigraph as ox
    from pyshacl import validate as pyshacl_validate

    from graph.shacl_sparql import compile_shapes, subclass_closure

    shapes = Graph().parse(data=SHACL_PREFIXES + "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ "
                           f"sh:path ex:p ; sh:datatype xsd:{datatype} ; sh:message \"m\" ] .", format="turtle")
    data = Graph().parse(data=SHACL_PREFIXES + f'ex:a a ex:C ; ex:p "{lexical}"^^xsd:{datatype} .',
                         format="turtle")
    store = ox.Store()
    store.load(data.serialize(format="nt", encoding="utf-8"), ox.RdfFormat.N_TRIPLES,
               to_graph=ox.NamedNode("urn:test:data"))
    compiled = {r.focus for r in compile_shapes(shapes, subclass_closure(data)).run(store, ["http://example.org/a"])}
    conforms, _, _ = pyshacl_validate(data, shacl_graph=shapes, inference="none")
    assert compiled == (set() if conforms else {"http://example.org/a"})
