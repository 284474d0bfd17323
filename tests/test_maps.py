"""Evidence maps on the seed graph: the matrix and the network as data, as SVG and PNG, on the web and from
`cmokg map`.

The matrix is checked cell by cell against counts made in Python from plain SPARQL patterns; the network
against the store's CMOCs and leadsTo links. SVG is parsed as XML (one `rect.cell` per non-empty cell, one
`rect.cmoc` per CMOC); PNG by its signature and IHDR size.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from test_browse import ID, pairs, parse_html, path_of

from graph.cli import main
from graph.maps import (
    APPRAISAL,
    Cell,
    CmocNode,
    Concept,
    Matrix,
    Network,
    cmoc_network,
    evidence_matrix,
    matrix_scene,
    network_scene,
    to_png,
    to_svg,
)
from graph.store import EvidenceStore
from webapp import maps as maps_web

SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def matrix(seed_evidence_store: EvidenceStore) -> Matrix:
    return evidence_matrix(seed_evidence_store)


def expected_cells(store: EvidenceStore) -> dict[tuple[str, str], dict[str, object]]:
    """(dimension, setting) -> CMOCs, supporting and refuting fragments and supporting fragments by rigour,
    counted in Python from plain patterns."""
    settings = pairs(store, "?c a cmo:CMOConfiguration ; cmo:inSetting ?s . ?s a cmo:Setting", "c", "s")
    dims = pairs(store, "?c a cmo:CMOConfiguration ; cmo:drawsOn ?r . ?r skos:broader ?d . "
                        "?d a cmo:FrameworkDimension", "c", "d")
    members: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c, s in settings:
        for c2, d in dims:
            if c == c2:
                members[(d, s)].add(c)
    supports = pairs(store, "?e cmo:supports ?c OPTIONAL { ?e cmo:rigour ?r }", "e", "c", "r")
    refutes = pairs(store, "?e cmo:refutes ?c", "e", "c")
    out: dict[tuple[str, str], dict[str, object]] = {}
    for key, cmocs in members.items():
        rigour: dict[str, set[str]] = defaultdict(set)
        for e, c, r in supports:
            if c in cmocs:
                rigour[r].add(e)
        out[key] = {"cmocs": len(cmocs), "supporting": len({e for e, c, _ in supports if c in cmocs}),
                    "refuting": len({e for e, c in refutes if c in cmocs}),
                    "by_rigour": {r: len(es) for r, es in rigour.items()}}
    return out


# -- the matrix -------------------------------------------------------------------------------------------


def test_matrix_cells_equal_an_independent_count(matrix: Matrix, seed_evidence_store: EvidenceStore) -> None:
    expected = expected_cells(seed_evidence_store)
    got = {key: {"cmocs": c.cmocs, "supporting": c.supporting, "refuting": c.refuting, "by_rigour": c.by_rigour}
           for key, c in matrix.cells.items()}
    assert got == expected
    assert [d.label for d in matrix.dimensions] == ["individual characteristics", "interpersonal relations",
                                                    "organisational contingencies", "policy structures"]
    assert len(matrix.settings) == 3
    everything = {c for (c,) in pairs(seed_evidence_store, "?c a cmo:CMOConfiguration", "c")}
    placed = {c for (c,) in pairs(seed_evidence_store, """?c cmo:inSetting ?s ; cmo:drawsOn ?r .
        ?s a cmo:Setting . ?r skos:broader ?d . ?d a cmo:FrameworkDimension""", "c")}
    assert matrix.unplaced == len(everything - placed)
    for cell in matrix.cells.values():
        weights = {APPRAISAL + "high": 3, APPRAISAL + "moderate": 2, APPRAISAL + "low": 1, "": 1}
        assert cell.strength == sum(weights[r] * n for r, n in cell.by_rigour.items())
        assert sum(cell.by_rigour.values()) == cell.supporting


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text)


def test_matrix_svg_has_one_rect_per_non_empty_cell(matrix: Matrix) -> None:
    root = _svg(to_svg(matrix_scene(matrix)))
    rects = [r for r in root.iter(SVG + "rect") if r.get("class") == "cell"]
    assert len(rects) == sum(1 for c in matrix.cells.values() if c.cmocs)
    by_key = {(r.get("data-dimension"), r.get("data-setting")): r for r in rects}
    for key, cell in matrix.cells.items():
        assert by_key[key].get("data-cmocs") == str(cell.cmocs)
        assert by_key[key].get("data-supporting") == str(cell.supporting)
    empty = [r for r in root.iter(SVG + "rect") if r.get("class") == "empty"]
    assert len(rects) + len(empty) == len(matrix.dimensions) * len(matrix.settings)


def test_matrix_page_cells_link_to_their_cmocs(client: FlaskClient, matrix: Matrix) -> None:
    r = client.get("/maps/matrix")
    assert r.status_code == 200
    cells = parse_html(r.get_data(as_text=True)).find_all("td", class_="cell")
    assert len(cells) == sum(1 for c in matrix.cells.values() if c.cmocs)
    for td in cells:
        cell = matrix.cells[(td.attrs["data-dimension"], td.attrs["data-setting"])]
        assert int(td.attrs["data-cmocs"]) == cell.cmocs
        assert "background" in td.attrs["style"]
        [a] = td.find_all("a")
        url = urlsplit(a.attrs["href"])
        assert url.path == "/cmocs"
        assert parse_qs(url.query) == {"dimension": [cell.dimension.slug], "setting": [cell.setting.slug]}
        listed = parse_html(client.get(a.attrs["href"]).get_data(as_text=True))
        assert int(listed.one(id="total").attrs["data-total"]) == cell.cmocs
    strongest = max(matrix.cells.values(), key=lambda c: c.strength)
    weakest = min(matrix.cells.values(), key=lambda c: c.strength)
    assert matrix.fill(strongest) != matrix.fill(weakest)


def test_matrix_svg_on_the_web_links_cells(client: FlaskClient, matrix: Matrix) -> None:
    r = client.get("/maps/matrix.svg")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    root = _svg(r.get_data(as_text=True))
    links = [a for a in root.iter(SVG + "a") if a.find(SVG + "rect") is not None]
    assert len(links) == sum(1 for c in matrix.cells.values() if c.cmocs)
    assert all(a.get("href", "").startswith("/cmocs?") for a in links)


# -- the network ------------------------------------------------------------------------------------------


def test_network_json_matches_the_graph(client: FlaskClient, seed_evidence_store: EvidenceStore) -> None:
    r = client.get("/maps/network.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    data = r.get_json()
    nodes = {n["data"]["id"]: n["data"] for n in data["nodes"]}
    cmocs = {c for (c,) in pairs(seed_evidence_store, "?c a cmo:CMOConfiguration", "c")}
    assert {i for i, d in nodes.items() if d["kind"] == "cmoc"} == cmocs
    parts = {(c, p) for c, p in pairs(seed_evidence_store, """?c a cmo:CMOConfiguration .
        { ?c cmo:hasContext ?p } UNION { ?c cmo:hasMechanism ?p } UNION { ?c cmo:hasOutcome ?p }""", "c", "p")}
    assert {(d["parent"], i) for i, d in nodes.items() if d["kind"] != "cmoc"} == parts
    for i, d in nodes.items():
        if d["kind"] == "cmoc":
            assert d["href"] == path_of(i)
    edges = [e["data"] for e in data["edges"]]
    leads = pairs(seed_evidence_store, "?a cmo:leadsTo ?b . ?a a cmo:CMOConfiguration . ?b a cmo:CMOConfiguration",
                  "a", "b")
    assert {(e["source"], e["target"]) for e in edges if e["kind"] == "leadsTo"} == leads and leads
    inner = [e for e in edges if e["kind"] != "leadsTo"]
    assert len(inner) == 2 * len(cmocs)
    for e in inner:
        assert nodes[e["source"]]["parent"] == nodes[e["target"]]["parent"]
        assert (nodes[e["source"]]["kind"], nodes[e["target"]]["kind"]) in {("context", "mechanism"),
                                                                            ("mechanism", "outcome")}
    contexts = {c: t for c, t in pairs(seed_evidence_store, "?c cmo:hasContext/cmo:description ?t", "c", "t")}
    for c in cmocs:
        assert nodes[c + "/context"]["text"] == contexts[c]


def test_network_orders_chains_contiguously(seed_evidence_store: EvidenceStore) -> None:
    net = cmoc_network(seed_evidence_store)
    row = {c.iri: i for i, c in enumerate(net.cmocs)}
    assert len(row) == len(net.cmocs) == len({c.iri for c in net.cmocs})
    successors = defaultdict(int, {a: sum(1 for x, _ in net.leads_to if x == a) for a, _ in net.leads_to})
    predecessors = defaultdict(int, {b: sum(1 for _, y in net.leads_to if y == b) for _, b in net.leads_to})
    simple = [(a, b) for a, b in net.leads_to if successors[a] == 1 and predecessors[b] == 1]
    assert simple
    for a, b in simple:  # a one-to-one step of a chain: the next row
        assert row[b] == row[a] + 1, (a, b)


def test_network_svg_has_a_rect_per_cmoc_and_an_arc_per_link(client: FlaskClient,
                                                              seed_evidence_store: EvidenceStore) -> None:
    net = cmoc_network(seed_evidence_store)
    for text in (to_svg(network_scene(net)), client.get("/maps/network.svg").get_data(as_text=True)):
        root = _svg(text)
        rects = [r for r in root.iter(SVG + "rect") if r.get("class") == "cmoc"]
        assert {r.get("data-iri") for r in rects} == {c.iri for c in net.cmocs}
        arcs = [p for p in root.iter(SVG + "path") if "leadsTo" in (p.get("class") or "").split()]
        assert len(arcs) == len(net.leads_to)
    hrefs = {a.get("href") for a in _svg(client.get("/maps/network.svg").get_data(as_text=True)).iter(SVG + "a")}
    assert hrefs == {path_of(c.iri) for c in net.cmocs}


def test_network_page_works_without_javascript(client: FlaskClient, seed_evidence_store: EvidenceStore) -> None:
    r = client.get("/maps/network")
    assert r.status_code == 200
    doc = parse_html(r.get_data(as_text=True))
    figure = doc.one("figure", id="static-network")
    assert figure.find_all("svg")
    cmocs = {c for (c,) in pairs(seed_evidence_store, "?c a cmo:CMOConfiguration", "c")}
    rows = doc.one("table", id="links").find_all("tr", data_cmoc=None)
    assert {row.attrs["data-cmoc"] for row in rows} == cmocs
    for row in rows:
        [a] = row.find_all("a", class_="cmoc")
        assert a.attrs["href"] == path_of(row.attrs["data-cmoc"])
    scripts = [s.attrs.get("src", "") for s in doc.find_all("script")]
    assert any(s.startswith("/assets/cytoscape/dist/cytoscape.min.js") for s in scripts)
    with client.get(next(s for s in scripts if s)) as asset:  # a file response: closed here
        assert asset.status_code == 200
    assert doc.one("div", id="cy").attrs["data-source"] == "/maps/network.json"


def test_network_is_paged(client: FlaskClient, seed_evidence_store: EvidenceStore,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maps_web, "NETWORK_PAGE", 10)
    cmocs = sorted(c for (c,) in pairs(seed_evidence_store, "?c a cmo:CMOConfiguration", "c"))
    leads = pairs(seed_evidence_store, "?a cmo:leadsTo ?b", "a", "b")
    seen: list[str] = []
    links: set[tuple[str, ...]] = set()
    for number in range(1, -(-len(cmocs) // 10) + 1):
        data = client.get(f"/maps/network.json?page={number}").get_json()
        page = [n["data"]["id"] for n in data["nodes"] if n["data"]["kind"] == "cmoc"]
        assert sorted(page) == cmocs[(number - 1) * 10:number * 10]
        seen += page
        links |= {(e["data"]["source"], e["data"]["target"]) for e in data["edges"] if e["data"]["kind"] == "leadsTo"}
        svg = _svg(client.get(f"/maps/network.svg?page={number}").get_data(as_text=True))
        assert {r.get("data-iri") for r in svg.iter(SVG + "rect") if r.get("class") == "cmoc"} == set(page)
    assert sorted(seen) == cmocs
    same_page = {(a, b) for a, b in leads if cmocs.index(a) // 10 == cmocs.index(b) // 10}
    assert links == same_page
    doc = parse_html(client.get("/maps/network?page=2").get_data(as_text=True))
    assert doc.one("nav", class_="pager").attrs["data-page"] == "2"
    assert doc.one("div", id="cy").attrs["data-source"] == "/maps/network.json?page=2"
    for url in ("/maps/network?page=0", "/maps/network.json?page=x", "/maps/network.svg?page=-2"):
        assert client.get(url).status_code == 400, url


def test_maps_index_links_every_map(client: FlaskClient) -> None:
    doc = parse_html(client.get("/maps").get_data(as_text=True))
    hrefs = {a.attrs["href"] for a in doc.one("ul", id="maps").find_all("a")}
    assert hrefs == {"/maps/matrix", "/maps/matrix.svg", "/maps/network", "/maps/network.svg", "/maps/network.json"}
    for href in hrefs:
        assert client.get(href).status_code == 200


# -- PNG and the command line -----------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("name", ["matrix", "network"])
def test_cmokg_map_writes_svg_and_png(name: str, seed_store_path: Path, tmp_path: Path,
                                      seed_evidence_store: EvidenceStore) -> None:
    scene = (matrix_scene(evidence_matrix(seed_evidence_store)) if name == "matrix"
             else network_scene(cmoc_network(seed_evidence_store)))
    svg, png = tmp_path / f"{name}.svg", tmp_path / f"{name}.PNG"
    assert main(["map", name, "--out", str(svg), "--store", str(seed_store_path)]) == 0
    assert main(["map", name, "--out", str(png), "--store", str(seed_store_path)]) == 0
    root = ET.parse(svg).getroot()
    assert root.tag == SVG + "svg"
    assert float(root.get("width", 0)) == pytest.approx(scene.width, abs=0.1)
    width, height = _png_size(png.read_bytes())
    assert (width, height) == (round(scene.width * 2), round(scene.height * 2))
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("args", [
    ["map", "matrix", "--out", "{tmp}/matrix.pdf"],
    ["map", "matrix", "--out", "{tmp}/no/such/folder/matrix.svg"],
    ["map", "network", "--out", "{tmp}/n.svg", "--store", "{tmp}/no-store"],
])
def test_cmokg_map_refuses_bad_usage(args: list[str], tmp_path: Path, seed_store_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--store" not in argv:
        argv += ["--store", str(seed_store_path)]
    assert main(argv) == 2
    assert "cmokg map" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.svg")) and not list(tmp_path.glob("*.pdf"))


def test_maps_of_an_empty_graph(schema_store: EvidenceStore) -> None:
    matrix = evidence_matrix(schema_store)
    assert matrix.cells == {} and len(matrix.dimensions) == 4
    root = _svg(to_svg(matrix_scene(matrix)))
    assert [r for r in root.iter(SVG + "rect") if r.get("class") == "cell"] == []
    net = cmoc_network(schema_store)
    assert net.cmocs == [] and net.elements(str) == {"nodes": [], "edges": []}
    assert _png_size(to_png(network_scene(net)))[0] > 0


def test_png_leaves_no_pyplot_state() -> None:
    code = ("import sys\nfrom graph.maps import Network, network_scene, to_png\n"
            "to_png(network_scene(Network([], [])))\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_text_with_markup_and_dollars_is_drawn_literally() -> None:
    node = CmocNode(ID + "cmoc/x", "<b>x</b> & $y$", "costs $5 & <more>", "", "", "")
    scene = network_scene(Network([node], []))
    texts = "".join(t.text or "" for t in _svg(to_svg(scene)).iter(SVG + "text"))
    assert "<b>x</b> & $y$" in texts and "costs $5 & <more>" in texts
    assert _png_size(to_png(scene)) == (round(scene.width * 2), round(scene.height * 2))


def _contrast(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two #rrggbb colours, computed here from the definition."""

    def luminance(colour: str) -> float:
        def linear(c: float) -> float:
            return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

        r, g, b = (linear(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_matrix_cell_text_meets_aa_contrast_at_every_strength() -> None:
    """Regression: white above a fixed shade and near-black below left mid shades at 2.85–4.4:1 (axe found 12
    cells of the seed matrix); normal text needs 4.5:1 (WCAG 2.1 AA)."""
    dim, setting = Concept("urn:d", "d"), Concept("urn:s", "s")
    strongest = Cell(dim, setting, by_rigour={"": 100})
    matrix = Matrix([dim], [setting], {("urn:d", "urn:s"): strongest}, 0)
    worst = min(_contrast(matrix.fill(cell), matrix.ink(cell))
                for cell in (Cell(dim, setting, by_rigour={"": n}) for n in range(1, 101)))
    assert worst >= 4.5


def test_map_svg_is_not_an_image_role_around_its_links(seed_evidence_store: EvidenceStore) -> None:
    """Regression: role="img" on the root made the cells' links focusable content inside an image (axe
    nested-interactive); the SVG keeps its <title> as its name."""
    svg = ET.fromstring(to_svg(matrix_scene(evidence_matrix(seed_evidence_store), lambda cell: "/x")))
    assert svg.get("role") is None
    assert svg.find("{http://www.w3.org/2000/svg}title") is not None
    assert svg.findall(".//{http://www.w3.org/2000/svg}a")
