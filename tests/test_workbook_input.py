"""Workbook input the reader must survive: damaged zips, styled empty ranges, oversize sheets, formulas where
nothing is read, dates Excel made of page ranges, `sep=` lines, and cell text that looks like Rich markup.

Every input is made here (openpyxl, or the zip rewritten by hand); each test asserts on located findings,
exit codes and the store's quads, not on messages.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.styles import PatternFill
from openpyxl.utils import get_column_letter

import graph.workbook
from graph.cli import main
from graph.pipeline import import_workbook
from graph.report import Report
from graph.store import EvidenceStore
from graph.template import write_template
from graph.validate import validate_workbook
from graph.workbook import UnreadableWorkbook, read_workbook

FIXTURES = Path(__file__).parent / "fixtures" / "workbooks"
GOOD = FIXTURES / "good"
CMOKG = str(Path(sys.executable).with_name("cmokg"))
SHEET_FILES = {"sources": "xl/worksheets/sheet1.xml", "cmocs": "xl/worksheets/sheet2.xml",
               "evidence": "xl/worksheets/sheet3.xml"}


def rows(sheet: str) -> list[list[str]]:
    with open(GOOD / f"{sheet}.csv", encoding="utf-8", newline="") as fh:
        return [list(r) for r in csv.reader(fh)]


def good_book() -> Workbook:
    """The good fixture workbook as an openpyxl Workbook: sheets sources, cmocs, evidence in that order."""
    wb = Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    for sheet in ("sources", "cmocs", "evidence"):
        ws = wb.create_sheet(sheet)
        for row in rows(sheet):
            ws.append(row)
    return wb


def save(wb: Workbook, path: Path) -> Path:
    wb.save(path)
    return path


def located(report: Report) -> set[tuple[str, str | None, int | None, str | None]]:
    return {(f.severity, f.sheet, f.row, f.column) for f in report.findings}


def rezip(path: Path, replace: dict[str, bytes]) -> None:
    """Rewrite an .xlsx with some entries' contents replaced (deflated like the others)."""
    with zipfile.ZipFile(path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info.filename, replace.get(info.filename, data))


def sheet_xml(cells: list[list[object]]) -> bytes:
    """A worksheet part with no <dimension> (as some programs write them): rows of numbers or inline strings."""
    out = ['<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
           'spreadsheetml/2006/main"><sheetData>']
    for r, row in enumerate(cells, start=1):
        out.append(f'<row r="{r}">')
        for c, value in enumerate(row, start=1):
            ref = f"{get_column_letter(c)}{r}"
            if isinstance(value, str):
                out.append(f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>')
            else:
                out.append(f'<c r="{ref}"><v>{value}</v></c>')
        out.append("</row>")
    out.append("</sheetData></worksheet>")
    return "".join(out).encode()


# -- 1. damaged deflate data -----------------------------------------------------------------------------


def break_deflate(path: Path, entry: str) -> None:
    """Overwrite the start of an entry's deflate stream with 0xff bytes: block type 3, which does not exist.

    The zip directory and sizes stay intact, so only decompressing the entry finds the damage (zlib.error).
    """
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(entry)
    assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size > 40
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start:start + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))


def test_damaged_deflate_data_is_unreadable_exit_2_and_changes_nothing(schema_store: EvidenceStore,
                                                                       tmp_path: Path) -> None:
    path = save(good_book(), tmp_path / "damaged.xlsx")
    break_deflate(path, SHEET_FILES["evidence"])
    with pytest.raises(UnreadableWorkbook):
        read_workbook([path])
    before = schema_store.quads()
    result = import_workbook(schema_store, [path], reviewer="r")
    assert not result.imported and result.report.unreadable and result.report.exit_code() == 2
    assert located(result.report) == {("Violation", None, None, None)}
    assert schema_store.quads() == before
    good = save(good_book(), tmp_path / "good.xlsx")
    for argv in (["validate", str(path)], ["compare", str(good), str(path)]):
        proc = subprocess.run([CMOKG, *argv, "--store", str(tmp_path / "no-store")], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr


# -- 2. blank rows do not count towards the row limit -----------------------------------------------------


def test_styled_and_cleared_empty_rows_do_not_count_towards_the_row_limit(schema_store: EvidenceStore,
                                                                          tmp_path: Path) -> None:
    wb = good_book()
    ws = wb["evidence"]
    ws["D6000"].fill = PatternFill("solid", fgColor="FFFF00")  # a fill on an empty cell far below
    ws["A5500"] = "to be cleared"
    ws["A5500"].value = None  # a cleared cell is still written (empty)
    ws["B5800"] = "   "  # only blanks
    path = save(wb, tmp_path / "styled.xlsx")
    result = validate_workbook([path], schema_store, reviewer="r")
    assert result.report.exit_code() == 0, result.report.to_json()
    assert result.report.findings == []


def test_row_limit_counts_non_blank_rows_and_names_the_first_row_over(monkeypatch: pytest.MonkeyPatch,
                                                                      schema_store: EvidenceStore,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setattr(graph.workbook, "MAX_ROWS", 3)
    wb = good_book()
    ws = wb["evidence"]
    template = rows("evidence")[1]
    for i, r in enumerate((10, 20, 30)):  # with the three good rows: 6 rows, blank rows between
        for c, value in enumerate([f"extra-{i}", *template[1:]], start=1):
            ws.cell(row=r, column=c, value=value)
    result = validate_workbook([save(wb, tmp_path / "over.xlsx")], schema_store, reviewer="r")
    assert result.report.exit_code() == 2
    assert located(result.report) == {("Violation", "evidence", 10, None)}  # the 4th non-blank row


# -- 6. the reader is bounded ----------------------------------------------------------------------------


def test_a_value_beyond_the_last_column_read_refuses_the_sheet(schema_store: EvidenceStore, tmp_path: Path) -> None:
    wb = good_book()
    wb["cmocs"].cell(row=3, column=graph.workbook.MAX_COLUMNS + 1, value="far right")
    result = validate_workbook([save(wb, tmp_path / "wide.xlsx")], schema_store, reviewer="r")
    assert result.report.exit_code() == 2
    assert located(result.report) == {("Violation", "cmocs", 3, None)}


def test_a_wide_sheet_without_dimension_is_refused_without_loading_it(schema_store: EvidenceStore,
                                                                       tmp_path: Path) -> None:
    """Like a 2000x1000 sheet of numbers (compression ratio ~10, under the zip-bomb limit): refused at once."""
    path = save(good_book(), tmp_path / "wide.xlsx")
    rnd = random.Random(7)
    cells: list[list[object]] = [[rnd.randrange(10**6) for _ in range(1000)] for _ in range(600)]
    rezip(path, {SHEET_FILES["evidence"]: sheet_xml(cells)})
    started = time.monotonic()
    result = validate_workbook([path], schema_store, reviewer="r")
    assert time.monotonic() - started < 3
    assert result.report.exit_code() == 2
    assert located(result.report) == {("Violation", "evidence", 1, None)}


def test_cells_read_are_bounded_formatted_empty_ones_included(monkeypatch: pytest.MonkeyPatch,
                                                              schema_store: EvidenceStore, tmp_path: Path) -> None:
    monkeypatch.setattr(graph.workbook, "MAX_XLSX_CELLS", 200)
    wb = good_book()
    fill = PatternFill("solid", fgColor="FFFF00")
    for r in range(10, 40):
        for c in range(1, 11):
            wb["evidence"].cell(row=r, column=c).fill = fill  # 300 formatted empty cells
    result = validate_workbook([save(wb, tmp_path / "styled.xlsx")], schema_store, reviewer="r")
    assert result.report.exit_code() == 2
    assert {(f.severity, f.sheet) for f in result.report.findings} == {("Violation", "evidence")}


def test_sheets_that_are_not_read_are_not_parsed(schema_store: EvidenceStore, tmp_path: Path) -> None:
    wb = good_book()
    wb.create_sheet("notes")["A1"] = "scratch"
    wb.create_sheet("_lists")["A1"] = "helper"
    path = save(wb, tmp_path / "notes.xlsx")
    broken = b'<?xml version="1.0"?><worksheet><sheetData><row r="1"><c r="A1"'  # not even well-formed
    rezip(path, {"xl/worksheets/sheet4.xml": broken, "xl/worksheets/sheet5.xml": broken})
    result = validate_workbook([path], schema_store, reviewer="r")
    assert result.report.exit_code() == 0, result.report.to_json()
    assert located(result.report) == {("Warning", "notes", None, None)}


def test_merged_cells_hidden_sheets_and_formulas_are_still_seen(schema_store: EvidenceStore, tmp_path: Path) -> None:
    wb = good_book()
    wb["cmocs"].merge_cells("M2:M3")
    wb["evidence"].sheet_state = "hidden"
    wb["sources"]["C3"] = '=CONCAT("A ", "title")'
    result = validate_workbook([save(wb, tmp_path / "seen.xlsx")], schema_store, reviewer="r")
    assert result.report.exit_code() == 1
    assert {("Violation", "cmocs", 2, None), ("Warning", "evidence", None, None),
            ("Violation", "sources", 3, "title")} <= located(result.report)


# -- 4. formulas where nothing is read -------------------------------------------------------------------


def test_formulas_in_ignored_columns_and_sheets_are_not_violations(schema_store: EvidenceStore,
                                                                   tmp_path: Path) -> None:
    wb = good_book()
    ev = wb["evidence"]
    ev["K1"] = "my_notes"
    ev["K2"] = "=LEN(D2)"
    ev["K3"] = "=LEN(D3)"
    wb.create_sheet("notes")["A1"] = "=COUNTA(evidence!A:A)"
    result = validate_workbook([save(wb, tmp_path / "formulas.xlsx")], schema_store, reviewer="r")
    assert result.report.exit_code() == 0, result.report.to_json()
    assert located(result.report) == {("Warning", "evidence", 1, "my_notes"), ("Warning", "notes", None, None)}


# -- 8. dates Excel made of text -------------------------------------------------------------------------


def test_a_date_in_a_text_column_is_a_violation_naming_the_cell(schema_store: EvidenceStore, tmp_path: Path) -> None:
    wb = good_book()
    wb["evidence"]["E3"] = dt.datetime(2024, 4, 5)  # what Excel makes of typing 4-5 in page
    wb["sources"]["H2"] = dt.date(2012, 3, 4)  # pmid
    wb["cmocs"]["N2"] = dt.datetime(2024, 1, 31)  # extracted_on: a date is its value
    result = validate_workbook([save(wb, tmp_path / "dates.xlsx")], schema_store, reviewer="r")
    assert result.report.exit_code() == 1
    assert located(result.report) == {("Violation", "evidence", 3, "page"), ("Violation", "sources", 2, "pmid")}


def test_template_formats_text_columns_as_text(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    write_template(path)
    wb = load_workbook(path)
    for sheet, column in (("evidence", "page"), ("evidence", "evidence_id"), ("sources", "pmid"),
                          ("sources", "doi"), ("cmocs", "cmoc_id")):
        header = [c.value for c in wb[sheet][1]]
        letter = get_column_letter(header.index(column) + 1)
        assert wb[sheet].column_dimensions[letter].number_format == "@", (sheet, column)
    header = [c.value for c in wb["cmocs"][1]]
    letter = get_column_letter(header.index("extracted_on") + 1)
    assert wb["cmocs"].column_dimensions[letter].number_format != "@"


# -- 9. Excel's sep= line --------------------------------------------------------------------------------


def test_csv_sep_line_is_honoured_and_rows_keep_their_line_numbers(schema_store: EvidenceStore,
                                                                    tmp_path: Path) -> None:
    folder = tmp_path / "wb"
    folder.mkdir()
    for sheet in ("sources", "cmocs", "evidence"):
        table = rows(sheet)
        if sheet == "evidence":
            table[2][table[0].index("relation")] = "maybe"  # a violation on the file's line 4
        with open(folder / f"{sheet}.csv", "w", encoding="utf-8", newline="") as fh:
            fh.write("sep=;\r\n")
            csv.writer(fh, delimiter=";").writerows(table)
    result = validate_workbook([folder], schema_store, reviewer="r")
    assert result.report.exit_code() == 1, result.report.to_json()
    assert located(result.report) == {("Violation", "evidence", 4, "relation")}
    wb = read_workbook([folder])
    assert [r.number for r in wb.rows("evidence")] == [3, 4, 5]


# -- 3. cell text is not Rich markup ---------------------------------------------------------------------


def test_cell_text_is_printed_as_it_is_not_as_rich_markup(tmp_path: Path) -> None:
    folder = tmp_path / "wb"
    shutil.copytree(GOOD, folder)
    table = rows("evidence")
    column = table[0].index("relation")
    table[1][column] = "[/]"
    table[2][column] = "supports [sic] [emphasis added] :smile:"
    with open(folder / "evidence.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(table)
    proc = subprocess.run([CMOKG, "validate", str(folder), "--store", str(tmp_path / "no-store")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "[/]" in proc.stdout
    assert "supports [sic] [emphasis added] :smile:" in proc.stdout


def test_batches_table_prints_file_names_as_they_are(schema_store: EvidenceStore, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "review [bold]one[red] [sic]"
    shutil.copytree(GOOD, folder)
    assert import_workbook(schema_store, [folder], reviewer="r").imported
    schema_store.flush()
    capsys.readouterr()
    assert main(["batches", "--store", str(tmp_path / "store")]) == 0
    printed = capsys.readouterr().out
    assert "review [bold]one[red] [sic]" in printed


# -- 5. quotes without a full-text folder ----------------------------------------------------------------


def test_quotes_without_a_fulltext_folder_is_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder", encoding="utf-8")
    for fulltext in (tmp_path / "nowhere", a_file):
        code = main(["quotes", str(GOOD), "--fulltext", str(fulltext), "--store", str(tmp_path / "no-store")])
        assert code == 2
        assert str(fulltext) in capsys.readouterr().err.replace("\n", "")


# -- 7. template paths -----------------------------------------------------------------------------------


def test_template_refuses_a_missing_folder_and_a_non_xlsx_name(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    for target in (tmp_path / "no" / "such" / "t.xlsx", tmp_path / "t.csv", tmp_path):
        assert main(["template", str(target), "--store", str(tmp_path / "no-store")]) == 2
        assert str(target) in capsys.readouterr().err.replace("\n", "")
    assert not (tmp_path / "t.csv").exists()
    assert main(["template", str(tmp_path / "T.XLSX"), "--store", str(tmp_path / "no-store")]) == 0
    assert (tmp_path / "T.XLSX").is_file()


# -- noticed on the way: JSON reports were printed through the console, which wraps long lines ------------


def test_json_report_with_long_values_stays_valid_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "wb"
    shutil.copytree(GOOD, folder)
    table = rows("evidence")
    table[1][table[0].index("relation")] = "word " * 80  # a 400-character value in a finding
    with open(folder / "evidence.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(table)
    capsys.readouterr()
    assert main(["validate", str(folder), "--format", "json", "--store", str(tmp_path / "no-store")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["violations"] >= 1
    assert any(r["value"] == ("word " * 80).strip() for r in report["results"])
