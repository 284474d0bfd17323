"""Evidence maps on the web: the dimension x setting matrix and the CMOC network.

The drawings are the ones `cmokg map` writes (graph/maps.py), with links made local: a matrix cell links to
the list of its CMOCs (/cmocs?dimension=...&setting=...), a CMOC to its /id/cmoc/... page. /maps/matrix is an
HTML table that needs no JavaScript; /maps/network is explored with cytoscape (served from node_modules by
the assets blueprint) fed by /maps/network.json, and without JavaScript shows the same network as an SVG and
a table of links. A large graph's network is paged (`?page=`, NETWORK_PAGE CMOCs by IRI, the leadsTo links
among them), so that a page stays small and fast.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, url_for

from graph.maps import (
    Cell,
    Matrix,
    Network,
    cmoc_count,
    cmoc_network,
    evidence_matrix,
    matrix_scene,
    network_scene,
    to_svg,
)

from . import get_store
from .assets import assets_installed
from .browse import BadParameter, Paging, bad_request, ordered_cmocs, page_number
from .linkeddata import link_target
from .memo import kept, local_store
from .sparql import error

bp = Blueprint("maps", __name__)

CYTOSCAPE = "cytoscape/dist/cytoscape.min.js"
SVG = "image/svg+xml"
NETWORK_PAGE = 200  # CMOCs per page of the network: a large graph is explored a page at a time


def cell_url(cell: Cell) -> str:
    return url_for("browse.cmocs", dimension=cell.dimension.slug, setting=cell.setting.slug)


def _local(iri: str) -> str:
    """A CMOC's link in the SVG and the JSON (the network page opens it on double-click): its /id/ page, a web
    IRI as it is, never a javascript: or data: IRI."""
    return link_target(iri)


@bp.route("/maps")
def index() -> str:
    """The evidence maps and their formats."""
    return render_template("maps.html")


def _matrix() -> Matrix:
    """The matrix, kept until the store's next write (webapp.memo): it reads every CMOC and fragment (1.7 s at
    100k CMOCs), the same for every reader, and /maps/matrix.svg draws it again."""
    return kept("matrix", lambda: evidence_matrix(get_store()))


@bp.route("/maps/matrix")
def matrix() -> str:
    """Framework dimension x setting table of CMOC counts shaded by evidence strength, cells linking to their CMOCs."""
    m = _matrix()
    rows = [[m.cell(d, s) for s in m.settings] for d in m.dimensions]
    return render_template("maps_matrix.html", matrix=m, rows=rows, cell_url=cell_url, strongest=m.max_strength)


@bp.route("/maps/matrix.svg")
def matrix_svg() -> Response:
    """The dimension x setting matrix as SVG (the drawing `cmokg map matrix` writes)."""
    scene = matrix_scene(_matrix(), cell_url)
    return Response(to_svg(scene), mimetype=SVG)


def _network_page() -> tuple[Network, Paging]:
    """The CMOCs of the requested page (?page=, NETWORK_PAGE CMOCs each); BadParameter for a bad page. The page
    is a slice of the CMOCs in IRI order, kept until the store's next write (browse.ordered_cmocs), for the
    app's own store; a remote store is asked for the page each time."""
    store = get_store()
    if not local_store():
        paging = Paging(page_number(request.args), NETWORK_PAGE, cmoc_count(store))
        return cmoc_network(store, paging.size, paging.offset), paging
    ordered = ordered_cmocs({}, {})
    paging = Paging(page_number(request.args), NETWORK_PAGE, len(ordered))
    return cmoc_network(store, chosen=ordered[paging.offset:paging.offset + paging.size]), paging


@bp.route("/maps/network")
def network() -> Any:
    """The CMOC network (C -> M -> O, leadsTo): interactive with cytoscape; without JavaScript SVG and links."""
    try:
        net, paging = _network_page()
    except BadParameter as exc:
        return bad_request(exc)
    svg = to_svg(network_scene(net), _local)
    labels = {c.iri: c.label for c in net.cmocs}
    return render_template("maps_network.html", network=net, svg=svg, labels=labels, paging=paging,
                           interactive=assets_installed(CYTOSCAPE), cytoscape=CYTOSCAPE)


@bp.route("/maps/network.json")
def network_json() -> Any:
    """The CMOC network as Cytoscape.js elements {"nodes": [...], "edges": [...]} (?page=); CMOCs carry their href."""
    try:
        net, _ = _network_page()
    except BadParameter as exc:
        return error(400, str(exc))
    return jsonify(net.elements(_local))


@bp.route("/maps/network.svg")
def network_svg() -> Response:
    """The CMOC network as SVG (the drawing `cmokg map network` writes), ?page= as the network page."""
    try:
        net, _ = _network_page()
    except BadParameter as exc:
        return error(400, str(exc))
    return Response(to_svg(network_scene(net), _local), mimetype=SVG)
