"""The `cmokg` command: build, validate, import, retract and query the evidence graph, and serve it.

Exit codes: 0 ok (warnings allowed), 1 violations or refused, 2 unreadable input or bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import pyoxigraph as ox
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import __version__
from .report import Report, change_counts, change_text, csv_safe
from .store import DEFAULT_STORE, EvidenceStore, StoreError, require_store

OK, REFUSED, BAD_INPUT = 0, 1, 2
COMMAND_MODULES: list[str] = ["graph.cli_review", "graph.cli_store", "graph.cli_map"]  # each defines register(command)
# Piped output (tests, scripts) gets wide lines instead of an 80-column wrap. Neither console reads markup or
# :emoji: codes in what it prints: cell text, file names and store values are shown as they are ([sic], [/]).
out = Console(highlight=False, markup=False, emoji=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, markup=False, emoji=False)


def print_data(text: str) -> None:
    """JSON (or other data) to standard output as it is: the console would wrap long lines inside strings."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def plain_table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells are added with `add_plain_row`: text as it is, never Rich markup."""
    return Table(*headers, title=None if title is None else Text(title))


def add_plain_row(table: Table, *cells: object) -> None:
    table.add_row(*(Text("" if c is None else str(c)) for c in cells))


class UsageError(Exception):
    """Bad usage discovered after argument parsing (exit 2)."""


def output_path(option: str, name: str) -> Path:
    """The file an option names for writing: its folder must exist and it must not be a folder (exit 2)."""
    path = Path(name)
    if path.is_dir() or name.endswith(("/", os.sep)):
        raise UsageError(f"{option} {name} is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {name}: no folder {path.parent}")
    return path


def write_atomically(option: str, path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temporary file beside `path`, renamed over it only when `write` has finished: a failure
    leaves neither a partial file nor a changed old one. An OSError is a UsageError naming the option."""
    tmp: Path | None = None
    try:
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        with open(part, "xb") as fh:  # created with the umask's permissions, as a plain open would
            tmp = part
            write(fh)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write it ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err, transient=True,
                    disable=not err.is_terminal)


def _store_path(args: argparse.Namespace) -> Path:
    return Path(args.store or os.environ.get("CMOKG_STORE") or DEFAULT_STORE)


def _open(args: argparse.Namespace, *, must_exist: bool = True, read_only: bool = False) -> EvidenceStore:
    path = _store_path(args)
    if must_exist and not path.exists():
        raise StoreError(f"no store at {path}: run `cmokg build --store {path}` first")
    return EvidenceStore(path, read_only=read_only, create=not must_exist)


def _print_report(report: Report, fmt: str) -> None:
    if fmt == "json":
        print_data(report.to_json())
        return
    if fmt == "csv":
        sys.stdout.write(report.to_csv())
        return
    findings = report.sorted()
    if findings:
        table = plain_table("severity", "sheet", "row", "column", "message", "value", title=report.input_name)
        for f in findings:
            add_plain_row(table, f.severity, f.sheet, f.row, f.column, f.message, (f.value or "")[:60])
        out.print(table)
    verdict = "unreadable" if report.unreadable else ("conforms" if report.conforms else "does not conform")
    out.print(f"{report.input_name}: {verdict} — {len(report.violations)} violation(s), "
              f"{len(report.warnings)} warning(s)", markup=False)


def _group_inputs(files: Sequence[str]) -> list[list[Path]]:
    """CSV files given together form one workbook; each .xlsx or folder is a workbook of its own."""
    csvs = [Path(f) for f in files if f.lower().endswith(".csv")]
    others = [[Path(f)] for f in files if not f.lower().endswith(".csv")]
    return others + ([csvs] if csvs else [])


# -- commands ------------------------------------------------------------------------------------------


def cmd_build(args: argparse.Namespace) -> int:
    from .pipeline import DATA_DIR, build, workbooks_in

    data = Path(args.data) if args.data else DATA_DIR
    total = len(workbooks_in(data))
    with _progress() as bar:
        task = bar.add_task("building", total=total)

        def step(name: str) -> None:
            bar.update(task, description=f"importing {name}", advance=1)

        results = build(_store_path(args), data, progress=step, engine=args.engine)
    for r in results:
        if not r.imported:
            _print_report(r.report, "table")
            err.print(f"build refused: {r.report.input_name} has violations; the store was left unchanged",
                      markup=False)
            return REFUSED if not r.report.unreadable else BAD_INPUT
    store = _open(args, read_only=True)
    counts = store.counts()
    warnings = sum(len(r.report.warnings) for r in results)
    out.print(f"built {_store_path(args)}: {len(results)} workbook(s), " +
              ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; {warnings} warning(s)", markup=False)
    return OK


def cmd_validate(args: argparse.Namespace) -> int:
    from .pipeline import same_file_findings
    from .validate import validate_workbook

    store = _open(args, read_only=True) if _store_path(args).exists() else None
    code = OK
    reports = []
    for paths in _group_inputs(args.files):
        validated = validate_workbook(paths, store, args.reviewer, engine=args.engine)
        report = validated.report
        report.extend(same_file_findings(store, validated))  # the import refuses it: say so now
        report.supersedes, report.changes = list(validated.supersedes), validated.change_rows()  # JSON, table
        reports.append(report)
        code = max(code, report.exit_code())
    if args.format == "json" and len(reports) > 1:
        print_data(json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False))
    else:
        for r in reports:
            _print_report(r, args.format)
            if args.format == "table":
                _print_changes(r)
    return code


def _print_changes(report: Report) -> None:
    """After a revision's findings: the batches it supersedes and what importing it would change (one line
    per CMOC, source or evidence fragment new, changed or gone), with counts per change and kind."""
    if not report.supersedes or report.changes is None:
        return
    rows = report.changes
    batches = ", ".join(report.supersedes)
    refused = "" if report.conforms else " (once its violations are fixed: importing it is refused until then)"
    if not rows:
        out.print(f"{report.input_name}: importing it would supersede batch {batches}{refused}; nothing it "
                  "defines changes", markup=False, soft_wrap=True)
        return
    summary = ", ".join(f"{n} {change} {kind}" for change, kind, n in change_counts(rows))
    out.print(f"{report.input_name}: importing it would supersede batch {batches}{refused} and change "
              f"{len(rows)} node(s): {summary}", markup=False, soft_wrap=True)
    table = plain_table("change", "kind", "identifier", "label, title or quote",
                        title=f"what importing {report.input_name} changes")
    for row in rows:
        add_plain_row(table, row["change"], row["kind"], row["identifier"] or row["node"], change_text(row))
    out.print(table)


def cmd_import(args: argparse.Namespace) -> int:
    from .pipeline import import_workbook

    store = _open(args)
    code = OK
    groups = _group_inputs(args.files)
    with _progress() as bar:
        task = bar.add_task("importing", total=len(groups))
        for paths in groups:
            result = import_workbook(store, paths, args.reviewer, engine=args.engine)
            bar.advance(task)
            if not result.imported:
                _print_report(result.report, args.format)
                err.print(f"refused: {result.report.input_name} was not imported; the store is unchanged",
                          markup=False)
                code = max(code, result.report.exit_code())
                continue
            verb = "re-imported (replaced)" if result.replaced else "imported"
            out.print(f"{verb} {result.report.input_name} as {result.batch}: {result.triples} triples, "
                      f"{len(result.report.warnings)} warning(s)", markup=False)
    store.flush()
    return code


def cmd_query(args: argparse.Namespace) -> int:
    from .catalog import CatalogError, ParameterError, bind, load_catalog, page, run

    values: dict[str, str] = {}
    for item in args.param or []:
        if "=" not in item:
            raise UsageError(f"--param takes name=value, got {item!r}")
        k, v = item.split("=", 1)
        if k.strip() in values:
            raise UsageError(f"--param {k.strip()} is given twice")
        values[k.strip()] = v
    try:
        catalog = load_catalog()
    except CatalogError as exc:
        raise UsageError(str(exc)) from None
    store = _open(args, read_only=True)
    if args.query in catalog:
        nq = catalog[args.query]
        try:
            bind(nq, values)
            result = run(store.ox, nq, values, page(args.limit, args.offset))
        except ParameterError as exc:
            raise UsageError(str(exc)) from None
    else:
        path = Path(args.query)
        if not path.is_file():
            raise UsageError(f"{args.query!r} is neither a catalog query ({', '.join(sorted(catalog))}) nor a file")
        if values or args.limit is not None or args.offset is not None:
            raise UsageError("--param, --limit and --offset work with catalog queries only")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        try:
            result = store.query(text)
        except SyntaxError as exc:
            raise UsageError(f"{path}: SPARQL syntax error: {exc}") from None
    _print_result(result, args.format)
    return OK


RESULT_FORMATS = {
    "json": ox.QueryResultsFormat.JSON,
    "xml": ox.QueryResultsFormat.XML,
    "csv": ox.QueryResultsFormat.CSV,
    "tsv": ox.QueryResultsFormat.TSV,
}


# A graph answer (CONSTRUCT, DESCRIBE) in the --format asked; csv and tsv are for solutions only
GRAPH_FORMATS = {"table": ox.RdfFormat.TURTLE, "json": ox.RdfFormat.JSON_LD, "xml": ox.RdfFormat.RDF_XML}


def _term_text(term: object) -> str:
    if term is None:
        return ""
    value = getattr(term, "value", None)
    return str(value) if value is not None else str(term)


def _print_result(result: object, fmt: str) -> None:
    if isinstance(result, ox.QueryBoolean):
        if fmt == "table":
            out.print("true" if bool(result) else "false")
        else:
            sys.stdout.buffer.write(result.serialize(format=RESULT_FORMATS.get(fmt, ox.QueryResultsFormat.JSON)) or b"")
        return
    if isinstance(result, ox.QueryTriples):
        if fmt not in GRAPH_FORMATS:
            raise UsageError(f"a CONSTRUCT or DESCRIBE query answers triples, which have no {fmt} form: use --format "
                             "table (Turtle), json (JSON-LD) or xml (RDF/XML)")
        sys.stdout.buffer.write(result.serialize(format=GRAPH_FORMATS[fmt]) or b"")
        return
    assert isinstance(result, ox.QuerySolutions)
    if fmt != "table":
        sys.stdout.buffer.write(result.serialize(format=RESULT_FORMATS[fmt]) or b"")
        sys.stdout.flush()
        return
    names = [v.value for v in result.variables]
    table = plain_table(*names)
    n = 0
    for row in result:
        add_plain_row(table, *(csv_safe(_term_text(row[v])) for v in names))
        n += 1
    out.print(table)
    out.print(f"{n} row(s)")


def cmd_reason(args: argparse.Namespace) -> int:
    from .reason import ReasonerError, check_consistency

    store = _open(args, read_only=True)
    buf = bytearray()
    for q in store.ox.quads_for_pattern(None, None, None):
        if isinstance(q.graph_name, ox.NamedNode) and q.graph_name.value.startswith(
                "https://w3id.org/cmokg/graph/"):
            continue  # ontology and vocabularies are loaded by the reasoner itself
        buf += f"{q.subject} {q.predicate} {q.object} .\n".encode()
    try:
        report = check_consistency(bytes(buf))
    except ReasonerError as exc:
        raise UsageError(f"{exc} (HermiT needs Java on the PATH)") from None
    out.print(report.message, markup=False)
    return OK if report.ok else REFUSED


def cmd_template(args: argparse.Namespace) -> int:
    from .template import write_template

    path = Path(args.file)
    if path.suffix.lower() != ".xlsx":
        raise UsageError(f"{args.file}: the template is an .xlsx workbook; give a file name ending in .xlsx")
    if not path.parent.is_dir():
        raise UsageError(f"{args.file}: no folder {path.parent}")
    if path.is_dir():
        raise UsageError(f"{args.file} is a folder; give a file name ending in .xlsx")
    store = _open(args, read_only=True) if _store_path(args).exists() else None
    try:
        write_template(path, store)
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot write it ({exc.strerror or exc})") from None
    out.print(f"wrote {args.file}", markup=False)
    return OK


EXPORT_FORMATS = {
    "nq": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "ttl": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
}


def cmd_export(args: argparse.Namespace) -> int:
    store = _open(args, read_only=True)
    fmt = EXPORT_FORMATS[args.format]
    if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.N_TRIPLES) and not args.graph:
        raise UsageError(f"--format {args.format} holds one graph: give --graph IRI, or use nq or trig")
    if args.graph:
        try:
            ox.NamedNode(args.graph)
        except ValueError as exc:
            raise UsageError(f"--graph {args.graph!r} is not an IRI ({exc})") from None
    if args.graph and not store.has_graph(args.graph):
        raise UsageError(f"no graph {args.graph} in the store")
    if args.output and args.output != "-":
        path = output_path("-o", args.output)
        write_atomically("-o", path, lambda fh: store.dump(fh, fmt, args.graph))
    else:
        store.dump(sys.stdout.buffer, fmt, args.graph)
        sys.stdout.flush()
    return OK


def cmd_batches(args: argparse.Namespace) -> int:
    store = _open(args, read_only=True)
    batches = store.batches()
    if args.format == "json":
        print_data(json.dumps([b.__dict__ for b in batches], indent=2))
        return OK
    table = plain_table("batch", "file", "imported", "by", "triples")
    for b in batches:
        add_plain_row(table, b.iri, b.label, b.generated, b.attributed_to, b.triples)
    out.print(table)
    return OK


def cmd_serve(args: argparse.Namespace) -> int:
    from webapp.serve import serve

    store = _store_path(args)
    require_store(store)
    serve(store, host=args.host, port=args.port, threads=args.threads)
    return OK


# -- parser --------------------------------------------------------------------------------------------


def _engine_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("sparql", "pyshacl"), default="sparql",
                   help="SHACL engine: the shapes compiled to SPARQL (default) or pySHACL, the slower reference")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmokg", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"cmokg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--store", metavar="DIR", help=f"the embedded store (default: $CMOKG_STORE or {DEFAULT_STORE})")
        return p

    p = command("build", "build the graph from the ontology, vocabularies and data/ into a fresh store")
    p.add_argument("--data", metavar="DIR", help="folder holding workbooks/ (default: the project's data/)")
    _engine_option(p)
    p.set_defaults(func=cmd_build)

    p = command("validate", "validate workbooks (against the store's graph when there is one) and list what importing "
                "a revision would change; writes nothing")
    p.add_argument("files", nargs="+", metavar="FILE", help=".xlsx, a folder of .csv files, or .csv files")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--reviewer", help="who extracted (default: $CMOKG_REVIEWER or the login name)")
    _engine_option(p)
    p.set_defaults(func=cmd_validate)

    p = command("import", "validate workbooks and import each as one batch (named graph); refuses on violations")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="format of a refusal report")
    p.add_argument("--reviewer", help="who imports (default: $CMOKG_REVIEWER or the login name)")
    _engine_option(p)
    p.set_defaults(func=cmd_import)

    p = command("query", "run a catalog query by name (see queries/catalog) or a .rq file")
    p.add_argument("query", metavar="NAME|FILE")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="a catalog query parameter (repeatable)")
    p.add_argument("--limit", metavar="N", help="at most N rows of a catalog query (a page)")
    p.add_argument("--offset", metavar="N", help="skip the first N rows of a catalog query (with --limit: a page)")
    p.add_argument("--format", choices=("table", "json", "xml", "csv", "tsv"), default="table",
                   help="SPARQL results formats; a CONSTRUCT or DESCRIBE prints Turtle (table), JSON-LD (json) or "
                        "RDF/XML (xml)")
    p.set_defaults(func=cmd_query)

    p = command("reason", "check with HermiT that the ontology, vocabularies and stored data are consistent")
    p.set_defaults(func=cmd_reason)

    p = command("template", "write an empty extraction workbook (.xlsx) with headers, notes and drop-down lists")
    p.add_argument("file", metavar="FILE.xlsx")
    p.set_defaults(func=cmd_template)

    p = command("export", "dump the store (all graphs as N-Quads or TriG, or one graph as Turtle/N-Triples)")
    p.add_argument("--format", choices=tuple(EXPORT_FORMATS), default="nq")
    p.add_argument("--graph", metavar="IRI", help="only this named graph")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=cmd_export)

    p = command("batches", "list the import batches with file, time, reviewer and size")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_batches)

    p = command("serve", "serve the SPARQL endpoint and pages with a production WSGI server (gunicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=8, help="request threads (one process: the store is local)")
    p.set_defaults(func=cmd_serve)

    # Commands that live in modules of their own add themselves here: `register(command)` receives the
    # factory above (which adds --store) and calls it once per subcommand.
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        err.print(f"cmokg {args.command}: {exc}", markup=False)
        return BAD_INPUT
    except StoreError as exc:
        err.print(f"cmokg {args.command}: {exc}", markup=False)
        return BAD_INPUT
    except BrokenPipeError:
        return OK


if __name__ == "__main__":
    sys.exit(main())
