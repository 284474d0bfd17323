"""Evidence maps on the web: the dimension x setting matrix and the CMOC network."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("maps", __name__)
