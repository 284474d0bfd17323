"""Workbooks for the web app's forms: a workbook's CSV files written to a folder or zipped (as /review takes
them), and forms posted from a Flask test client, multipart bodies encoded in memory (the test client would
spool a large body to a temporary file of its own)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

GOOD = Path(__file__).parent / "fixtures" / "workbooks" / "good"
# Texts of the good fixture, and what the revisions in tests change them to or add
QUOTE, NEW_QUOTE = "Training made conversations feel natural.", "Training made talking feel natural."
CONTEXT = "Link workers receive motivational interviewing training"
NEW_CONTEXT = "Link workers receive a day of motivational interviewing training"
E3_QUOTE = "Some patients did not attend despite trusting the link worker."
C3_ROW = ("fx-c3,fx-review,CMOC3,,Patients have a named link worker,,Patients know whom to ask,"
          "Patients ask for help sooner,link workers,,,,\"Reviewer, Fixture\",\n")


def good_files() -> dict[str, str]:
    """The good fixture's CSV files, name -> text."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(GOOD.glob("*.csv"))}


def post(client: FlaskClient, url: str, name: str | None = None, data: bytes | None = None, **form: str) -> Any:
    """POST `form` to `url` as multipart/form-data, with `data` as the uploaded file `name` (field `workbook`)."""
    fields: dict[str, object] = dict(form)
    if data is not None:
        fields["workbook"] = FileStorage(io.BytesIO(data), name)
    boundary, body = encode_multipart(fields)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def write(folder: Path, files: dict[str, str]) -> Path:
    """A workbook's CSV files (name -> text) written into `folder` (its workbook id)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def zipped(files: dict[str, str]) -> bytes:
    """A workbook's CSV files (name -> text) as the bytes of a zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()
