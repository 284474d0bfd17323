"""/review: upload a workbook, read the validation report, download it, and import it with a reviewer token.

The upload is held in memory while the request is parsed (never spooled by Werkzeug to a temporary file of
its own) and written only into a temporary folder created for the request and removed after it. A workbook
that conforms is kept in memory (a few, for an hour) so the import button need not upload it again.
Importing needs the token in `CMOKG_REVIEWER_TOKEN`; with none configured, importing over the web is off.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import lzma
import re
import secrets
import tempfile
import threading
import time
import unicodedata
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from flask import Blueprint, Flask, Request, Response, current_app, render_template, request

from graph.pipeline import import_workbook, same_file_findings
from graph.report import Finding, Report, change_counts, change_text
from graph.validate import validate_workbook

from . import get_store
from .sparql import buffer_unsized_body

bp = Blueprint("review", __name__)

DEFAULT_UPLOAD_LIMIT = 16 * 1024 * 1024
MAX_ZIP_MEMBERS = 64
MAX_ZIP_RATIO = 200
# Validated uploads kept for their import: an hour each, the oldest dropped first beyond a count or a size
# (their bytes are held in memory; a workbook is typically tens or hundreds of KB)
PENDING_MAX = 256
PENDING_BYTES = 128 * 1024 * 1024
PENDING_SECONDS = 3600
_pending: OrderedDict[str, Pending] = OrderedDict()
_lock = threading.Lock()


@dataclass
class Pending:
    filename: str
    data: bytes
    sha256: str
    created: float
    importing: bool = False  # an import of it is under way (a second one waits for none: 409)
    batch: str | None = None  # imported as this batch (the data is let go; using the key again: 409)


class InMemoryUploads(Request):
    """Form files stay in memory (the size limit bounds them): nothing is written outside our temp folder."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        return io.BytesIO()


@bp.record_once
def _setup(state: Any) -> None:
    app: Flask = state.app
    app.request_class = InMemoryUploads


@bp.before_request
def _limit() -> None:
    request.max_content_length = int(current_app.config.get("CMOKG_UPLOAD_LIMIT") or DEFAULT_UPLOAD_LIMIT)
    buffer_unsized_body(request.max_content_length)  # a chunked upload over the limit: 413, not cut short


def _token_configured() -> str | None:
    token = current_app.config.get("CMOKG_REVIEWER_TOKEN")
    return str(token) if token else None


class BadUpload(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_UNSAFE_NAME = re.compile(r"[^\w.-]+")
MAX_NAME_CHARS = 80


def safe_name(filename: str, default: str = "workbook") -> str:
    """A client's file name made safe to create in our temp folder, its letters kept in any script: the last
    path segment only (either slash), runs of anything but letters, digits, '_', '-' and '.' as '_', no
    leading or trailing dots (no hidden files, no '..'), the stem at most MAX_NAME_CHARS characters.
    werkzeug's secure_filename keeps ASCII only: '研究.xlsx' became 'xlsx' (no suffix)."""
    base = unicodedata.normalize("NFC", filename.replace("\\", "/").rsplit("/", 1)[-1])
    path = PurePosixPath(base) if base not in ("", ".", "..") else PurePosixPath(default)
    stem = _UNSAFE_NAME.sub("_", path.stem if path.suffix else base).strip("._")[:MAX_NAME_CHARS].strip("._")
    suffix = _UNSAFE_NAME.sub("_", path.suffix) if path.suffix else ""
    return (stem or default) + suffix


def _write_upload(folder: Path, filename: str, data: bytes) -> list[Path]:
    """Put the upload in `folder` as the reader expects it: one .xlsx, or a folder of CSVs from a .zip. The
    kind is told by the suffix of the name the client gave; the file is written under `safe_name`."""
    name = safe_name(filename)
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        path = folder / name
        path.write_bytes(data)
        return [path]
    if suffix == ".csv":
        path = folder / name
        path.write_bytes(data)
        return [path]
    if suffix == ".zip":
        return [_unzip_csvs(folder, PurePosixPath(name).stem or "workbook", data)]
    raise BadUpload(415, f"{filename!r}: upload an .xlsx workbook or a .zip of sources.csv, cmocs.csv and "
                         "evidence.csv")


def _unzip_csvs(folder: Path, stem: str, data: bytes) -> Path:
    target = folder / stem
    target.mkdir()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > MAX_ZIP_MEMBERS:
                raise BadUpload(400, f"the zip holds {len(infos)} files; a workbook has three CSV files")
            total = sum(i.file_size for i in infos)
            packed = sum(i.compress_size for i in infos) or 1
            limit = int(current_app.config.get("CMOKG_UPLOAD_LIMIT") or DEFAULT_UPLOAD_LIMIT) * 4
            if total > limit or total / packed > MAX_ZIP_RATIO:
                raise BadUpload(400, f"the zip expands to {total} bytes from {packed}: refused as a possible "
                                     "zip bomb")
            found = 0
            written: dict[str, str] = {}  # lower-cased path in `target` -> the member written there
            for info in infos:
                parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                base = parts[-1] if parts else ""
                if base.startswith(".") or "__MACOSX" in parts:
                    continue
                if base.lower().endswith(".csv"):
                    dest = target / safe_name(base, "sheet")
                elif len(parts) >= 2 and parts[-2] == "fulltext" and base.lower().endswith(".txt"):
                    (target / "fulltext").mkdir(exist_ok=True)
                    dest = target / "fulltext" / safe_name(base, "text")
                else:
                    continue
                key = str(dest.relative_to(target)).lower()  # SOURCES.CSV and sources.csv are one sheet
                if key in written:
                    raise BadUpload(400, f"the zip holds both {written[key]!r} and {info.filename!r}, which would "
                                         f"both be read as {dest.name}: keep one of them")
                written[key] = info.filename
                with zf.open(info) as src:
                    chunk = src.read(info.file_size + 1)
                if len(chunk) != info.file_size:
                    raise BadUpload(400, f"zip entry {info.filename} is not the size it claims")
                dest.write_bytes(chunk)
                found += dest.suffix.lower() == ".csv"
            if not found:
                raise BadUpload(400, "the zip holds no .csv files (expected sources.csv, cmocs.csv, evidence.csv)")
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError) as exc:  # not a zip, or damaged data
        raise BadUpload(400, f"the upload is not a readable zip file: {exc}") from None
    except (RuntimeError, NotImplementedError) as exc:  # encrypted or unsupported entries
        raise BadUpload(400, f"the zip cannot be read: {exc}") from None
    return target


def _remember(filename: str, data: bytes) -> str:
    key = secrets.token_urlsafe(16)
    now = time.monotonic()
    with _lock:
        for k in [k for k, p in _pending.items() if now - p.created > PENDING_SECONDS]:
            del _pending[k]
        held = sum(len(p.data) for p in _pending.values())
        while _pending and (len(_pending) >= PENDING_MAX or held + len(data) > PENDING_BYTES):
            held -= len(_pending.popitem(last=False)[1].data)
        _pending[key] = Pending(filename, data, hashlib.sha256(data).hexdigest(), now)
    return key


def _recall(key: str) -> Pending | None:
    with _lock:
        p = _pending.get(key)
        if p is not None and time.monotonic() - p.created > PENDING_SECONDS:
            del _pending[key]
            return None
        return p


def _forget(key: str) -> None:
    with _lock:
        _pending.pop(key, None)


def _claim(key: str) -> Pending:
    """Take a pending upload for one import: a second request with the same key (a double click, two tabs)
    while it is imported (409), or after (410, used up), imports nothing. Released by `_release` on failure,
    `_imported` on success."""
    p = _recall(key)
    with _lock:
        if p is None or _pending.get(key) is not p:
            raise BadUpload(410, "that upload has expired (uploads are kept for an hour, the oldest dropped first "
                                 f"beyond {PENDING_MAX} or {PENDING_BYTES // (1024 * 1024)} MiB): validate the "
                                 "workbook again, then import it")
        if p.batch is not None:
            raise BadUpload(410, f"{p.filename!r} was already imported from this upload, as batch {p.batch}: "
                                 "nothing more was imported. To import a corrected workbook, validate it again")
        if p.importing:
            raise BadUpload(409, f"{p.filename!r} is being imported from this upload by another request: nothing "
                                 "more was imported. See the batches (/queries/batches) once it is done")
        p.importing = True
        return p


def _release(p: Pending) -> None:
    with _lock:
        p.importing = False


def _imported(p: Pending, batch: str | None) -> None:
    with _lock:
        p.importing, p.batch, p.data = False, batch, b""


def _retry_key(key: str) -> str | None:
    """The key, if its upload can still be imported (the page shows the import form again with it)."""
    p = _recall(key) if key else None
    return key if p is not None and p.batch is None and not p.importing else None


def _report_response(report: Report, fmt: str, status: int) -> Response:
    stem = "cmokg-report"
    if fmt == "csv":
        return Response(report.to_csv(), status=status, mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename={stem}.csv"})
    return Response(report.to_json(), status=status, mimetype="application/json",
                    headers={"Content-Disposition": f"attachment; filename={stem}.json"})


def _error(status: int, message: str, fmt: str, pending: str | None = None, filename: str | None = None,
           ) -> Response:
    """The request was refused before any workbook was checked: the message (a report of that one finding for
    CSV and JSON); with `pending`, the page shows the import form again, to retry without uploading again."""
    report = Report(input_name="upload", unreadable=True, findings=[Finding("Violation", message)])
    if fmt in ("csv", "json"):
        return _report_response(report, fmt, status)
    body = render_template("review.html", report=None, error=message, pending=pending, filename=filename,
                           token_configured=bool(_token_configured()))
    return Response(body, status=status, mimetype="text/html")


def _upload() -> tuple[str, bytes]:
    file = request.files.get("workbook")
    if file is None or not file.filename:
        raise BadUpload(400, "choose a workbook to upload (form field 'workbook')")
    data = file.read()
    if not data:
        raise BadUpload(400, f"{file.filename!r} is empty (0 bytes)")
    return file.filename, data


def _validate(filename: str, data: bytes) -> Report:
    with tempfile.TemporaryDirectory(prefix="cmokg-review-") as tmp:
        paths = _write_upload(Path(tmp), filename, data)
        validated = validate_workbook(paths, get_store(), reviewer="web", workbook_id=_workbook_id(filename))
        report = validated.report
        report.extend(same_file_findings(get_store(), validated))  # the import refuses it: say so now
        # what importing it would change (the report's JSON and the page's section "What importing this changes")
        report.supersedes, report.changes = list(validated.supersedes), validated.change_rows()
    report.input_name = filename
    return report


def _in_store(nodes: list[str]) -> set[str]:
    """Those of `nodes` some graph of the store types (their /id/ page has something to show): one query bounded
    by the nodes."""
    if not nodes:
        return set()
    values = " ".join(f"<{n}>" for n in sorted(set(nodes)))
    rows = get_store().select(f"SELECT DISTINCT ?s WHERE {{ VALUES ?s {{ {values} }} GRAPH ?g {{ ?s a ?t }} }}")
    return {str(getattr(r["s"], "value", "")) for r in rows}


def _workbook_id(filename: str) -> str:
    """The workbook's id (re-uploads of one workbook supersede its batch): the stem of its safe name, letters
    in any script kept (as the CLI keeps the file's stem)."""
    return PurePosixPath(safe_name(filename)).stem or "workbook"


@bp.get("/review")
def form() -> str:
    """The reviewers' upload page: a workbook (.xlsx, or CSV files) to validate against the graph."""
    return render_template("review.html", report=None, token_configured=bool(_token_configured()))


@bp.post("/review")
def review() -> Response:
    """Validate an uploaded workbook against shapes and graph; findings by sheet, row and column, and what importing
    a revision would change."""
    fmt = request.form.get("format") or request.args.get("format") or "html"
    try:
        filename, data = _upload()
        report = _validate(filename, data)
    except BadUpload as exc:
        return _error(exc.status, exc.message, fmt)
    status = 422 if report.unreadable else 200
    if fmt in ("csv", "json"):
        return _report_response(report, fmt, status)
    pending = _remember(filename, data) if report.conforms and _token_configured() else None
    changes = report.changes if report.conforms and report.supersedes else None
    body = render_template("review.html", report=report, findings=report.sorted(), pending=pending,
                           token_configured=bool(_token_configured()), filename=filename, changes=changes,
                           supersedes=report.supersedes or [], change_counts=change_counts, change_text=change_text,
                           in_store=_in_store([str(c["node"]) for c in changes or []]),
                           json_href=_data_href(report.to_json(), "application/json"),
                           csv_href=_data_href(report.to_csv(), "text/csv"))
    return Response(body, status=status, mimetype="text/html")


def _data_href(text: str, mimetype: str) -> str:
    import base64

    return f"data:{mimetype};charset=utf-8;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")


@bp.post("/review/import")
def do_import() -> Response:
    """Import a validated workbook as one batch, for a reviewer with the token; nothing enters on any violation."""
    fmt = request.form.get("format") or request.args.get("format") or "html"
    expected = _token_configured()
    if expected is None:
        return _error(403, "importing over the web is off: no reviewer token is configured "
                           "(CMOKG_REVIEWER_TOKEN)", fmt)
    key = request.form.get("upload") or ""
    retry = _retry_key(key)
    given = request.form.get("token") or request.headers.get("X-Reviewer-Token") or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return _error(403, "wrong or missing reviewer token: nothing was imported; give the token again",
                      fmt, retry)
    reviewer = (request.form.get("reviewer") or "").strip()
    if not reviewer:
        return _error(400, "give the reviewer's name or ORCID (form field 'reviewer')", fmt, retry)
    pending: Pending | None = None
    try:
        if key:
            sent = request.files.get("workbook")
            if sent is not None and sent.filename:  # a file as well as a key: they must be the same workbook
                p = _recall(key)
                if p is not None and hashlib.sha256(sent.read()).hexdigest() != p.sha256:
                    raise BadUpload(400, f"the upload key is for {p.filename!r}, not the file {sent.filename!r} sent "
                                         "with it: nothing was imported; validate that file first")
            pending = _claim(key)
            filename, data = pending.filename, pending.data
        else:
            filename, data = _upload()
        store = get_store()
        with tempfile.TemporaryDirectory(prefix="cmokg-review-") as tmp:
            paths = _write_upload(Path(tmp), filename, data)
            with current_app.extensions["cmokg_write_lock"]:
                result = import_workbook(store, paths, reviewer, workbook_id=_workbook_id(filename))
                store.flush()
    except BadUpload as exc:
        if pending is not None:
            _release(pending)
        return _error(exc.status, exc.message, fmt)
    except OSError as exc:  # a read-only store
        if pending is not None:
            _release(pending)
        return _error(503, f"the store cannot be written: {exc}", fmt)
    except BaseException:
        if pending is not None:
            _release(pending)
        raise
    result.report.input_name = filename
    if pending is not None:
        if result.imported:
            _imported(pending, result.batch)
        else:
            _release(pending)
    if not result.imported:
        status = 422 if result.report.unreadable else 409
        if fmt in ("csv", "json"):
            return _report_response(result.report, fmt, status)
        body = render_template("review.html", report=result.report, findings=result.report.sorted(),
                               token_configured=True, filename=filename, refused=True,
                               json_href=_data_href(result.report.to_json(), "application/json"),
                               csv_href=_data_href(result.report.to_csv(), "text/csv"))
        return Response(body, status=status, mimetype="text/html")
    payload = {"batch": result.batch, "triples": result.triples, "superseded": result.superseded,
               "workbook_id": result.workbook_id, "warnings": len(result.report.warnings)}
    if fmt == "json":
        import json

        return Response(json.dumps(payload), status=201, mimetype="application/json")
    body = render_template("review_imported.html", result=result, filename=filename)
    return Response(body, status=201, mimetype="text/html")


@bp.errorhandler(413)
def too_large(_exc: Exception) -> Response:
    limit = int(current_app.config.get("CMOKG_UPLOAD_LIMIT") or DEFAULT_UPLOAD_LIMIT)
    fmt = request.args.get("format") or "html"
    return _error(413, f"the upload is larger than the limit of {_size(limit)}", fmt)


def _size(n: int) -> str:
    """A byte count as people read it: whole MiB or KiB when it is one (the default, 10 MiB), else bytes."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n:,} bytes"
