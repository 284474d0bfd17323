"""Pages for people: the home page with what the graph holds."""

from __future__ import annotations

from flask import Blueprint, render_template

from . import get_store

bp = Blueprint("pages", __name__)


@bp.route("/")
def home() -> str:
    """The home page: what the graph holds (reviews, sources, CMOCs, evidence, batches) with counts and entry points."""
    store = get_store()
    return render_template("home.html", counts=store.counts(), batches=store.batches())
