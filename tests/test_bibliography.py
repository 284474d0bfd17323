"""Sources from RIS, BibTeX and MEDLINE: parsed, deduplicated (DOI, then PMID, then title + year) with the
merges reported, and imported as a batch; unusable records are reported by file and line."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from graph.bibliography import (
    BibliographyError,
    Record,
    dedupe,
    parse_bibtex,
    parse_medline,
    parse_ris,
    read_bibliographies,
    to_workbook,
)
from graph.namespaces import ID
from graph.pipeline import import_read
from graph.store import EvidenceStore

BIB = Path(__file__).parent / "fixtures" / "bibliographies"
FILES = [BIB / "zotero.ris", BIB / "library.bib", BIB / "pubmed.nbib"]
CMOKG = str(Path(sys.executable).with_name("cmokg"))


def test_ris_record_without_title_is_reported_by_line() -> None:
    records, problems = parse_ris((BIB / "zotero.ris").read_text(), "zotero.ris")
    assert [(r.title, r.year, r.doi, r.type) for r in records] == [
        ("Social prescribing link workers: a realist review", "2021", "10.1234/bib.0001", "review"),
        ("Link workers in the community: a report", "2019", "", "grey")]
    assert records[0].authors == ["Doe, Jane", "Roe, Richard"]
    assert problems == ["zotero.ris:19: RIS record has no title (TI or T1)"]


def test_bibtex_fields_latex_and_authors() -> None:
    records, problems = parse_bibtex((BIB / "library.bib").read_text(), "library.bib")
    assert problems == []
    assert [(r.title, r.authors, r.year, r.doi, r.pmid) for r in records] == [
        ("Social Prescribing Link Workers: A Realist Review", ["Doe, Jane", "Roe, Richard"], "2021",
         "10.1234/BIB.0001", ""),
        ("Loneliness and Müller's intervention", ["Müller, Anna"], "2022", "", "33333333")]  # {\"u} is ü


def test_medline_cut_mid_record_is_reported() -> None:
    records, problems = parse_medline((BIB / "pubmed.nbib").read_text(), "pubmed.nbib")
    assert [(r.pmid, r.doi, r.type) for r in records] == [("33333333", "10.1234/bib.0002", "study"),
                                                         ("44444444", "", "review")]
    assert records[0].title == "Loneliness and Muller's intervention: a longer title from PubMed"
    assert problems == ["pubmed.nbib:21: MEDLINE record lacks DP: cut short?"]
    _, cut = parse_medline((BIB / "cut.nbib").read_text(), "cut.nbib")
    assert cut == ["cut.nbib:1: MEDLINE record lacks DP: cut short?"]


def test_dedupe_by_doi_then_pmid_then_title_and_year() -> None:
    merged = read_bibliographies(FILES)
    assert [(r.source_id, r.type) for r in merged.records] == [
        ("doe2021", "review"), ("poe2019", "grey"), ("muller2022", "study"), ("smith2020", "review")]
    assert merged.merges == [
        "library.bib:1 merged into zotero.ris:1 (same doi: 10.1234/bib.0001)",
        "pubmed.nbib:1 merged into library.bib:8 (same pmid: 33333333)"]
    assert merged.records[2].doi == "10.1234/bib.0002"  # filled from the merged MEDLINE record
    a = Record("a:1", title="Trust, and Hope!", year="2020")
    b = Record("b:1", title="trust and hope", year="2020", doi="10.1/x")
    c = Record("c:1", title="trust and hope", year="2021")
    kept, merges = dedupe([a, b, c])
    assert kept == [a, c] and a.doi == "10.1/x"
    assert merges == ["b:1 merged into a:1 (same title+year: trust and hope)"]


def test_not_a_bibliography(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ris"
    junk.write_text("hello\nworld\n")
    with pytest.raises(BibliographyError):
        read_bibliographies([junk])
    binary = tmp_path / "x.bib"
    binary.write_bytes(b"\0\1\2" * 100)
    with pytest.raises(BibliographyError):
        read_bibliographies([binary])


def test_imported_sources_are_triples_in_one_batch(schema_store: EvidenceStore) -> None:
    merged = read_bibliographies(FILES)
    result = import_read(schema_store, to_workbook(merged.records, "refs"), "r", workbook_id="refs")
    assert result.imported, result.report.to_json()
    rows = schema_store.select(f"SELECT ?doi ?pmid WHERE {{ <{ID['source/muller2022']}> prism:doi ?doi ; "
                               "fabio:hasPubMedId ?pmid }")
    assert [(r["doi"].value, r["pmid"].value) for r in rows] == [("10.1234/bib.0002", "33333333")]  # type: ignore[union-attr]
    again = import_read(schema_store, to_workbook(merged.records, "refs"), "r", workbook_id="refs")
    assert again.imported and again.replaced and len(schema_store.batches()) == 1


def test_source_without_identifier_is_a_located_violation(schema_store: EvidenceStore) -> None:
    records = [Record("x:1", title="No identifiers here", authors=["A, B"], year="2020", source_id="a2020")]
    result = import_read(schema_store, to_workbook(records, "x"), "r", workbook_id="x")
    assert {(f.severity, f.sheet, f.row, f.column) for f in result.report.findings} == {
        ("Violation", "sources", 2, "doi")}


def test_cli_refuses_bad_records_unless_skipped(tmp_path: Path) -> None:
    from graph.pipeline import load_schema

    store_dir = tmp_path / "store"
    s = EvidenceStore(store_dir)
    load_schema(s)
    del s
    before = subprocess.run([CMOKG, "export", "--store", str(store_dir)], capture_output=True, text=True).stdout
    proc = subprocess.run([CMOKG, "bib", "--store", str(store_dir), *map(str, FILES)], capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "no title" in proc.stderr and "merged:" in proc.stderr
    after = subprocess.run([CMOKG, "export", "--store", str(store_dir)], capture_output=True, text=True).stdout
    assert after == before
    ok = subprocess.run([CMOKG, "bib", "--store", str(store_dir), "--skip-bad", *map(str, FILES)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    out = tmp_path / "sources.csv"
    proc = subprocess.run([CMOKG, "bib", "-o", str(out), str(BIB / "library.bib")], capture_output=True, text=True)
    assert proc.returncode == 0
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["source_id"] for r in table] == ["doe2021", "muller2022"]
    assert subprocess.run([CMOKG, "bib", "-o", str(out), str(BIB / "cut.nbib")]).returncode == 1
    junk = tmp_path / "junk.nbib"
    junk.write_text("not medline\n")
    assert subprocess.run([CMOKG, "bib", "-o", str(out), str(junk)], capture_output=True).returncode == 2
