"""Pages for people: the home page with what the graph holds."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from . import get_store
from .memo import kept

bp = Blueprint("pages", __name__)


def holdings() -> tuple[dict[str, int], list[Any]]:
    """What the graph holds (counts by kind, statements) and its import batches. Counting the statements reads
    every quad (len() of the RocksDB store: 1.0 s of the 1.2 s the home page took at 100k CMOCs, 5.3M quads),
    so they are kept until the store's next write (webapp.memo)."""
    store = get_store()
    return kept("home", lambda: (store.counts(), store.batches()))


@bp.route("/")
def home() -> str:
    """The home page: what the graph holds (reviews, sources, CMOCs, evidence, batches) with counts and entry points."""
    counts, batches = holdings()
    return render_template("home.html", counts=counts, batches=batches)
