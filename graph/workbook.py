"""Reading extraction workbooks (one .xlsx, or .csv files named after the sheets) into located rows.

The reader knows the template (docs/extraction-template.md): sheets, columns, which columns are required
and keys. It reports what can only be seen in the spreadsheet itself (missing sheets or columns, formula
cells, duplicate keys, unreadable files); everything about the meaning of the cells is left to SHACL on
the triples the importer makes from the rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .report import Finding

SHEETS: dict[str, tuple[str, ...]] = {
    "sources": ("source_id", "type", "title", "authors", "year", "venue", "doi", "pmid", "url", "cited_by"),
    "cmocs": (
        "cmoc_id",
        "source_id",
        "label",
        "statement",
        "context",
        "mechanism_resource",
        "mechanism_reasoning",
        "outcome",
        "setting",
        "framework_resource",
        "leads_to",
        "programme_theory",
        "extracted_by",
        "extracted_on",
    ),
    "evidence": (
        "evidence_id",
        "cmoc_id",
        "source_id",
        "quote",
        "page",
        "section",
        "relation",
        "interpretive_level",
        "relevance",
        "rigour",
    ),
}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "sources": ("source_id", "type", "title", "authors", "year"),
    "cmocs": ("cmoc_id", "source_id", "context", "outcome", "extracted_by"),
    "evidence": ("evidence_id", "cmoc_id", "source_id", "quote", "relation"),
}
# One of the two mechanism columns must be present (as a column; cells are checked by SHACL).
ONE_OF_COLUMNS: dict[str, tuple[str, ...]] = {"cmocs": ("mechanism_resource", "mechanism_reasoning")}
KEYS = {"sources": "source_id", "cmocs": "cmoc_id", "evidence": "evidence_id"}
CONTROLLED_LITERALS: dict[tuple[str, str], tuple[str, ...]] = {
    ("sources", "type"): ("review", "study", "grey"),
    ("evidence", "relation"): ("supports", "refutes"),
}

MAX_ROWS = 5000  # per sheet: larger extractions are split into several workbooks
MAX_COLUMNS = 100  # a value further right refuses the sheet (the template has at most 14 columns)
MAX_XLSX_CELLS = 1_000_000  # cells parsed in the sheets read, formatted empty ones included (a few seconds)
MAX_CELL_CHARS = 32767  # Excel's own limit for one cell
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls (and DEL) but tab and line breaks
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
HELPER_SHEET_PREFIX = "_"  # sheets like "_lists" (the template's drop-down values) are not read
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Cells where a date is a value: elsewhere a date-typed cell is what Excel made of a page range (4-5),
# an identifier or a number (year is a gYear, checked by SHACL on the text the date becomes).
DATE_COLUMNS = {("cmocs", "extracted_on"), ("sources", "year")}
# What reading a damaged zip entry raises besides BadZipFile (bad deflate data, short reads, bad LZMA/BZIP2).
ZIP_ERRORS: tuple[type[Exception], ...] = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                                           RuntimeError, NotImplementedError, ValueError)
SEP_LINE = re.compile(r'^"?sep=([^"\r\n])"?[ \t]*$')  # Excel's separator hint on a CSV's first line


class UnreadableWorkbook(Exception):
    """The input cannot be read as a workbook at all (exit code 2)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass(frozen=True)
class Row:
    sheet: str
    number: int  # as the spreadsheet shows it: the header is row 1
    values: dict[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "")


@dataclass
class Workbook:
    name: str
    paths: list[Path]
    sha256: str
    sheets: dict[str, list[Row]] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    missing_columns: dict[str, set[str]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def rows(self, sheet: str) -> list[Row]:
        return self.sheets.get(sheet, [])


def _unreadable(message: str, sheet: str | None = None, row: int | None = None) -> UnreadableWorkbook:
    return UnreadableWorkbook(Finding("Violation", message, sheet=sheet, row=row))


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _digest(parts: Sequence[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in sorted(parts):
        if len(parts) > 1:
            h.update(name.encode() + b"\0")
        h.update(data)
    return h.hexdigest()


def read_workbook(paths: Sequence[Path]) -> Workbook:
    """Read one workbook: a single .xlsx, a folder of CSVs, or several CSV files given together."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise _unreadable("no input file given")
    for p in paths:
        if not p.exists():
            raise _unreadable(f"{p}: no such file or folder")
    if len(paths) == 1 and paths[0].is_dir():
        csvs = sorted(p for p in paths[0].iterdir() if p.suffix.lower() == ".csv")
        if not csvs:
            raise _unreadable(f"{paths[0]}: the folder holds no .csv files (expected sources.csv, cmocs.csv, "
                              "evidence.csv)")
        return _read_csvs(csvs, name=paths[0].name)
    if all(p.suffix.lower() == ".csv" for p in paths):
        return _read_csvs(paths, name=",".join(p.name for p in paths))
    if len(paths) == 1:
        return _read_xlsx(paths[0])
    raise _unreadable("give one .xlsx file, one folder of .csv files, or several .csv files of one workbook")


# --- sheets -------------------------------------------------------------------------------------------


@dataclass
class _Sheet:
    """One sheet as read: rows of cell texts, and what only an .xlsx shows about its cells."""

    table: list[tuple[int, list[str]]] = field(default_factory=list)  # (row number, cell texts)
    formulas: list[tuple[int, int, str, str]] = field(default_factory=list)  # row, column index, cell, formula
    dates: list[tuple[int, int, str, str]] = field(default_factory=list)  # row, column index, cell, text
    merged: list[tuple[str, int, int, int]] = field(default_factory=list)  # range, first row, first/last column


def _collect(wb: Workbook, names: Sequence[str], load: Callable[[str, str], _Sheet]) -> Workbook:
    """Match sheet names, load the template's sheets (`load(sheet, actual_name)`), map headers to template
    columns, keep non-blank rows; report what is off. Sheets that are not read are never loaded."""
    by_lower: dict[str, str] = {}
    for actual in names:
        if actual.startswith(HELPER_SHEET_PREFIX):
            continue
        key = actual.strip().lower()
        if key in SHEETS and key not in by_lower:
            by_lower[key] = actual
            if actual != key:
                wb.findings.append(Finding("Warning", f"sheet '{actual}' is read as '{key}'; name it exactly "
                                           f"'{key}'", sheet=key))
        else:
            wb.findings.append(Finding("Warning", f"sheet '{actual}' is not part of the template and is "
                                       "ignored", sheet=actual))
    for sheet in SHEETS:
        if sheet not in by_lower:
            found = ", ".join(repr(s) for s in names) or "none"
            wb.findings.append(Finding("Violation", f"sheet '{sheet}' is missing (found: {found}); a workbook "
                                       "has the sheets sources, cmocs and evidence", sheet=sheet))
            wb.sheets[sheet] = []
            wb.columns[sheet] = []
            continue
        _collect_sheet(wb, sheet, load(sheet, by_lower[sheet]))
    return wb


def _collect_sheet(wb: Workbook, sheet: str, read: _Sheet) -> None:
    template = SHEETS[sheet]
    table = read.table
    rows: list[Row] = []
    wb.sheets[sheet] = rows
    header_index = next((i for i, (_, cells) in enumerate(table) if any(c for c in cells)), None)
    if header_index is None:
        wb.columns[sheet] = []
        wb.missing_columns[sheet] = set(template)
        wb.findings.append(Finding("Violation", f"sheet '{sheet}' is empty: its first row must hold the "
                                   "column names", sheet=sheet, row=1))
        return
    header_row, header = table[header_index]
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            continue
        key = name.strip().lower()
        if key in template and key not in positions:
            positions[key] = i
            if name != key:
                wb.findings.append(Finding("Warning", f"column '{name}' is read as '{key}'; name it exactly "
                                           f"'{key}'", sheet=sheet, row=header_row, column=key))
        elif key in positions:
            wb.findings.append(Finding("Violation", f"column '{key}' appears twice", sheet=sheet,
                                       row=header_row, column=key))
        else:
            wb.findings.append(Finding("Warning", f"column '{name}' is not part of the template and is "
                                       "ignored", sheet=sheet, row=header_row, column=name))
    wb.columns[sheet] = list(positions)
    missing = {c for c in REQUIRED_COLUMNS[sheet] if c not in positions}
    wb.missing_columns[sheet] = missing
    for column in REQUIRED_COLUMNS[sheet]:
        if column in missing:
            wb.findings.append(Finding("Violation", f"required column '{column}' is missing", sheet=sheet,
                                       row=header_row, column=column))
    group = ONE_OF_COLUMNS.get(sheet, ())
    if group and not any(c in positions for c in group):
        missing.update(group)
        wb.findings.append(Finding("Violation", f"one of the columns {' or '.join(group)} is required",
                                   sheet=sheet, row=header_row, column=group[0]))
    _check_cells(wb, sheet, read, header_row, positions)
    body = [(n, cells) for n, cells in table[header_index + 1:] if any(c for c in cells)]  # blank rows skipped
    if len(body) > MAX_ROWS:
        raise _unreadable(f"sheet '{sheet}' has {len(body)} rows; at most {MAX_ROWS} are read at once: split the "
                          "extraction into several workbooks", sheet=sheet, row=body[MAX_ROWS][0])
    _warn_unnamed_columns(wb, sheet, header_row, header, body)
    read_at = sorted(positions.values())
    for number, cells in body:
        if not any(cells[i] for i in read_at if i < len(cells)):
            # values only in ignored columns: the row is blank as far as the template goes, and skipped
            ignored = [header[i] if i < len(header) and header[i] else _letter(i) for i, c in enumerate(cells) if c]
            wb.findings.append(Finding("Warning", f"row {number} has values only in columns that are not read "
                                       f"({', '.join(ignored)}); it is skipped", sheet=sheet, row=number,
                                       column=ignored[0]))
            continue
        values = {col: _checked_cell(wb, sheet, number, col, cells[i] if i < len(cells) else "")
                  for col, i in positions.items()}
        rows.append(Row(sheet, number, values))
    _check_rows(wb, sheet, rows)


def _letter(index: int) -> str:
    """The spreadsheet's name of the column at 0-based `index` (A, B, ..., AA)."""
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _warn_unnamed_columns(wb: Workbook, sheet: str, header_row: int, header: list[str],
                          body: list[tuple[int, list[str]]]) -> None:
    """A column with values but no name in the header row is an extra column: ignored, with a warning (in a CSV,
    often a separator typed unquoted in a cell, which shifts the rest of the row)."""
    first: dict[int, int] = {}
    unnamed = [i for i, name in enumerate(header) if not name]
    width = len(header)
    for number, cells in body:
        # only cells under an empty header or beyond the header's last name can be in such a column
        for i in [*unnamed, *range(width, len(cells))] if len(cells) > width or unnamed else ():
            if i < len(cells) and cells[i] and i not in first:
                first[i] = number
    for i, number in sorted(first.items()):
        wb.findings.append(Finding("Warning", f"column {_letter(i)} has no name in row {header_row} but holds values "
                                   f"(first in row {number}); it is ignored", sheet=sheet, row=number,
                                   column=_letter(i)))


def _check_cells(wb: Workbook, sheet: str, read: _Sheet, header_row: int, positions: dict[str, int]) -> None:
    """Formulas, dates and merged cells of an .xlsx, in the header row and the columns read (the others are
    ignored, whatever they hold)."""
    names = {i: col for col, i in positions.items()}
    for row, index, coordinate, formula in read.formulas:
        if row == header_row or (row > header_row and index in names):
            wb.findings.append(Finding("Violation", f"cell {coordinate} holds a formula ({formula[:60]}); type "
                                       "the value itself", sheet=sheet, row=row, column=names.get(index, coordinate),
                                       value=formula))
    for row, index, coordinate, text in read.dates:
        column = names.get(index)
        if row > header_row and column is not None and (sheet, column) not in DATE_COLUMNS:
            wb.findings.append(Finding("Violation", f"cell {coordinate} holds a date ({text}) where {column} is "
                                       "text: Excel turns what looks like a date (a page range such as 4-5, an "
                                       "id such as 3/4) into one; format the column as Text and type the value "
                                       "again", sheet=sheet, row=row, column=column, value=text))
    for coord, first_row, first_col, last_col in read.merged:
        if any(first_col <= i + 1 <= last_col for i in names):
            wb.findings.append(Finding("Violation", f"cells {coord} are merged; unmerge them and fill each cell",
                                       sheet=sheet, row=first_row))


def _checked_cell(wb: Workbook, sheet: str, row: int, column: str, text: str) -> str:
    """A cell too long for a spreadsheet, or holding control characters, is a violation (and not converted)."""
    if len(text) > MAX_CELL_CHARS:
        wb.findings.append(Finding("Violation", f"the cell holds {len(text)} characters, more than a spreadsheet "
                                   f"cell can ({MAX_CELL_CHARS}); quote a passage, not the document",
                                   sheet=sheet, row=row, column=column, value=text[:60] + "…"))
        return ""
    bad = CONTROL.search(text)
    if bad:
        wb.findings.append(Finding("Violation", f"the cell holds the control character U+{ord(bad.group()):04X} "
                                   f"at position {bad.start() + 1}; delete it (it is invisible in most editors)",
                                   sheet=sheet, row=row, column=column, value=CONTROL.sub("", text)[:200]))
        return CONTROL.sub("", text)
    return text


def _check_rows(wb: Workbook, sheet: str, rows: list[Row]) -> None:
    key = KEYS[sheet]
    seen: dict[str, int] = {}
    duplicates: list[Row] = []
    for row in rows:
        value = row.get(key)
        if value:
            norm = value.strip().lower()
            if norm in seen:
                wb.findings.append(Finding("Violation", f"duplicate {key} '{value}': already used in row "
                                           f"{seen[norm]}", sheet=sheet, row=row.number, column=key,
                                           value=value))
                duplicates.append(row)
            else:
                seen[norm] = row.number
        for (s, column), allowed in CONTROLLED_LITERALS.items():
            cell = row.get(column)
            if s == sheet and cell and cell.strip().lower() not in allowed:
                wb.findings.append(Finding("Violation", f"'{cell}' is not allowed in {column}; use one of: "
                                           f"{', '.join(allowed)}", sheet=sheet, row=row.number,
                                           column=column, value=cell))
    # A duplicated row is reported, not converted: merging it into the first would fault cells it never had.
    for row in duplicates:
        rows.remove(row)


# --- CSV ----------------------------------------------------------------------------------------------


def _decode(data: bytes, sheet: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _unreadable(
            f"{sheet}.csv is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save it as "
            "'CSV UTF-8'",
            sheet=sheet,
            row=line,
        ) from None


def _read_csvs(paths: Sequence[Path], name: str) -> Workbook:
    parts = [(p.name, p.read_bytes()) for p in paths]
    wb = Workbook(name=name, paths=list(paths), sha256=_digest(parts))
    raw: dict[str, _Sheet] = {}
    for path, (_, data) in zip(paths, parts, strict=True):
        sheet = path.stem
        if not data.strip():
            raw[sheet] = _Sheet()  # reported as an empty sheet
            continue
        if b"\0" in data[:4096]:
            raise _unreadable(f"{path.name} is not a CSV text file (it holds binary data)", sheet=sheet)
        text = _decode(data, sheet)
        first_line, _, rest = text.partition("\n")
        first = 1  # the line number of the first record: rows are numbered as the file's lines
        hint = SEP_LINE.match(first_line.rstrip("\r"))
        if hint:  # Excel's `sep=;` line names the separator; it is not the header
            delimiter = hint.group(1)
            text, first = rest, 2
        else:
            delimiter = ","
            if first_line.count(";") > first_line.count(",") and first_line.count(";") > 0:
                delimiter = ";"
                wb.findings.append(Finding("Warning", f"{path.name} is separated by ';' (read as such); the "
                                           "template uses ','", sheet=sheet.lower(), row=1))
        # a long cell is reported where it is (sheet, row, column), not as a malformed file
        csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        table: list[tuple[int, list[str]]] = []
        try:
            for number, record in enumerate(reader, start=first):
                table.append((number, [c.strip() for c in record]))
        except csv.Error as exc:
            line = reader.line_num + first - 1
            raise _unreadable(f"{path.name}: malformed CSV near record {line}: {exc}",
                              sheet=sheet, row=line) from None
        raw[sheet] = _Sheet(table)
    return _collect(wb, list(raw), lambda _sheet, actual: raw[actual])


# --- XLSX ---------------------------------------------------------------------------------------------


def _check_zip(path: Path, data: bytes) -> None:
    if data.startswith(OLE2_MAGIC):
        raise _unreadable(f"{path.name} is password-protected or in the old .xls format; save it as an "
                          "unprotected .xlsx workbook")
    if not data.startswith(b"PK"):
        raise _unreadable(f"{path.name} is not an .xlsx workbook (not a zip container)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            packed = sum(i.compress_size for i in infos) or 1
            if total > MAX_UNCOMPRESSED_BYTES or total / packed > MAX_COMPRESSION_RATIO:
                raise _unreadable(f"{path.name} expands to {total} bytes from {packed}: refused as a "
                                  "possible zip bomb")
            if "xl/workbook.xml" not in zf.namelist():
                raise _unreadable(f"{path.name} is a zip file but not an .xlsx workbook (no xl/workbook.xml)")
            bad = zf.testzip()  # decompresses every entry: damaged data fails here, not half-way through a sheet
            if bad is not None:
                raise _unreadable(f"{path.name} is damaged (entry {bad} fails its checksum)")
    except ZIP_ERRORS as exc:
        raise _unreadable(f"{path.name} is truncated or damaged ({exc}); save it "
                          "again from the spreadsheet program") from None


class _XlsxReader:
    """Streams the sheets of an .xlsx that are read, bounded: no sheet is loaded whole, the others not at all.

    openpyxl's reader (pinned) is used piece by piece: `load_workbook` would parse every sheet (read-only mode
    still scans a sheet without a <dimension> to its end just to size it) before any limit could apply.
    """

    def __init__(self, path: Path, data: bytes, wb: Workbook) -> None:
        from openpyxl.reader.excel import ExcelReader
        from openpyxl.styles.stylesheet import apply_stylesheet

        self.path, self.wb, self.cells = path, wb, 0
        self.reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=False)
        try:
            self.reader.read_manifest()
            self.reader.read_strings()
            self.reader.read_workbook()
            apply_stylesheet(self.reader.archive, self.reader.wb)  # number formats tell dates from numbers
            self.sheets = {sheet.name: (sheet.state or "visible", rel.target)
                           for sheet, rel in self.reader.parser.find_sheets()
                           if "chartsheet" not in rel.Type and rel.target in self.reader.valid_files}
        except BaseException:
            self.reader.archive.close()
            raise

    def close(self) -> None:
        self.reader.archive.close()

    def names(self) -> list[str]:
        return [n for n in self.sheets if not n.startswith(HELPER_SHEET_PREFIX)]

    def load(self, sheet: str, actual: str) -> _Sheet:
        state, target = self.sheets[actual]
        if state != "visible":
            self.wb.findings.append(Finding("Warning", f"sheet '{actual}' is hidden; it is read all the same",
                                            sheet=sheet))
        try:
            return self._load(sheet, actual, target)
        except UnreadableWorkbook:
            raise
        except Exception as exc:  # openpyxl and the XML parser raise many kinds on damaged sheets
            raise _unreadable(f"{self.path.name}: sheet '{actual}' could not be read ({type(exc).__name__}: "
                              f"{exc}); save the workbook again from the spreadsheet program", sheet=sheet) from None

    def _load(self, sheet: str, actual: str, target: str) -> _Sheet:
        from openpyxl.worksheet._reader import WorkSheetParser
        from openpyxl.worksheet.cell_range import CellRange

        book: Any = self.reader.wb  # the date formats are set by apply_stylesheet, not in the stubs
        with self.reader.archive.open(target) as src:
            parser = WorkSheetParser(src, self.reader.shared_strings, data_only=False, epoch=book.epoch,
                                     date_formats=book._date_formats, timedelta_formats=book._timedelta_formats)
            read = self._stream(sheet, actual, parser.parse())
            merged = parser.merged_cells.mergeCell if parser.merged_cells is not None else []
        for m in merged:  # <mergeCells> follows <sheetData>: known once every row is read
            rng = CellRange(m.ref)
            read.merged.append((rng.coord, rng.min_row, rng.min_col, rng.max_col))
        return read

    def _stream(self, sheet: str, actual: str, rows: Iterator[tuple[int, list[dict[str, Any]]]]) -> _Sheet:
        from openpyxl.utils import get_column_letter

        read = _Sheet()
        header_seen, body = False, 0
        for number, cells in rows:
            self.cells += len(cells)
            if self.cells > MAX_XLSX_CELLS:
                raise _unreadable(f"{self.path.name}: the sheets read hold more than {MAX_XLSX_CELLS} cells "
                                  f"(formatted empty cells count) by row {number} of sheet '{actual}'; delete the "
                                  "unused rows and columns, or split the extraction into several workbooks",
                                  sheet=sheet, row=number)
            texts: dict[int, str] = {}
            for cell in cells:
                index, value, kind = int(cell["column"]) - 1, cell["value"], cell["data_type"]
                coordinate = f"{get_column_letter(index + 1)}{number}"
                if kind == "f":
                    read.formulas.append((number, index, coordinate, str(getattr(value, "text", value))))
                    continue
                text = _cell_text(value)
                if not text:
                    continue
                if index >= MAX_COLUMNS:
                    raise _unreadable(f"sheet '{actual}' has a value in cell {coordinate}, beyond column "
                                      f"{get_column_letter(MAX_COLUMNS)}; at most {MAX_COLUMNS} columns are read: "
                                      "delete what is there", sheet=sheet, row=number)
                if isinstance(value, dt.date | dt.time):
                    read.dates.append((number, index, coordinate, text))
                texts[index] = text
            if not texts:
                continue  # blank rows are skipped: they neither count nor take room
            if header_seen:
                body += 1
                if body > MAX_ROWS:
                    raise _unreadable(f"sheet '{actual}' has more than {MAX_ROWS} rows; at most {MAX_ROWS} are "
                                      "read at once: split the extraction into several workbooks", sheet=sheet,
                                      row=number)
            header_seen = True
            read.table.append((number, [texts.get(i, "") for i in range(max(texts) + 1)]))
        return read


def _read_xlsx(path: Path) -> Workbook:
    data = path.read_bytes()
    if not data:
        raise _unreadable(f"{path.name} is empty (0 bytes)")
    _check_zip(path, data)
    wb = Workbook(name=path.name, paths=[path], sha256=_digest([(path.name, data)]))
    try:
        xlsx = _XlsxReader(path, data, wb)
    except Exception as exc:  # openpyxl raises many kinds on damaged files
        raise _unreadable(f"{path.name} could not be read as an .xlsx workbook: {exc}") from None
    try:
        return _collect(wb, xlsx.names(), xlsx.load)
    finally:
        xlsx.close()
