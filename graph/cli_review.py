"""Reviewer commands: `retract`, `compare`, `bib` (bibliographies) and `quotes` (check quotes vs full text)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .cli import (
    BAD_INPUT,
    OK,
    REFUSED,
    UsageError,
    _group_inputs,
    _open,
    _print_report,
    _store_path,
    add_plain_row,
    err,
    out,
    output_path,
    plain_table,
    print_data,
    write_atomically,
)
from .report import Finding, Report, csv_safe

if TYPE_CHECKING:
    from .bibliography import Record
    from .workbook import Workbook

Command = Callable[[str, str], argparse.ArgumentParser]


def cmd_retract(args: argparse.Namespace) -> int:
    from .batches import resolve_batch, retract

    store = _open(args)
    batch = resolve_batch(store, args.batch)
    if batch is None:
        raise UsageError(f"no batch {args.batch!r} in the store (see `cmokg batches`)")
    result = retract(store, batch, force=args.force)
    store.flush()
    if args.format == "json":
        print_data(json.dumps(result.to_dict(), indent=2))
    for d in result.dependants:
        if args.format != "json":
            err.print(f"batch {d.batch} refers to {d.target} ({d.subject} {d.predicate})", markup=False)
    if not result.retracted:
        err.print(f"refused: {len(result.dependants)} reference(s) from other batches to nodes only {batch} "
                  "defines; retract or correct those batches first, or give --force", markup=False)
        return REFUSED
    if args.format != "json":
        dangling = f"; {len(result.dependants)} reference(s) now dangle" if result.dependants else ""
        out.print(f"retracted {batch}: {result.removed_quads} quads removed{dangling}", markup=False)
    return OK


# What `compare` reads: a workbook without these sheets or columns would compare as one with no CMOCs
COMPARED_COLUMNS = {"cmocs": ("source_id", "cmoc_id"), "evidence": ("cmoc_id", "quote")}


def _unusable_for_compare(wb: Workbook) -> list[Finding]:
    """The reader's findings that leave nothing to compare: a missing or empty cmocs or evidence sheet, or a
    missing column that pairs CMOCs or quotes."""
    return [f for f in wb.findings if f.severity == "Violation" and f.sheet in COMPARED_COLUMNS
            and (not wb.columns.get(f.sheet) or f.column in COMPARED_COLUMNS[f.sheet])]


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_workbooks
    from .workbook import UnreadableWorkbook, read_workbook

    try:
        a = read_workbook(_group_inputs([args.a])[0])
        b = read_workbook(_group_inputs([args.b])[0])
    except UnreadableWorkbook as exc:
        err.print(f"cmokg compare: {exc.finding.message}", markup=False)
        return BAD_INPUT
    unusable = [(given, finding) for given, wb in ((args.a, a), (args.b, b)) for finding in _unusable_for_compare(wb)]
    for given, finding in unusable:
        err.print(f"cmokg compare: {given}: {finding.location()}: {finding.message}", markup=False)
    if unusable:
        return BAD_INPUT
    result = compare_workbooks(a, b, threshold=args.threshold)
    if args.format == "json":
        print_data(result.to_json())
    elif args.format == "csv":
        sys.stdout.write(result.to_csv())
    else:
        pairs = plain_table("source", "A", "B", "similarity", title="paired CMOCs")
        for p in result.pairs:
            add_plain_row(pairs, p.source_id, p.a, p.b, f"{p.similarity:.2f}")
        out.print(pairs)
        for side, items in (("A", result.unpaired_a), ("B", result.unpaired_b)):
            if items:
                out.print(f"only in {side}: " + ", ".join(items), markup=False)
        agree = plain_table("field", "pairs", "agreement", "kappa")
        for f in result.fields:
            add_plain_row(agree, f.field, f.n, f"{f.agreement:.2f}" if f.agreement is not None else "",
                          f"{f.kappa:.2f}" if f.kappa is not None else "")
        out.print(agree)
    return OK


def _fraction(text: str) -> float:
    """A number from 0 to 1 (argparse type): nan, -5 or 7 made every CMOC of a source pair with every other."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def cmd_bib(args: argparse.Namespace) -> int:
    from .bibliography import BibliographyError, read_bibliographies, to_sources_csv, to_workbook
    from .pipeline import import_read

    try:
        merged = read_bibliographies([Path(f) for f in args.files])
    except BibliographyError as exc:
        err.print(f"cmokg bib: {exc}", markup=False)
        return BAD_INPUT
    for m in merged.merges:
        err.print(f"merged: {m}", markup=False)
    for w in merged.problems:
        err.print(f"skipped: {w}", markup=False)
    if args.output:
        path = output_path("-o", args.output)
        text = to_sources_csv(merged.records).encode("utf-8")
        write_atomically("-o", path, lambda fh: fh.write(text))
        out.print(f"wrote {args.output}: {len(merged.records)} source(s), {len(merged.merges)} merge(s)",
                  markup=False)
        return REFUSED if merged.problems else OK
    if merged.problems and not args.skip_bad:
        err.print("refused: some records cannot be imported (see above); fix them or give --skip-bad",
                  markup=False)
        return REFUSED
    store = _open(args)
    wb = to_workbook(merged.records, name=args.workbook_id or Path(args.files[0]).stem)
    result = import_read(store, wb, args.reviewer, workbook_id=args.workbook_id or Path(args.files[0]).stem)
    store.flush()
    if not result.imported:
        _print_report(_at_bibliography_lines(result.report, merged.records), "table")
        err.print("refused: nothing was imported; the store is unchanged", markup=False)
        return result.report.exit_code() or REFUSED
    out.print(f"imported {len(merged.records)} source(s) as {result.batch} ({len(merged.merges)} merge(s))",
              markup=False)
    return OK


def _at_bibliography_lines(report: Report, records: Sequence[Record]) -> Report:
    """The report with each finding about a source located at its record in the bibliography (file and line,
    in the sheet and row columns) instead of at a row of the sources sheet no one sees: `to_workbook` puts
    record i on row i + 2."""
    findings = []
    for f in report.findings:
        index = (f.row or 0) - 2
        if f.sheet == "sources" and 0 <= index < len(records):
            name, _, line = records[index].origin.rpartition(":")
            f = replace(f, sheet=name, row=int(line) if line.isdigit() else None)
        findings.append(f)
    return replace(report, findings=findings)


def cmd_quotes(args: argparse.Namespace) -> int:
    from .validate import validate_workbook

    fulltext = Path(args.fulltext)
    if not fulltext.is_dir():
        raise UsageError(f"--fulltext {args.fulltext}: no such folder (it holds the {{source_id}}.txt files)")
    store = _open(args, read_only=True) if _store_path(args).exists() else None
    report = validate_workbook(_group_inputs(args.files)[0], store, fulltext=fulltext).report
    report.findings = [f for f in report.findings if f.origin == "quotes" or report.unreadable]
    _print_report(report, args.format)
    return report.exit_code()


def register(command: Command) -> None:
    p = command("retract", "remove one import batch (named graph) and nothing else")
    p.add_argument("batch", metavar="BATCH", help="the batch IRI or its hash (a unique prefix is enough)")
    p.add_argument("--force", action="store_true",
                   help="retract even when other batches refer to what it defines (they are listed)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_retract)

    p = command("compare", "compare two reviewers' extractions of the same sources: pairs, agreement, kappa")
    p.add_argument("a", metavar="A", help="first workbook (.xlsx or folder of CSVs)")
    p.add_argument("b", metavar="B", help="second workbook")
    p.add_argument("--threshold", type=_fraction, default=0.5, help="least C/M/O similarity to pair two CMOCs")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_compare)

    p = command("bib", "import sources from RIS, BibTeX or PubMed (.nbib) files, deduplicated")
    p.add_argument("files", nargs="+", metavar="FILE", help=".ris, .bib or .nbib/.txt (MEDLINE) files")
    p.add_argument("-o", "--output", metavar="sources.csv", help="write a sources sheet instead of importing")
    p.add_argument("--reviewer", help="who imports (default: $CMOKG_REVIEWER or the login name)")
    p.add_argument("--workbook-id", help="identity of this bibliography across re-imports (default: file name)")
    p.add_argument("--skip-bad", action="store_true", help="import the good records, skip unusable ones")
    p.set_defaults(func=cmd_bib)

    p = command("quotes", "check a workbook's quotes against full texts ({source_id}.txt in a folder)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--fulltext", required=True, metavar="DIR")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_quotes)


__all__ = ["csv_safe", "register"]
