"""Front-end packages installed from npm at setup (node_modules), served under /assets/."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("assets", __name__)
