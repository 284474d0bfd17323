"""Browse pages: reviews, a review's CMOCs by programme theory, the framework, a CMOC list, text search.

Every page is server-rendered HTML (no JavaScript) built from a few aggregate SPARQL queries over the union
graph, so it stays fast on a large store: counts are computed by the store, long lists are paged with
LIMIT/OFFSET. Values from the request (search text, concept slugs) reach SPARQL only as pre-bound variables
(`substitutions`), never as query text. Bad parameters are answered 400 with a message naming the parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyoxigraph as ox
from flask import Blueprint, current_app, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from graph.namespaces import slug as make_slug
from graph.namespaces import sparql_prologue

from . import get_store

bp = Blueprint("browse", __name__)

PAGE_SIZE = 50
MAX_PAGE = 100_000
SEARCH_MIN, SEARCH_MAX = 2, 200
PER_RESOURCE = 12  # CMOCs listed under each framework resource before "all N"


def is_slug(text: str) -> bool:
    """Whether `text` is an IRI segment as `graph.namespaces.slug` makes them (letters of any script, digits
    and '-', lower case): its own slug, at most 200 characters."""
    return 0 < len(text) <= 200 and make_slug(text) == text


class BadParameter(ValueError):
    """A request parameter that cannot be used; the message names it and says what is expected."""


@dataclass(frozen=True)
class Paging:
    page: int
    size: int
    total: int

    def __post_init__(self) -> None:
        if self.page > self.pages:  # an empty page 1 is the empty list; a page past the last is a bad link
            raise BadParameter(f"page: there is no page {self.page}; the last page is {self.pages}")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.offset + self.size)


# -- query helpers ----------------------------------------------------------------------------------------


def _plain(term: Any) -> str | None:
    return None if term is None else str(term.value)


def select(sparql: str, **params: ox.NamedNode | ox.Literal) -> list[dict[str, str | None]]:
    """Solutions of a SELECT over the union graph as plain strings; `params` are pre-bound variables (each must
    be in the projection), the only way request values reach a query."""
    subs: dict[ox.Variable, object] = {ox.Variable(k): v for k, v in params.items()}
    result = get_store().query(sparql_prologue() + sparql, substitutions=subs or None)
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]
    return [{n: _plain(row[n]) for n in names} for row in result]


def count(sparql: str, **params: ox.NamedNode | ox.Literal) -> int:
    """The ?n of a one-row aggregate (0 when a GROUP BY on a parameter leaves no row)."""
    found = select(sparql, **params)
    return int(found[0]["n"] or 0) if found else 0


def id_iri(path: str) -> str:
    return str(current_app.config["CMOKG_BASE_IRI"]) + "id/" + path


def page_number(args: MultiDict[str, str]) -> int:
    raw = args.get("page", "1").strip() or "1"
    # ASCII digits only: str.isdigit() is also true of '²' or '①', which int() refuses (a 500)
    if not re.fullmatch(r"[0-9]{1,7}", raw) or not 1 <= int(raw) <= MAX_PAGE:
        raise BadParameter(f"page: {raw[:40]!r} is not a page number (a whole number from 1 to {MAX_PAGE})")
    return int(raw)


def slug_param(args: MultiDict[str, str], name: str, example: str) -> str | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    if not is_slug(raw):
        raise BadParameter(f"{name}: {raw[:60]!r} is not a concept name as used in URLs "
                           f"(lower-case letters of any script, digits and '-', e.g. {example})")
    return raw


def concept(scheme: str, slug: str, klass: str, param: str) -> ox.NamedNode:
    """The concept `id:concept/{scheme}/{slug}`, which must be a `klass`; BadParameter otherwise."""
    node = ox.NamedNode(id_iri(f"concept/{scheme}/{slug}"))
    if not select(f"SELECT ?x WHERE {{ ?x a {klass} }} LIMIT 1", x=node):
        raise BadParameter(f"{param}: no {klass.split(':')[1]} named {slug!r} in the graph")
    return node


@bp.app_template_global()
def page_url(number: int) -> str:
    """This page's URL with the same parameters and another page number."""
    values: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict(), "page": number}
    return url_for(str(request.endpoint), **values)


def bad_request(exc: BadParameter) -> tuple[str, int]:
    return render_template("search_error.html", message=str(exc)), 400


# -- the CMOC list --------------------------------------------------------------------------------------

CMOC_SUMMARY = """
    OPTIONAL { ?c cmo:authorLabel|dcterms:identifier ?l } OPTIONAL { ?c cmo:statedIn ?src
        OPTIONAL { ?src cmo:authorList ?au } OPTIONAL { ?src fabio:hasPublicationYear ?yr } }
    OPTIONAL { ?c cmo:hasContext/cmo:description ?cx } OPTIONAL { ?c cmo:hasOutcome/cmo:description ?oc }
    OPTIONAL { ?e cmo:supports|cmo:refutes ?c }"""
CMOC_COLUMNS = """?c (SAMPLE(?l) AS ?label) (SAMPLE(?src) AS ?source) (SAMPLE(?au) AS ?authors)
    (SAMPLE(?yr) AS ?year) (SAMPLE(?cx) AS ?context) (SAMPLE(?oc) AS ?outcome) (COUNT(DISTINCT ?e) AS ?evidence)"""
FILTERS = {  # parameter -> (variable, pattern, concept scheme, class, example)
    "dimension": ("dim", "?c cmo:drawsOn/skos:broader ?dim .", "framework", "cmo:FrameworkDimension",
                  "policy-structures"),
    "resource": ("res", "?c cmo:drawsOn ?res .", "framework", "cmo:FrameworkResource", "stable-funding"),
    "setting": ("setting", "?c cmo:inSetting ?setting .", "setting", "cmo:Setting", "general-practice"),
}


def cmoc_filters(args: MultiDict[str, str]) -> tuple[dict[str, ox.NamedNode], dict[str, str]]:
    """The filters a request asks for: variable -> concept, and parameter -> slug (for links and headings)."""
    bound: dict[str, ox.NamedNode] = {}
    slugs: dict[str, str] = {}
    for name, (var, _, scheme, klass, example) in FILTERS.items():
        slug = slug_param(args, name, example)
        if slug is not None:
            bound[var] = concept(scheme, slug, klass, name)
            slugs[name] = slug
    return bound, slugs


def _filter_patterns(bound: dict[str, ox.NamedNode]) -> tuple[str, str]:
    """The patterns and projected variables of the given filters (fixed text; the values are substituted)."""
    chosen = [(var, pattern) for var, pattern, *_ in FILTERS.values() if var in bound]
    return " ".join(p for _, p in chosen), " ".join(f"?{v}" for v, _ in chosen)


def concept_labels(bound: dict[str, ox.NamedNode]) -> dict[str, str]:
    labels = {}
    for var, node in bound.items():
        found = select("SELECT ?x (SAMPLE(?l) AS ?label) WHERE { ?x skos:prefLabel ?l } GROUP BY ?x", x=node)
        labels[var] = (found[0]["label"] if found else None) or node.value
    return labels


@bp.route("/cmocs")
def cmocs() -> Any:
    """CMOCs with source, context, outcome and evidence count; filters ?dimension= ?resource= ?setting=; ?page=."""
    try:
        bound, slugs = cmoc_filters(request.args)
        number = page_number(request.args)
    except BadParameter as exc:
        return bad_request(exc)
    patterns, projected = _filter_patterns(bound)
    member = f"?c a cmo:CMOConfiguration . {patterns}"
    total = count(f"SELECT (COUNT(DISTINCT ?c) AS ?n) {projected} WHERE {{ {member} }}"
                  + (f" GROUP BY {projected}" if projected else ""), **bound)
    try:
        paging = Paging(number, PAGE_SIZE, total)
    except BadParameter as exc:
        return bad_request(exc)
    page = select(f"SELECT DISTINCT ?c {projected} WHERE {{ {member} }} ORDER BY ?c "
                  f"LIMIT {paging.size} OFFSET {paging.offset}", **bound)
    values = " ".join(str(ox.NamedNode(r["c"] or "")) for r in page)  # IRIs read from the store
    found = select(f"""SELECT {CMOC_COLUMNS} WHERE {{ VALUES ?c {{ {values} }} {CMOC_SUMMARY} }}
        GROUP BY ?c ORDER BY ?c""") if page else []
    labels = concept_labels(bound)
    return render_template("search_cmocs.html", cmocs=found, paging=paging, filters=slugs,
                           labels={name: labels[FILTERS[name][0]] for name in slugs})


# -- reviews --------------------------------------------------------------------------------------------

# the CMOCs of review ?r: stated in it, or in a document it cites (as the CMOC pages count them); only CMOCs
# are stated in a document, so no type pattern (which would slow the UNION down)
REVIEW_CMOC = "{ ?c cmo:statedIn ?r } UNION { ?r cito:cites ?cited . ?c cmo:statedIn ?cited }"
BIBLIO = """OPTIONAL { ?src dcterms:title ?b_t } OPTIONAL { ?src cmo:authorList ?b_au }
    OPTIONAL { ?src fabio:hasPublicationYear ?b_yr } OPTIONAL { ?src prism:publicationName ?b_v }
    OPTIONAL { ?src prism:doi ?b_doi } OPTIONAL { ?src dcterms:identifier ?b_key }"""
BIBLIO_COLUMNS = """(SAMPLE(?b_t) AS ?title) (SAMPLE(?b_au) AS ?authors) (SAMPLE(?b_yr) AS ?year)
    (SAMPLE(?b_v) AS ?venue) (SAMPLE(?b_doi) AS ?doi) (SAMPLE(?b_key) AS ?key)"""


@bp.route("/reviews")
def reviews() -> Any:
    """Every review with the numbers of its CMOCs, sources and evidence fragments (?page=)."""
    try:
        paging = Paging(page_number(request.args), PAGE_SIZE,
                        count("SELECT (COUNT(DISTINCT ?r) AS ?n) WHERE { ?r a cmo:Review }"))
    except BadParameter as exc:
        return bad_request(exc)
    found = select(f"""SELECT ?r {BIBLIO_COLUMNS} WHERE {{ ?r a cmo:Review BIND(?r AS ?src) {BIBLIO} }}
        GROUP BY ?r ORDER BY ?year ?r LIMIT {paging.size} OFFSET {paging.offset}""")
    counts = _review_counts([r["r"] or "" for r in found])
    found = [{**r, **counts.get(r["r"] or "", {})} for r in found]
    return render_template("reviews.html", reviews=found, paging=paging)


def _review_counts(reviews: list[str]) -> dict[str, dict[str, str | None]]:
    """Review -> its numbers of CMOCs, sources (documents its CMOCs' evidence quotes, and documents it cites)
    and evidence fragments; one aggregate query each, over the given reviews only (IRIs from the store)."""
    if not reviews:
        return {}
    values = "VALUES ?r { " + " ".join(str(ox.NamedNode(r)) for r in reviews) + " }"
    queries = {
        "cmocs": f"SELECT ?r (COUNT(DISTINCT ?c) AS ?n) WHERE {{ {values} {REVIEW_CMOC} }} GROUP BY ?r",
        "evidence": f"""SELECT ?r (COUNT(DISTINCT ?e) AS ?n) WHERE {{ {values} {REVIEW_CMOC}
            ?e cmo:supports|cmo:refutes ?c }} GROUP BY ?r""",
        "sources": f"""SELECT ?r (COUNT(DISTINCT ?src) AS ?n) WHERE {{
            {{ SELECT DISTINCT ?r ?src WHERE {{ {values} {REVIEW_CMOC} ?e cmo:supports|cmo:refutes ?c .
               ?e oa:hasTarget ?target . ?target oa:hasSource ?src }} }}
            UNION {{ {values} ?r cito:cites ?src }} }} GROUP BY ?r""",
    }
    out: dict[str, dict[str, str | None]] = {r: {"cmocs": "0", "evidence": "0", "sources": "0"} for r in reviews}
    for name, query in queries.items():
        for row in select(query):
            out[row["r"] or ""][name] = row["n"]
    return out


@bp.route("/reviews/<slug>")
def review_page(slug: str) -> Any:
    """One review: its CMOCs grouped by programme theory, and its sources."""
    node = ox.NamedNode(id_iri("source/" + slug)) if is_slug(slug) else None
    info = select(f"SELECT ?r {BIBLIO_COLUMNS} WHERE {{ ?r a cmo:Review BIND(?r AS ?src) {BIBLIO} }} GROUP BY ?r",
                  r=node) if node else []
    if not info:
        return render_template("search_error.html", message=f"There is no review {slug[:80]!r} in the graph."), 404
    assert node is not None
    try:
        paging = Paging(page_number(request.args), PAGE_SIZE * 2, count(  # rows are (CMOC, theory) pairs
            f"SELECT (COUNT(DISTINCT ?pair) AS ?n) ?r WHERE {{ {REVIEW_CMOC} OPTIONAL {{ ?c cmo:refines ?t }} "
            'BIND(CONCAT(STR(?c), " ", COALESCE(STR(?t), "")) AS ?pair) } GROUP BY ?r', r=node))
    except BadParameter as exc:
        return bad_request(exc)
    found = select(f"""SELECT ?c ?t (SAMPLE(?tl) AS ?theory) (SAMPLE(?l) AS ?label) (SAMPLE(?st) AS ?statement)
            (SAMPLE(?cx) AS ?context) (SAMPLE(?oc) AS ?outcome) (COUNT(DISTINCT ?e) AS ?evidence) ?r WHERE {{
        {REVIEW_CMOC} OPTIONAL {{ ?c cmo:refines ?t OPTIONAL {{ ?t rdfs:label ?tl }} }}
        OPTIONAL {{ ?c cmo:authorLabel|dcterms:identifier ?l }} OPTIONAL {{ ?c cmo:statement ?st }}
        OPTIONAL {{ ?c cmo:hasContext/cmo:description ?cx }} OPTIONAL {{ ?c cmo:hasOutcome/cmo:description ?oc }}
        OPTIONAL {{ ?e cmo:supports|cmo:refutes ?c }}
        }} GROUP BY ?c ?t ?r ORDER BY (!BOUND(?t)) ?theory ?t ?label ?c
        LIMIT {paging.size} OFFSET {paging.offset}""", r=node)
    sources = select(f"""SELECT ?src {BIBLIO_COLUMNS} (COUNT(DISTINCT ?e) AS ?quoted) (MAX(?cites) AS ?cited) ?r
        WHERE {{ {{ {REVIEW_CMOC} ?e cmo:supports|cmo:refutes ?c ; oa:hasTarget/oa:hasSource ?src }}
                 UNION {{ ?r cito:cites ?src BIND(1 AS ?cites) }} {BIBLIO} }}
        GROUP BY ?src ?r ORDER BY ?authors ?year ?src LIMIT 500""", r=node)
    return render_template("review_page.html", review=info[0], slug=slug, groups=_by_theory(found),
                           sources=sources, paging=paging)


def _by_theory(found: list[dict[str, str | None]]) -> list[dict[str, Any]]:
    """Rows (already ordered by theory) grouped into [{theory, label, cmocs}], "no programme theory" last."""
    groups: list[dict[str, Any]] = []
    for row in found:
        if not groups or groups[-1]["theory"] != row["t"]:
            groups.append({"theory": row["t"], "label": row["theory"], "cmocs": []})
        groups[-1]["cmocs"].append(row)
    return groups


# -- the framework ----------------------------------------------------------------------------------------


@bp.route("/framework")
def framework() -> str:
    """The framework: dimensions, their resources and the CMOCs that draw on each."""
    found = select("""SELECT ?dim (SAMPLE(?dl) AS ?dimLabel) (MIN(?rk) AS ?rank) (SAMPLE(?dd) AS ?dimDefinition)
            ?res (SAMPLE(?rl) AS ?label) (SAMPLE(?rd) AS ?definition) (COUNT(DISTINCT ?c) AS ?n) WHERE {
        ?dim a cmo:FrameworkDimension . ?res a cmo:FrameworkResource ; skos:broader ?dim .
        OPTIONAL { ?dim skos:prefLabel ?dl } OPTIONAL { ?dim cmo:rank ?rk } OPTIONAL { ?dim skos:definition ?dd }
        OPTIONAL { ?res skos:prefLabel ?rl } OPTIONAL { ?res skos:definition ?rd }
        OPTIONAL { ?c cmo:drawsOn ?res ; a cmo:CMOConfiguration }
        } GROUP BY ?dim ?res ORDER BY ?rank ?dimLabel ?label""")
    dimensions: list[dict[str, Any]] = []
    for row in found:
        if not dimensions or dimensions[-1]["iri"] != row["dim"]:
            dimensions.append({"iri": row["dim"], "label": row["dimLabel"], "definition": row["dimDefinition"],
                               "resources": []})
        dimensions[-1]["resources"].append({**row, "cmocs": _drawing_on(row["res"] or "")})
    return render_template("framework.html", dimensions=dimensions, per_resource=PER_RESOURCE)


def _drawing_on(resource: str) -> list[dict[str, str | None]]:
    return select(f"""SELECT ?c (SAMPLE(?l) AS ?label) ?res WHERE {{ ?c cmo:drawsOn ?res ; a cmo:CMOConfiguration
        OPTIONAL {{ ?c cmo:authorLabel|dcterms:identifier ?l }} }} GROUP BY ?c ?res ORDER BY ?c
        LIMIT {PER_RESOURCE}""", res=ox.NamedNode(resource))


# -- search ---------------------------------------------------------------------------------------------

# Where the search looks, one UNION branch per field. Every ?c here is a CMOC by the model (only CMOCs have
# parts and evidence), so no type pattern: joining one with the UNION makes Oxigraph 0.5 evaluate it some twenty
# times slower. No subquery either: a remote store gets the parameter as a VALUES block at the top of the WHERE
# clause, which a subquery would not see.
TEXT_BRANCHES = (
    '?c cmo:hasContext/cmo:description ?text BIND("context" AS ?field)',
    '?c cmo:hasMechanism/cmo:hasResource/cmo:description ?text BIND("mechanism resource" AS ?field)',
    '?c cmo:hasMechanism/cmo:hasReasoning/cmo:description ?text BIND("mechanism reasoning" AS ?field)',
    '?c cmo:hasOutcome/cmo:description ?text BIND("outcome" AS ?field)',
    '?e cmo:supports|cmo:refutes ?c ; oa:hasTarget/oa:hasSelector/oa:exact ?text BIND("quote" AS ?field)',
)
MATCH = " UNION ".join(f"{{ {b} }}" for b in TEXT_BRANCHES) + " FILTER(CONTAINS(LCASE(STR(?text)), LCASE(?q)))"
FIELD_ORDER = ("context", "mechanism resource", "mechanism reasoning", "outcome", "quote")


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # control characters (NUL...) are no text: read as spaces


def search_text(args: MultiDict[str, str]) -> str:
    """The search text: stripped, at least SEARCH_MIN and at most SEARCH_MAX characters."""
    text = " ".join(CONTROL.sub(" ", args.get("q", "")).split())
    if len(text) > SEARCH_MAX:
        raise BadParameter(f"q: the search text has {len(text)} characters; at most {SEARCH_MAX} are searched")
    if len(text) < SEARCH_MIN:
        raise BadParameter(f"q: type at least {SEARCH_MIN} characters to search for")
    return text


@bp.route("/search")
def search() -> Any:
    """Text search (?q=) in contexts, mechanisms, outcomes and quotes, grouped by CMOC (?page=)."""
    if not CONTROL.sub(" ", request.args.get("q", "")).strip():
        return render_template("search.html", q="", hits=[], paging=None, message="Type a word or phrase to find "
                               "it in contexts, mechanisms, outcomes and quotes.")
    try:
        text = search_text(request.args)
        number = page_number(request.args)
    except BadParameter as exc:
        return render_template("search.html", q=CONTROL.sub(" ", request.args.get("q", ""))[:SEARCH_MAX], hits=[],
                               paging=None,
                               message=str(exc)), 400
    # One scan for both the total and the page: the matching CMOCs (IRIs only), ordered and cut here; ORDER BY
    # with LIMIT in the store, plus a COUNT, would scan the texts twice.
    found = sorted({r["c"] or "" for r in select(f"SELECT DISTINCT ?c ?q WHERE {{ {MATCH} }}", q=ox.Literal(text))})
    try:
        paging = Paging(number, PAGE_SIZE // 2, len(found))
    except BadParameter as exc:
        return render_template("search.html", q=text, hits=[], paging=None, message=str(exc)), 400
    return render_template("search.html", q=text, hits=_hits(found[paging.offset:paging.offset + paging.size], text),
                           paging=paging, message=None)


def _hits(cmocs: list[str], text: str) -> list[dict[str, Any]]:
    """Per CMOC of the page: its label and where the text matches (field, snippet split around the match).
    The page's texts are read from its CMOCs outwards (the IRIs, which come from the store, in each branch:
    Oxigraph 0.5 does not push an outer VALUES into a UNION) and matched here."""
    if not cmocs:
        return []
    values = " ".join(str(ox.NamedNode(c)) for c in cmocs)
    texts = select("SELECT DISTINCT ?c ?field ?text ?e WHERE { "
                   + " UNION ".join(f"{{ VALUES ?c {{ {values} }} {b} }}" for b in TEXT_BRANCHES) + " }")
    labels = {r["c"]: r["label"] for r in select(f"""SELECT ?c (SAMPLE(?l) AS ?label) WHERE {{ VALUES ?c {{ {values} }}
        OPTIONAL {{ ?c cmo:authorLabel|dcterms:identifier ?l }} }} GROUP BY ?c""")}
    hits: dict[str, dict[str, Any]] = {
        c: {"iri": c, "label": labels.get(c) or c.rsplit("/", 1)[-1], "matches": []} for c in cmocs}
    for m in sorted(texts, key=lambda m: (FIELD_ORDER.index(m["field"] or "quote"), m["e"] or "")):
        parts = snippet(m["text"] or "", text)
        if parts[1]:
            hits[m["c"] or ""]["matches"].append({"field": m["field"], "evidence": m["e"], "parts": parts})
    return list(hits.values())


def snippet(text: str, needle: str, context: int = 90) -> tuple[str, str, str]:
    """(before, match, after) around the first case-insensitive occurrence, shortened to `context` characters
    on each side; ("text", "", "") when there is no occurrence."""
    found = re.search(re.escape(needle), text, re.IGNORECASE)
    if found is None:
        return text, "", ""
    before, after = text[: found.start()], text[found.end():]
    if len(before) > context:
        before = "…" + before[-context:].lstrip()
    if len(after) > context:
        after = after[:context].rstrip() + "…"
    return before, found.group(0), after
