"""The query catalog for people and programs: /queries (HTML, JSON, OpenAPI) and /queries/<name>."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("catalog", __name__)
