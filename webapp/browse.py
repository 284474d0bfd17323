"""Browse pages: reviews, a review's CMOCs by programme theory, the framework, text search."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("browse", __name__)
