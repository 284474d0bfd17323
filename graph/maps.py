"""Evidence maps: the framework dimension x setting matrix and the CMOC network, as data and as drawings.

Data comes from aggregate SPARQL queries (never the whole graph in Python):
- `evidence_matrix`: for each framework dimension (rows, by `cmo:rank`) and setting (columns), the CMOCs that
  draw on a resource of the dimension in that setting, with the evidence behind them: supporting and refuting
  fragments, and the supporting fragments by rigour (appraisal vocabulary; "not appraised" when uncoded).
  A cell's *strength* is its rigour-weighted count of supporting fragments (`RIGOUR_WEIGHTS`); cells are
  shaded by strength relative to the strongest cell.
- `cmoc_network`: per CMOC a context, a mechanism and an outcome node (edges C -> M -> O, the parts being the
  IRIs the importer mints under the CMOC), and the `cmo:leadsTo` chains between CMOCs.

Each map is drawn once, as a `Scene` of simple shapes; `to_svg` writes the scene as SVG (cells and CMOCs carry
classes, data- attributes and links) and `to_png` paints the same scene with matplotlib's Agg canvas (no pyplot
state), so the SVG and the PNG cannot drift apart.
"""

from __future__ import annotations

import io
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

from .backend import Backend, Row
from .ordering import iri_order

APPRAISAL = "https://w3id.org/cmokg/id/concept/appraisal/"
NOT_APPRAISED = ""
RIGOUR_WEIGHTS = {APPRAISAL + "high": 3, APPRAISAL + "moderate": 2, APPRAISAL + "low": 1, NOT_APPRAISED: 1}
RIGOUR_LABELS = {APPRAISAL + "high": "high", APPRAISAL + "moderate": "moderate", APPRAISAL + "low": "low",
                 NOT_APPRAISED: "not appraised"}
RIGOUR_SHORT = {APPRAISAL + "high": "high", APPRAISAL + "moderate": "mod.", APPRAISAL + "low": "low",
                NOT_APPRAISED: "n/a"}
FONT = "DejaVu Sans, Verdana, sans-serif"


# -- data -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Concept:
    iri: str
    label: str

    @property
    def slug(self) -> str:
        return self.iri.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class Cell:
    dimension: Concept
    setting: Concept
    cmocs: int = 0
    supporting: int = 0
    refuting: int = 0
    by_rigour: dict[str, int] = field(default_factory=dict)  # rigour concept IRI ("" = not appraised) -> fragments

    @property
    def strength(self) -> int:
        return sum(RIGOUR_WEIGHTS.get(r, 1) * n for r, n in self.by_rigour.items())

    @property
    def title(self) -> str:
        return (f"{self.dimension.label} × {self.setting.label}: {self.cmocs} CMOC(s), {self.supporting} supporting "
                f"and {self.refuting} refuting fragment(s); rigour of the supporting: {self.rigour_summary()}")

    def rigour_summary(self, names: dict[str, str] = RIGOUR_LABELS) -> str:
        """Supporting fragments by rigour, e.g. "high 2, moderate 5" (levels outside the vocabulary omitted)."""
        parts = [f"{names[r]} {self.by_rigour[r]}" for r in names if self.by_rigour.get(r)]
        return ", ".join(parts) or "none"


@dataclass
class Matrix:
    dimensions: list[Concept]
    settings: list[Concept]
    cells: dict[tuple[str, str], Cell]  # (dimension IRI, setting IRI) -> cell
    unplaced: int  # CMOCs with no setting or no framework resource: not in any cell

    def cell(self, dimension: Concept, setting: Concept) -> Cell:
        return self.cells.get((dimension.iri, setting.iri)) or Cell(dimension, setting)

    @property
    def max_strength(self) -> int:
        return max((c.strength for c in self.cells.values()), default=0)

    def ratio(self, cell: Cell) -> float:
        """A cell's strength relative to the strongest cell, in [0, 1]."""
        return cell.strength / (self.max_strength or 1)

    def fill(self, cell: Cell) -> str:
        """The shade of a non-empty cell: pale green (weak) to dark green (the strongest cell)."""
        return _mix(0.1 + 0.9 * self.ratio(cell))

    def ink(self, cell: Cell) -> str:
        """Text colour that stays readable on the cell's shade: black or white, whichever contrasts more with it
        (WCAG 2.1 contrast ratio; at least 4.6:1 over the whole shade range, where a fixed switch between white
        and near-black left mid shades below the 4.5:1 AA needs)."""
        shade = _luminance(self.fill(cell))
        return "#000000" if (shade + 0.05) / 0.05 >= 1.05 / (shade + 0.05) else "#ffffff"


# A CMOC is in the cell (dimension, setting) when it is in the setting and draws on a resource of the dimension.
# Each pattern is a subquery, so that Oxigraph 0.5 joins them by hash: as one basic graph pattern it looked up
# each CMOC's type, setting, resource, dimension and their types one after the other, 1.2 s per lookup pattern
# at 100k CMOCs (the cells took 3.7 s, their evidence 7 s and the CMOCs in no cell 4.8 s; now 0.3 s, 1.1 s and
# 0.3 s). No `?c a cmo:CMOConfiguration`: inSetting and drawsOn have CMOCs as their domain.
CELL_MEMBERS = """
    { SELECT ?resource ?dim WHERE { ?resource skos:broader ?dim . ?dim a cmo:FrameworkDimension } }
    { SELECT ?setting WHERE { ?setting a cmo:Setting } }
    { SELECT ?c ?setting WHERE { ?c cmo:inSetting ?setting } }
    { SELECT ?c ?resource WHERE { ?c cmo:drawsOn ?resource } }"""


def _text(row: Row, key: str) -> str:
    term = row.get(key)
    return "" if term is None else str(term.value)


def _int(row: Row, key: str) -> int:
    term = row.get(key)
    return int(term.value) if isinstance(term, ox.Literal) else 0


def _concepts(store: Backend, klass: str, order: str) -> list[Concept]:
    rows = store.select(f"""SELECT ?c (SAMPLE(?l) AS ?label) (MIN(?r) AS ?rank) WHERE {{
        ?c a {klass} OPTIONAL {{ ?c skos:prefLabel ?l }} OPTIONAL {{ ?c cmo:rank ?r }} }}
        GROUP BY ?c ORDER BY {order}""")
    return [Concept(_text(r, "c"), _text(r, "label") or _text(r, "c")) for r in rows]


def evidence_matrix(store: Backend) -> Matrix:
    """The dimension x setting matrix with CMOC counts and the evidence behind each cell."""
    dims = _concepts(store, "cmo:FrameworkDimension", "?rank ?label")
    settings = _concepts(store, "cmo:Setting", "?label")
    by_iri = {c.iri: c for c in dims + settings}
    cells: dict[tuple[str, str], Cell] = {}
    for r in store.select(f"SELECT ?dim ?setting (COUNT(DISTINCT ?c) AS ?n) WHERE {{ {CELL_MEMBERS} }} "
                          "GROUP BY ?dim ?setting"):
        key = (_text(r, "dim"), _text(r, "setting"))
        cells[key] = Cell(by_iri[key[0]], by_iri[key[1]], cmocs=_int(r, "n"))
    for r in store.select(f"""SELECT ?dim ?setting ?rel ?rigour (COUNT(DISTINCT ?e) AS ?n) WHERE {{
            {{ SELECT DISTINCT ?dim ?setting ?c WHERE {{ {CELL_MEMBERS} }} }}
            {{ SELECT ?e ?c ?rel WHERE {{ {{ ?e cmo:supports ?c BIND("supports" AS ?rel) }}
                                        UNION {{ ?e cmo:refutes ?c BIND("refutes" AS ?rel) }} }} }}
            OPTIONAL {{ SELECT ?e ?rigour WHERE {{ ?e cmo:rigour ?rigour }} }} }}
            GROUP BY ?dim ?setting ?rel ?rigour"""):
        cell = cells[(_text(r, "dim"), _text(r, "setting"))]
        if _text(r, "rel") == "refutes":
            cell.refuting += _int(r, "n")
        else:
            cell.supporting += _int(r, "n")
            rigour = _text(r, "rigour")
            cell.by_rigour[rigour] = cell.by_rigour.get(rigour, 0) + _int(r, "n")
    unplaced = store.select(f"""SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE {{ ?c a cmo:CMOConfiguration
        MINUS {{ {CELL_MEMBERS} }} }}""")  # MINUS by ?c: a FILTER NOT EXISTS is evaluated once per CMOC
    return Matrix(dims, settings, cells, _int(unplaced[0], "n") if unplaced else 0)


@dataclass(frozen=True)
class CmocNode:
    iri: str
    label: str
    context: str
    resource: str
    reasoning: str
    outcome: str

    @property
    def mechanism(self) -> str:
        return " → ".join(x for x in (self.resource, self.reasoning) if x)

    def part(self, name: str) -> str:
        """IRI of the context, mechanism or outcome node the importer mints under the CMOC."""
        return f"{self.iri}/{name}"


@dataclass
class Network:
    cmocs: list[CmocNode]  # ordered so that the CMOCs of a chain are adjacent, in chain order
    leads_to: list[tuple[str, str]]

    def elements(self, href: Callable[[str], str]) -> dict[str, list[dict[str, object]]]:
        """Cytoscape.js elements: a compound node per CMOC holding its C, M and O nodes (placed as in the
        drawing: a row per CMOC, for the "preset" layout); C -> M -> O edges inside each CMOC and `leadsTo`
        edges between CMOCs."""
        nodes: list[dict[str, object]] = []
        edges: list[dict[str, object]] = []
        for row, c in enumerate(self.cmocs):
            nodes.append({"data": {"id": c.iri, "kind": "cmoc", "label": c.label, "href": href(c.iri)}})
            for column, (kind, text) in enumerate(zip(PARTS, (c.context, c.mechanism, c.outcome), strict=True)):
                x, y, w, h = part_box(row, column)
                nodes.append({"data": {"id": c.part(kind), "parent": c.iri, "kind": kind,
                                       "label": _shorten(text or "—", 60), "text": text},
                              "position": {"x": x + w / 2, "y": y + h / 2}})
            for kind, a, b in (("triggers", "context", "mechanism"), ("produces", "mechanism", "outcome")):
                edges.append({"data": {"id": f"{c.iri}#{kind}", "source": c.part(a), "target": c.part(b),
                                       "kind": kind}})
        for a, b in self.leads_to:
            edges.append({"data": {"id": f"{a}#leadsTo#{b}", "source": a, "target": b, "kind": "leadsTo"}})
        return {"nodes": nodes, "edges": edges}


def cmoc_count(store: Backend) -> int:
    rows = store.select("SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?c a cmo:CMOConfiguration }")
    return _int(rows[0], "n") if rows else 0


def cmoc_network(store: Backend, limit: int | None = None, offset: int = 0, chosen: Sequence[str] | None = None,
                 ) -> Network:
    """The CMOCs (ordered by IRI; with `limit`, that many from `offset`: one page of a large graph; or the
    `chosen` ones, IRIs read from the store, a page the caller cut) with their context, mechanism and outcome,
    and the leadsTo links between them."""
    members = "?c a cmo:CMOConfiguration"
    if chosen is not None:
        limit = len(chosen)
        members = "VALUES ?c { " + " ".join(str(ox.NamedNode(c)) for c in chosen) + " }"
    elif limit is not None:  # the page's CMOCs first, so that only they are described
        page = store.select(f"SELECT ?c WHERE {{ {members} }} ORDER BY {iri_order('c')} "
                            f"LIMIT {int(limit)} OFFSET {int(offset)}")
        members = "VALUES ?c { " + " ".join(str(r["c"]) for r in page) + " }"  # IRIs read from the store
    rows = store.select("""SELECT ?c (SAMPLE(?l) AS ?label) (SAMPLE(?cx) AS ?context) (SAMPLE(?rs) AS ?resource)
        (SAMPLE(?rn) AS ?reasoning) (SAMPLE(?oc) AS ?outcome) WHERE { """ + members + """
        OPTIONAL { ?c cmo:authorLabel|dcterms:identifier ?l } OPTIONAL { ?c cmo:hasContext/cmo:description ?cx }
        OPTIONAL { ?c cmo:hasMechanism/cmo:hasResource/cmo:description ?rs }
        OPTIONAL { ?c cmo:hasMechanism/cmo:hasReasoning/cmo:description ?rn }
        OPTIONAL { ?c cmo:hasOutcome/cmo:description ?oc } } GROUP BY ?c ORDER BY """ + iri_order("c"))
    cmocs = [CmocNode(_text(r, "c"), _text(r, "label") or _text(r, "c").rsplit("/", 1)[-1], _text(r, "context"),
                      _text(r, "resource"), _text(r, "reasoning"), _text(r, "outcome")) for r in rows]
    if limit is None:
        scope = "?a a cmo:CMOConfiguration . ?b a cmo:CMOConfiguration ."
    elif cmocs:
        values = " ".join(str(ox.NamedNode(c.iri)) for c in cmocs)  # IRIs read from the store
        scope = f"VALUES ?a {{ {values} }} VALUES ?b {{ {values} }}"
    else:
        return Network([], [])
    links = [(_text(r, "a"), _text(r, "b")) for r in store.select(
        f"SELECT DISTINCT ?a ?b WHERE {{ {scope} ?a cmo:leadsTo ?b }} ORDER BY {iri_order('a')} {iri_order('b')}")]
    return Network(_chain_order(cmocs, links), links)


def _chain_order(cmocs: list[CmocNode], links: list[tuple[str, str]]) -> list[CmocNode]:
    """CMOCs reordered so that each leadsTo chain is contiguous: depth-first from the chains' starts."""
    after: dict[str, list[str]] = defaultdict(list)
    has_before = set()
    for a, b in links:
        after[a].append(b)
        has_before.add(b)
    by_iri = {c.iri: c for c in cmocs}
    order: list[str] = []
    seen: set[str] = set()

    def visit(iri: str) -> None:
        stack = [iri]
        while stack:
            node = stack.pop()
            if node in seen or node not in by_iri:
                continue
            seen.add(node)
            order.append(node)
            stack.extend(reversed(after.get(node, [])))

    for c in cmocs:
        if c.iri not in has_before:
            visit(c.iri)
    for c in cmocs:  # members of cycles have no start
        visit(c.iri)
    return [by_iri[i] for i in order]


# -- drawing: one scene per map, two writers -----------------------------------------------------------


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str = "none"
    cls: str = ""
    title: str = ""
    href: str | None = None
    data: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float = 12
    anchor: str = "start"  # start | middle | end
    bold: bool = False
    fill: str = "#222222"


@dataclass(frozen=True)
class Curve:
    """A polyline (2 points) or a cubic Bezier curve (4 points), optionally ending in an arrowhead."""

    points: tuple[tuple[float, float], ...]
    stroke: str
    width: float = 1.2
    cls: str = ""
    arrow: bool = True


Shape = Rect | Text | Curve


@dataclass
class Scene:
    width: float
    height: float
    title: str
    shapes: list[Shape] = field(default_factory=list)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _lines(text: str, width_px: float, size: float, max_lines: int) -> list[str]:
    """Text wrapped to a box by an estimate of the glyph width (DejaVu Sans averages ~0.55 em)."""
    per_line = max(4, int(width_px / (0.56 * size)))
    lines = textwrap.wrap(text, per_line) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _shorten(lines[-1] + " …", per_line)
    return lines


def _luminance(colour: str) -> float:
    """The relative luminance of an sRGB colour #rrggbb (WCAG 2.1)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(colour[i:i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _mix(ratio: float) -> str:
    """White to dark green; ratio in [0, 1]."""
    lo, hi = (0xF7, 0xFC, 0xF5), (0x00, 0x6D, 0x2C)
    r = max(0.0, min(1.0, ratio))
    return "#" + "".join(f"{round(a + (b - a) * r):02x}" for a, b in zip(lo, hi, strict=True))


def matrix_scene(matrix: Matrix, cell_href: Callable[[Cell], str | None] = lambda _: None) -> Scene:
    """The matrix as a table of cells, shaded by strength; one `rect.cell` per non-empty cell."""
    head_w, head_h, cw, ch, pad = 200.0, 40.0, 190.0, 78.0, 10.0
    width = pad * 2 + head_w + cw * len(matrix.settings)
    height = pad * 2 + 30 + head_h + ch * len(matrix.dimensions) + 50
    scene = Scene(width, height, "Framework dimension × setting: CMOCs and the strength of their evidence")
    add = scene.shapes.append
    add(Text(pad, pad + 16, scene.title, 14, bold=True))
    top = pad + 30
    for j, setting in enumerate(matrix.settings):
        add(Text(pad + head_w + cw * j + cw / 2, top + head_h - 14, setting.label, 13, "middle", bold=True))
    for i, dim in enumerate(matrix.dimensions):
        y = top + head_h + ch * i
        for k, line in enumerate(_lines(dim.label, head_w - 12, 13, 2)):
            add(Text(pad, y + ch / 2 + k * 16 - 2, line, 13, bold=True))
        for j, setting in enumerate(matrix.settings):
            x = pad + head_w + cw * j
            _matrix_cell(scene, matrix, matrix.cell(dim, setting), (x, y, cw, ch), cell_href)
    add(Text(pad, height - pad - 22, "Shade: rigour-weighted supporting fragments (high 3, moderate 2, low 1, "
                                      "not appraised 1), relative to the strongest cell.", 11, fill="#555555"))
    add(Text(pad, height - pad - 6, f"{matrix.unplaced} CMOC(s) without a setting or a framework resource "
                                     "are not in the matrix.", 11, fill="#555555"))
    return scene


def _matrix_cell(scene: Scene, matrix: Matrix, cell: Cell, box: tuple[float, float, float, float],
                 cell_href: Callable[[Cell], str | None]) -> None:
    x, y, w, h = box
    if not cell.cmocs:
        scene.shapes.append(Rect(x, y, w, h, "#f2f2f2", "#cccccc", "empty"))
        scene.shapes.append(Text(x + w / 2, y + h / 2 + 4, "—", 12, "middle", fill="#999999"))
        return
    data = (("dimension", cell.dimension.iri), ("setting", cell.setting.iri), ("cmocs", str(cell.cmocs)),
            ("supporting", str(cell.supporting)), ("refuting", str(cell.refuting)), ("strength", str(cell.strength)))
    scene.shapes.append(Rect(x, y, w, h, matrix.fill(cell), "#ffffff", "cell", cell.title, cell_href(cell), data))
    ink = matrix.ink(cell)
    scene.shapes.append(Text(x + w / 2, y + 26, f"{cell.cmocs} CMOC{'s' if cell.cmocs != 1 else ''}", 14, "middle",
                             bold=True, fill=ink))
    scene.shapes.append(Text(x + w / 2, y + 46, f"{cell.supporting} supporting · {cell.refuting} refuting", 11,
                             "middle", fill=ink))
    scene.shapes.append(Text(x + w / 2, y + 63, f"rigour: {cell.rigour_summary(RIGOUR_SHORT)}", 11, "middle", fill=ink))


NET = {"pad": 10.0, "label_w": 150.0, "box_w": 250.0, "gap": 36.0, "row_h": 58.0, "box_h": 46.0, "lane": 12.0,
       "top": 70.0}
PARTS = ("context", "mechanism", "outcome")


def part_box(row: int, column: int) -> tuple[float, float, float, float]:
    """(x, y, width, height) of a CMOC's context (column 0), mechanism (1) or outcome (2) in the network."""
    p = NET
    return (p["pad"] + p["label_w"] + column * (p["box_w"] + p["gap"]), p["top"] + row * p["row_h"], p["box_w"],
            p["box_h"])

PART_FILL = {"context": "#e8f1fb", "mechanism": "#fdf3e1", "outcome": "#eaf6ea"}


def network_scene(network: Network, href: Callable[[str], str] = lambda iri: iri) -> Scene:
    """One row per CMOC (label, context -> mechanism -> outcome); leadsTo arcs in the right-hand gutter."""
    p = NET
    rows = {c.iri: i for i, c in enumerate(network.cmocs)}
    links = [(rows[a], rows[b]) for a, b in network.leads_to if a in rows and b in rows]
    lanes = _lanes(links)
    x, _, w, _ = part_box(0, 2)
    parts_right = x + w
    width = parts_right + p["pad"] * 2 + p["lane"] * (max(lanes, default=0) + 2)
    height = p["top"] + p["row_h"] * max(1, len(network.cmocs)) + p["pad"]
    scene = Scene(width, height, "CMOC network: context → mechanism → outcome, and leadsTo chains")
    scene.shapes.append(Text(p["pad"], p["pad"] + 16, scene.title, 14, bold=True))
    scene.shapes.append(Text(width - p["pad"], p["pad"] + 16, "arcs on the right: leadsTo", 11, "end",
                             fill="#8e3b8e"))
    for column, name in enumerate(PARTS):
        x, y, w, _ = part_box(0, column)
        scene.shapes.append(Text(x + w / 2, y - 12, name, 12, "middle", bold=True, fill="#555555"))
    for row, cmoc in enumerate(network.cmocs):
        _network_row(scene, cmoc, row, href)
    for (a, b), lane in zip(links, lanes, strict=True):
        ya, yb = (part_box(r, 2)[1] + p["box_h"] / 2 for r in (a, b))
        bend = parts_right + p["lane"] * (lane + 1)
        scene.shapes.append(Curve(((parts_right, ya), (bend, ya), (bend, yb), (parts_right + 2, yb)), "#8e3b8e",
                                  1.4, "leadsTo"))
    if not network.cmocs:
        scene.shapes.append(Text(p["pad"], p["top"] + 20, "No CMOCs in the graph.", 12))
    return scene


def _lanes(links: list[tuple[int, int]]) -> list[int]:
    """A gutter lane per arc so that arcs spanning overlapping rows do not share one."""
    taken: list[list[tuple[int, int]]] = []
    out = []
    for a, b in links:
        lo, hi = min(a, b), max(a, b)
        lane = next((k for k, spans in enumerate(taken) if all(hi < s or lo > e for s, e in spans)), len(taken))
        if lane == len(taken):
            taken.append([])
        taken[lane].append((lo, hi))
        out.append(lane)
    return out


def _network_row(scene: Scene, cmoc: CmocNode, row: int, href: Callable[[str], str]) -> None:
    p = NET
    add = scene.shapes.append
    y = part_box(row, 0)[1]
    add(Rect(p["pad"], y, p["label_w"] - 8, p["box_h"], "#ffffff", "#999999", "cmoc", cmoc.label, href(cmoc.iri),
             (("iri", cmoc.iri),)))
    for k, line in enumerate(_lines(cmoc.label, p["label_w"] - 20, 12, 2)):
        add(Text(p["pad"] + 6, y + 19 + k * 15, line, 12, bold=True, fill="#1a4f8b"))
    for column, (name, text) in enumerate(zip(PARTS, (cmoc.context, cmoc.mechanism, cmoc.outcome), strict=True)):
        x, y, w, h = part_box(row, column)
        add(Rect(x, y, w, h, PART_FILL[name], "#888888", name, text or "—", None, (("iri", cmoc.part(name)),)))
        for k, line in enumerate(_lines(text or "—", w - 12, 11, 2)):
            add(Text(x + 6, y + 18 + k * 15, line, 11))
        if column < 2:
            add(Curve(((x + w, y + h / 2), (x + w + p["gap"] - 2, y + h / 2)), "#555555", 1.2,
                      "triggers" if column == 0 else "produces"))


# -- writers --------------------------------------------------------------------------------------------


def _arrowhead(points: tuple[tuple[float, float], ...], size: float = 7.0) -> list[tuple[float, float]]:
    (x0, y0), (x1, y1) = points[-2], points[-1]
    dx, dy = x1 - x0, y1 - y0
    norm = max((dx * dx + dy * dy) ** 0.5, 1e-9)
    ux, uy = dx / norm, dy / norm
    bx, by = x1 - ux * size, y1 - uy * size
    return [(x1, y1), (bx - uy * size / 2, by + ux * size / 2), (bx + uy * size / 2, by - ux * size / 2)]


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _svg_shape(shape: Shape, link: Callable[[str], str]) -> Iterable[str]:
    if isinstance(shape, Text):
        weight = ' font-weight="bold"' if shape.bold else ""
        yield (f'<text x="{_num(shape.x)}" y="{_num(shape.y)}" font-size="{_num(shape.size)}" '
               f'text-anchor="{shape.anchor}" fill="{shape.fill}"{weight}>{escape(shape.text)}</text>')
    elif isinstance(shape, Rect):
        data = "".join(f" data-{k}={quoteattr(v)}" for k, v in shape.data)
        cls = f' class="{shape.cls}"' if shape.cls else ""
        title = f"<title>{escape(shape.title)}</title>" if shape.title else ""
        rect = (f'<rect x="{_num(shape.x)}" y="{_num(shape.y)}" width="{_num(shape.w)}" height="{_num(shape.h)}" '
                f'fill="{shape.fill}" stroke="{shape.stroke}"{cls}{data}>{title}</rect>')
        yield f'<a href={quoteattr(link(shape.href))} target="_top">{rect}</a>' if shape.href else rect
    else:
        pts = shape.points
        d = f"M{_num(pts[0][0])},{_num(pts[0][1])} " + ("C" if len(pts) == 4 else "L") + " ".join(
            f"{_num(x)},{_num(y)}" for x, y in pts[1:])
        yield (f'<path d="{d}" fill="none" stroke="{shape.stroke}" stroke-width="{_num(shape.width)}" '
               f'class="edge {shape.cls}"/>')
        if shape.arrow:
            head = " ".join(f"{_num(x)},{_num(y)}" for x, y in _arrowhead(pts))
            yield f'<polygon points="{head}" fill="{shape.stroke}" class="arrow"/>'


def to_svg(scene: Scene, link: Callable[[str], str] = lambda href: href) -> str:
    """The scene as a standalone SVG document; `link` maps each shape's href (e.g. an IRI to a local path).
    Text does not take pointer events, so a click on a cell's label reaches its link. No role="img": the maps
    hold links, which an image cannot (its <title> names it)."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(scene.width)}" height="{_num(scene.height)}" '
            f'viewBox="0 0 {_num(scene.width)} {_num(scene.height)}" font-family="{FONT}">'
            f"<title>{escape(scene.title)}</title><style>text {{ pointer-events: none; }}</style>"
            f'<rect width="100%" height="100%" fill="#ffffff"/>')
    body = "".join(part for shape in scene.shapes for part in _svg_shape(shape, link))
    return head + body + "</svg>\n"


def to_png(scene: Scene, scale: float = 2.0) -> bytes:
    """The same scene painted by matplotlib (Agg): `scale` pixels per scene unit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import PathPatch, Polygon, Rectangle
    from matplotlib.path import Path as MplPath

    dpi = 100.0
    fig = Figure(figsize=(scene.width / dpi, scene.height / dpi), dpi=dpi * scale)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, scene.width)
    ax.set_ylim(scene.height, 0)
    ax.set_axis_off()
    pt = 72.0 / dpi  # scene units are 1/100 inch
    for shape in scene.shapes:
        if isinstance(shape, Rect):
            ax.add_patch(Rectangle((shape.x, shape.y), shape.w, shape.h, facecolor=shape.fill,
                                   edgecolor=shape.stroke, linewidth=0 if shape.stroke == "none" else 1 * pt))
        elif isinstance(shape, Text):
            ax.text(shape.x, shape.y, shape.text, fontsize=shape.size * pt, color=shape.fill, parse_math=False,
                    ha={"start": "left", "middle": "center", "end": "right"}[shape.anchor], va="baseline",
                    fontweight="bold" if shape.bold else "normal", family="DejaVu Sans")
        else:
            codes = [MplPath.MOVETO] + [MplPath.CURVE4 if len(shape.points) == 4 else MplPath.LINETO] * (
                len(shape.points) - 1)
            ax.add_patch(PathPatch(MplPath(shape.points, codes), fill=False, edgecolor=shape.stroke,
                                   linewidth=shape.width * pt))
            if shape.arrow:
                ax.add_patch(Polygon(_arrowhead(shape.points), closed=True, facecolor=shape.stroke,
                                     edgecolor="none"))
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


MAPS: dict[str, Callable[[Backend], Scene]] = {
    "matrix": lambda store: matrix_scene(evidence_matrix(store)),
    "network": lambda store: network_scene(cmoc_network(store)),
}

__all__ = ["MAPS", "Cell", "Matrix", "Network", "Scene", "cmoc_count", "cmoc_network", "evidence_matrix",
           "matrix_scene", "network_scene", "to_png", "to_svg"]
