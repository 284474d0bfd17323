"""Browse pages: reviews, a review's CMOCs by programme theory, the framework, a CMOC list, text search.

Every page is server-rendered HTML (no JavaScript) built from a few aggregate SPARQL queries over the union
graph, so it stays usable on a large store (the 100k CMOCs of bench/): counts are computed by the store, long
lists are paged. What reads the whole store (the framework, the CMOC list in IRI order, a search's matches) is
kept until the store's next write (webapp.memo), so that the next reader, and the next page, need not read it
again; from a remote store each page is asked for with LIMIT/OFFSET. Values from the request (search text,
concept slugs) reach SPARQL only as pre-bound variables (`substitutions`), never as query text. Bad parameters
are answered 400 with a message naming the parameter.
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
from graph.ordering import iri_order

from . import get_store
from .memo import kept, local_store

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
# The filters' predicates have CMOCs as their domain (ontology/cmokg.ttl), so a filtered list needs no type
# pattern: joining `?c a cmo:CMOConfiguration` to 25k CMOCs of a resource took 1 s of the 1.1 s its count took
# at 100k CMOCs (a lookup per CMOC in the union of the graphs). The dimension is reached through its resources
# in two patterns rather than a path: Oxigraph 0.5 plans without knowing that a substituted variable is bound,
# and evaluated `?c cmo:drawsOn/skos:broader ?dim` from every CMOC (0.5 s) instead of from the 4 resources.
FILTERS = {  # parameter -> (variable, pattern, concept scheme, class, example)
    "dimension": ("dim", "?dres skos:broader ?dim . ?c cmo:drawsOn ?dres .", "framework", "cmo:FrameworkDimension",
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


ALL_CMOCS = "?c a cmo:CMOConfiguration ."


def ordered_cmocs(bound: dict[str, ox.NamedNode], slugs: dict[str, str]) -> list[str]:
    """The CMOCs of a list (all of them, or those the filters keep) in IRI order, kept until the store's next
    write (webapp.memo): ordered by the store, a page of the 100k CMOCs took 1.3 s (every IRI looked up and
    sorted for each page, of /cmocs and of the network); read once and sorted here, 0.8 s, then a slice."""
    return kept(("cmocs", *sorted(slugs.items())), lambda: _cmoc_list(bound), size=len)


def _cmoc_list(bound: dict[str, ox.NamedNode]) -> list[str]:
    patterns, projected = _filter_patterns(bound)
    return sorted({r["c"] or "" for r in select(f"SELECT DISTINCT ?c {projected} WHERE {{ {patterns or ALL_CMOCS} }}",
                                                **bound)})


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
    # the app's own store: the whole list in IRI order once per version of the store, each page a slice of it; a
    # remote store (nothing kept for it): the total and the page asked for on each request
    ordered = ordered_cmocs(bound, slugs) if local_store() else None
    total = len(ordered) if ordered is not None else count(
        f"SELECT (COUNT(DISTINCT ?c) AS ?n) {projected} WHERE {{ {patterns or ALL_CMOCS} }}"
        + (f" GROUP BY {projected}" if projected else ""), **bound)
    try:
        paging = Paging(number, PAGE_SIZE, total)
    except BadParameter as exc:
        return bad_request(exc)
    page = ordered[paging.offset:paging.offset + paging.size] if ordered is not None else [r["c"] or "" for r in select(
        f"SELECT DISTINCT ?c {projected} WHERE {{ {patterns or ALL_CMOCS} }} ORDER BY {iri_order('c')} "
        f"LIMIT {paging.size} OFFSET {paging.offset}", **bound)]
    values = " ".join(str(ox.NamedNode(c)) for c in page)  # IRIs read from the store
    found = select(f"""SELECT {CMOC_COLUMNS} WHERE {{ VALUES ?c {{ {values} }} {CMOC_SUMMARY} }}
        GROUP BY ?c ORDER BY ?c""") if page else []
    labels = concept_labels(bound)
    return render_template("search_cmocs.html", cmocs=found, paging=paging, filters=slugs,
                           labels={name: labels[FILTERS[name][0]] for name in slugs})


# -- reviews --------------------------------------------------------------------------------------------

# the CMOCs of review ?r: stated in it, or in a document it cites (as the CMOC pages count them); only CMOCs
# are stated in a document, so no type pattern (which would slow the UNION down)
REVIEW_CMOC = "{ ?c cmo:statedIn ?r } UNION { ?r cito:cites ?cited . ?c cmo:statedIn ?cited }"
# the fragments quoting CMOC ?c and the documents they quote, each REVIEW_CMOC branch followed by it: after the
# UNION, Oxigraph 0.5 evaluated it for every fragment in the graph and joined the review's CMOCs to that (12.7 s
# for a review page at 100k CMOCs, 19 ms this way)
QUOTING = "?e cmo:supports|cmo:refutes ?c ; oa:hasTarget/oa:hasSource ?src ."
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
            {{ {values} ?c cmo:statedIn ?r . {QUOTING} }}
            UNION {{ {values} ?r cito:cites ?cited . ?c cmo:statedIn ?cited . {QUOTING} }}
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
        WHERE {{ {{ ?c cmo:statedIn ?r . {QUOTING} }}
                 UNION {{ ?r cito:cites ?cited . ?c cmo:statedIn ?cited . {QUOTING} }}
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
    dimensions = kept(("framework", PER_RESOURCE), _framework)  # reads every drawsOn: 1.2 s at 100k CMOCs
    return render_template("framework.html", dimensions=dimensions, per_resource=PER_RESOURCE)


def _framework() -> list[dict[str, Any]]:
    found = select("""SELECT ?dim (SAMPLE(?dl) AS ?dimLabel) (MIN(?rk) AS ?rank) (SAMPLE(?dd) AS ?dimDefinition)
            ?res (SAMPLE(?rl) AS ?label) (SAMPLE(?rd) AS ?definition) (COUNT(DISTINCT ?c) AS ?n) WHERE {
        ?dim a cmo:FrameworkDimension . ?res a cmo:FrameworkResource ; skos:broader ?dim .
        OPTIONAL { ?dim skos:prefLabel ?dl } OPTIONAL { ?dim cmo:rank ?rk } OPTIONAL { ?dim skos:definition ?dd }
        OPTIONAL { ?res skos:prefLabel ?rl } OPTIONAL { ?res skos:definition ?rd }
        OPTIONAL { ?c cmo:drawsOn ?res }
        } GROUP BY ?dim ?res ORDER BY ?rank ?dimLabel ?label""")  # drawsOn's domain is CMOConfiguration
    drawing = {res: _drawing_on(res) for res in dict.fromkeys(r["res"] or "" for r in found if r["n"] != "0")}
    labels = _labels([c for cmocs in drawing.values() for c in cmocs])
    dimensions: list[dict[str, Any]] = []
    for row in found:
        if not dimensions or dimensions[-1]["iri"] != row["dim"]:
            dimensions.append({"iri": row["dim"], "label": row["dimLabel"], "definition": row["dimDefinition"],
                               "resources": []})
        cmocs = [{"c": c, "label": labels.get(c)} for c in drawing.get(row["res"] or "", [])]
        dimensions[-1]["resources"].append({**row, "cmocs": cmocs})
    return dimensions


def _drawing_on(resource: str) -> list[str]:
    """The first PER_RESOURCE CMOCs (by IRI) that draw on the resource; their labels are read once for all
    resources (`_labels`): read with each resource's CMOCs, a label was looked up for each of 25k CMOCs."""
    return [r["c"] or "" for r in select(f"""SELECT DISTINCT ?c ?res WHERE {{ ?c cmo:drawsOn ?res }}
        ORDER BY {iri_order("c")} LIMIT {PER_RESOURCE}""", res=ox.NamedNode(resource))]


def _labels(cmocs: list[str]) -> dict[str, str | None]:
    """CMOC -> its label (author label or identifier), for CMOCs read from the store."""
    if not cmocs:
        return {}
    values = " ".join(str(ox.NamedNode(c)) for c in dict.fromkeys(cmocs))  # IRIs read from the store
    return {r["c"] or "": r["label"] for r in select(f"""SELECT ?c (SAMPLE(?l) AS ?label) WHERE {{
        VALUES ?c {{ {values} }} OPTIONAL {{ ?c cmo:authorLabel|dcterms:identifier ?l }} }} GROUP BY ?c""")}


# -- search ---------------------------------------------------------------------------------------------

# Where the search looks, one UNION branch per field, read from a page's CMOCs outwards (`_hits`). Every ?c here
# is a CMOC by the model (only CMOCs have parts and evidence), so no type pattern: joining one with the UNION
# makes Oxigraph 0.5 evaluate it some twenty times slower.
TEXT_BRANCHES = (
    '?c cmo:hasContext/cmo:description ?text BIND("context" AS ?field)',
    '?c cmo:hasMechanism/cmo:hasResource/cmo:description ?text BIND("mechanism resource" AS ?field)',
    '?c cmo:hasMechanism/cmo:hasReasoning/cmo:description ?text BIND("mechanism reasoning" AS ?field)',
    '?c cmo:hasOutcome/cmo:description ?text BIND("outcome" AS ?field)',
    '?e cmo:supports|cmo:refutes ?c ; oa:hasTarget/oa:hasSelector/oa:exact ?text BIND("quote" AS ?field)',
)
# Finding the CMOCs whose texts match ?q. Read from the CMOCs outwards (as TEXT_BRANCHES go), every text was
# reached by a lookup per part or fragment before the filter: 20 s at 100k CMOCs, for a word found nowhere as for
# one found everywhere. Now from the texts: one filtered scan of the descriptions and quotes finds the texts that
# match (HOLDERS; 600k texts, ~2 s at 100k: there is no text index), stopping at LATERAL_MAX + 1. Up to
# LATERAL_MAX of them are followed back to their CMOCs by lookups (`_cmocs_holding`, milliseconds); more are
# joined by hash with every (CMOC, part) and (CMOC, quote selector) pair (MATCH_DESCRIBED, MATCH_QUOTED: ~6 s
# at 100k, what a word found in most CMOCs takes). The filter stays in the top-level group: a remote store gets
# ?q as a VALUES block there, which neither a nested group nor a subquery would see.
LATERAL_MAX = 2000
MATCHING = "FILTER(CONTAINS(LCASE(STR(?text)), LCASE(?q)))"
HOLDERS = f"""SELECT ?x ?kind ?q WHERE {{ {{ ?x cmo:description ?text BIND("x" AS ?kind) }}
    UNION {{ ?x oa:exact ?text BIND("s" AS ?kind) }} {MATCHING} }}"""
MATCH_DESCRIBED = f"""SELECT DISTINCT ?c ?q WHERE {{ ?x cmo:description ?text {MATCHING}
    {{ SELECT ?c ?x WHERE {{ {{ ?c cmo:hasContext ?x }} UNION {{ ?c cmo:hasOutcome ?x }}
        UNION {{ {{ SELECT ?c ?m WHERE {{ ?c cmo:hasMechanism ?m }} }}
                {{ SELECT ?m ?x WHERE {{ ?m cmo:hasResource|cmo:hasReasoning ?x }} }} }} }} }} }}"""
MATCH_QUOTED = f"""SELECT DISTINCT ?c ?q WHERE {{ ?x oa:exact ?text {MATCHING}
    {{ SELECT ?c ?x WHERE {{ {{ SELECT ?e ?c WHERE {{ ?e cmo:supports|cmo:refutes ?c }} }}
        {{ SELECT ?e ?t WHERE {{ ?e oa:hasTarget ?t }} }}
        {{ SELECT ?t ?x WHERE {{ ?t oa:hasSelector ?x }} }} }} }} }}"""
HELD_BY = (  # from a described part (?x) or a quote's selector (?s) back to its CMOC
    ("x", "?c cmo:hasContext|cmo:hasOutcome ?x"),
    ("x", "?m cmo:hasResource|cmo:hasReasoning ?x . ?c cmo:hasMechanism ?m"),
    ("s", "?t oa:hasSelector ?s . ?e oa:hasTarget ?t . ?e cmo:supports|cmo:refutes ?c"),
)


def matching_cmocs(text: str) -> set[str]:
    """The CMOCs with a context, mechanism (resource or reasoning), outcome or quote containing `text`
    (case-insensitive)."""
    q = ox.Literal(text)
    result = get_store().query(sparql_prologue() + HOLDERS + f" LIMIT {LATERAL_MAX + 1}",
                               substitutions={ox.Variable("q"): q})
    assert isinstance(result, ox.QuerySolutions)
    holders = [(row["x"], str(row["kind"].value) if row["kind"] is not None else "") for row in result]
    if len(holders) <= LATERAL_MAX and all(isinstance(x, ox.NamedNode) for x, _ in holders):
        return _cmocs_holding({kind: {str(x) for x, k in holders if k == kind} for kind in ("x", "s")})
    return {r["c"] or "" for query in (MATCH_DESCRIBED, MATCH_QUOTED) for r in select(query, q=q)}


def _cmocs_holding(holders: dict[str, set[str]]) -> set[str]:
    """The CMOCs of the given described parts ("x") and quote selectors ("s") (IRIs read from the store, as
    N-Triples terms), the IRIs in each branch: Oxigraph 0.5 does not push an outer VALUES into a UNION."""
    values = {var: " ".join(sorted(iris)) for var, iris in holders.items()}
    branches = [f"{{ VALUES ?{var} {{ {values[var]} }} {pattern} }}" for var, pattern in HELD_BY if values[var]]
    if not branches:
        return set()
    return {r["c"] or "" for r in select("SELECT DISTINCT ?c WHERE { " + " UNION ".join(branches) + " }")}


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
    # One search for both the total and the page: the matching CMOCs (IRIs only), ordered and cut here; ORDER BY
    # with LIMIT in the store, plus a COUNT, would scan the texts twice.
    found = kept(("search", text), lambda: sorted(matching_cmocs(text)), size=len)  # kept for the next pages
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
    labels = _labels(cmocs)
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
