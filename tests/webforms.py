"""Posting the web app's forms from a Flask test client: multipart bodies encoded in memory (the test client
would spool a large body to a temporary file of its own)."""

from __future__ import annotations

import io
from typing import Any

from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart


def post(client: FlaskClient, url: str, name: str | None = None, data: bytes | None = None, **form: str) -> Any:
    """POST `form` to `url` as multipart/form-data, with `data` as the uploaded file `name` (field `workbook`)."""
    fields: dict[str, object] = dict(form)
    if data is not None:
        fields["workbook"] = FileStorage(io.BytesIO(data), name)
    boundary, body = encode_multipart(fields)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")
