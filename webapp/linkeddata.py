"""Linked data: every IRI under the base's `id/` dereferences at /id/... (HTML for people, RDF for machines).

`/id/cmoc/x` answers by Accept: HTML for browsers (a page per kind of thing: CMOC, document, concept, batch,
anything else as a property table), Turtle / JSON-LD / N-Triples / RDF/XML for machines; `/id/cmoc/x.ttl`
(`.jsonld`, `.nt`, `.rdf`, `.html`) picks the format by suffix. Every answer carries a `Link` header to its
alternates; an IRI the graph does not mention is 404.

The RDF description of a resource is its outgoing triples, those of the parts minted under its own IRI
(a CMOC's context, mechanism, resource, reasoning and outcome; an evidence fragment's target and quote),
and the triples that point at it — enough for a crawler to follow every link both ways.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pyoxigraph as ox
from flask import Blueprint, Response, abort, current_app, render_template, request

from graph.namespaces import PREFIXES, sparql_prologue
from graph.ordering import iri_order

from . import get_store
from .browse import BadParameter, Paging, bad_request, page_number
from .conneg import HTML, RDF_TYPES, SUFFIXES, choose, prefers_html
from .sparql import error, serialize_triples

bp = Blueprint("linkeddata", __name__)

LD_TYPES = {m: f for m, f in RDF_TYPES.items() if m in (
    "text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml")}
ALTERNATES = {".ttl": "text/turtle", ".jsonld": "application/ld+json", ".nt": "application/n-triples",
              ".rdf": "application/rdf+xml", ".html": HTML}
CMO = PREFIXES["cmo"]
SKOS = PREFIXES["skos"]
PAGE_SIZE = 50
"""Rows of a list on a resource's page that can grow with the graph (the CMOCs drawing on a concept, the fragments
appraised by a level, the resources linking to an agent), a page at a time by `?page=`: a framework resource
listed its 25k CMOCs at 100k CMOCs (6.6 MB, 4 s), and an appraisal level sorted its 170k fragments to show 200
(35 s) with no link to the others."""


def id_base() -> str:
    return str(current_app.config["CMOKG_BASE_IRI"]) + "id/"


def local_path(iri: str) -> str | None:
    """The app's path for an IRI under the id base, else None."""
    base = id_base()
    return "/id/" + iri[len(base):] if iri.startswith(base) else None


def curie(iri: str) -> str:
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and prefix != "id":
            return f"{prefix}:{iri[len(ns):]}"
    return iri


WEB_SCHEMES = ("http://", "https://")


def link_target(iri: str) -> str:
    """Where a page links an IRI: its local /id/ page, a term of the ontology its entry on /ontology (the w3id.org
    namespace does not resolve to this server), the IRI itself when it is a web address, else "#". An IRI
    such as <javascript:alert(1)> or <data:text/html,...> is a valid IRI (SPARQL Update or a remote store can
    put one in the graph) but must never become a link a reader can click."""
    local = local_path(iri)
    if local:
        return local
    if iri.startswith(CMO):  # a class or property of the ontology: its entry on /ontology
        return "/ontology#" + iri[len(CMO):]
    if iri == CMO.rstrip("#"):
        return "/ontology"
    return iri if iri.lower().startswith(WEB_SCHEMES) else "#"


@bp.app_template_filter("href")
def _href(iri: str) -> str:
    return link_target(iri)


@bp.app_template_filter("weblink")
def _weblink(url: str) -> str:
    """A URL from the data (a source's fabio:hasURL) as a link target: http(s) only, else "#"."""
    url = url.strip()
    return url if url.lower().startswith(WEB_SCHEMES) else "#"


@bp.app_template_filter("curie")
def _curie(iri: str) -> str:
    return curie(iri)


# -- reading the graph ----------------------------------------------------------------------------------


def _value(term: Any) -> dict[str, str] | None:
    if term is None:
        return None
    if isinstance(term, ox.NamedNode):
        return {"iri": term.value, "value": term.value}
    if isinstance(term, ox.Literal):
        return {"value": term.value, "lang": term.language or "", "datatype": term.datatype.value}
    return {"value": str(term), "bnode": "1"}


_UNSAFE = re.compile(r'[\x00-\x20<>"{}|^`\\]')


def rows(sparql: str, this: str) -> list[dict[str, Any]]:
    """Solutions of a SELECT over the union graph with ?this bound to the resource; values as dicts."""
    if _UNSAFE.search(this):
        raise ValueError(f"not an IRI: {this!r}")
    result = get_store().ox.query(sparql_prologue() + sparql.replace("?this", f"<{this}>"),
                                  use_default_graph_as_union=True)
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]
    return [{n: _value(s[n]) for n in names} for s in result]


def _v(row: dict[str, Any] | None, key: str) -> str:
    if not row or row.get(key) is None:
        return ""
    return str(row[key]["value"])


def describe(iri: str) -> list[ox.Triple]:
    """Outgoing triples of `iri` and of its parts (IRIs under `iri/`), and the triples pointing at it."""
    store = get_store().ox
    seen: set[ox.Triple] = set()
    out: list[ox.Triple] = []

    def add(t: ox.Triple) -> None:
        if t not in seen:
            seen.add(t)
            out.append(t)

    todo, done = [iri], set()
    while todo:
        s = todo.pop()
        done.add(s)
        for q in store.quads_for_pattern(ox.NamedNode(s), None, None, None):
            add(ox.Triple(q.subject, q.predicate, q.object))
            o = q.object
            if isinstance(o, ox.NamedNode) and o.value.startswith(iri + "/") and o.value not in done:
                todo.append(o.value)
    for q in store.quads_for_pattern(None, None, ox.NamedNode(iri), None):
        add(ox.Triple(q.subject, q.predicate, q.object))
    return out


def types_of(iri: str) -> set[str]:
    return {_v(r, "t") for r in rows("SELECT DISTINCT ?t WHERE { ?this a ?t }", iri)}


def label_of(iri: str) -> str:
    """The resource's label, identifier or title; a part minted under another resource's IRI without one (a
    CMOC's context, an evidence fragment's target or quote, a batch's activity) is named after its whole: "c1
    context" rather than a bare "context", which would not tell one page (or browser tab) from the next."""
    r = rows("""SELECT ?l WHERE {
        { ?this cmo:authorLabel ?l } UNION { ?this skos:prefLabel ?l } UNION { ?this dcterms:title ?l }
        UNION { ?this rdfs:label ?l } UNION { ?this dcterms:identifier ?l } } LIMIT 1""", iri)
    if r:
        return _v(r[0], "l")
    whole, _, part = iri.rpartition("/")
    if whole.startswith(id_base()) and "/" in whole[len(id_base()):]:
        return f"{label_of(whole)} {part}"
    return part


def paging(total: int) -> Paging:
    """The page of a resource's long lists that the request asks for (?page=); a bad or past-the-last page is
    answered 400 with the message, as the browse pages answer it."""
    try:
        return Paging(page_number(request.args), PAGE_SIZE, total)
    except BadParameter as exc:
        abort(Response(*bad_request(exc)))


def _count(sparql: str, iri: str) -> int:
    found = rows(sparql, iri)
    return int(_v(found[0], "n") or 0) if found else 0


# -- pages ----------------------------------------------------------------------------------------------

SOURCE_FIELDS = """
    OPTIONAL { ?src a ?stype . FILTER(?stype IN (cmo:Review, cmo:Study, cmo:GreyLiterature)) }
    OPTIONAL { ?src dcterms:title ?title } OPTIONAL { ?src cmo:authorList ?authors }
    OPTIONAL { ?src fabio:hasPublicationYear ?year } OPTIONAL { ?src prism:publicationName ?venue }
    OPTIONAL { ?src prism:doi ?doi } OPTIONAL { ?src fabio:hasPubMedId ?pmid } OPTIONAL { ?src fabio:hasURL ?url }
    OPTIONAL { ?src dcterms:identifier ?key }"""


def _source(row: dict[str, Any]) -> dict[str, str]:
    keys = ("src", "stype", "title", "authors", "year", "venue", "doi", "pmid", "url", "key")
    return {k: _v(row, k) for k in keys}


def _sources(query: str, iri: str) -> list[dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for r in rows(query, iri):
        s = _source(r)
        found.setdefault(s["src"], s)
    return sorted(found.values(), key=lambda s: (s["authors"], s["year"]))


def cmoc_page(iri: str) -> dict[str, Any]:
    main = rows("""SELECT * WHERE {
        OPTIONAL { ?this dcterms:identifier ?key } OPTIONAL { ?this cmo:authorLabel ?label }
        OPTIONAL { ?this cmo:statement ?statement }
        OPTIONAL { ?this cmo:hasContext/cmo:description ?context }
        OPTIONAL { ?this cmo:hasMechanism/cmo:hasResource/cmo:description ?resource }
        OPTIONAL { ?this cmo:hasMechanism/cmo:hasReasoning/cmo:description ?reasoning }
        OPTIONAL { ?this cmo:hasOutcome/cmo:description ?outcome }
        OPTIONAL { ?this cmo:hasContext ?contextPart FILTER(isIRI(?contextPart)) }
        OPTIONAL { ?this cmo:hasMechanism ?mechanismPart FILTER(isIRI(?mechanismPart)) }
        OPTIONAL { ?this cmo:hasMechanism/cmo:hasResource ?resourcePart FILTER(isIRI(?resourcePart)) }
        OPTIONAL { ?this cmo:hasMechanism/cmo:hasReasoning ?reasoningPart FILTER(isIRI(?reasoningPart)) }
        OPTIONAL { ?this cmo:hasOutcome ?outcomePart FILTER(isIRI(?outcomePart)) }
        OPTIONAL { ?this cmo:statedIn ?source }
        OPTIONAL { ?this cmo:refines ?theory OPTIONAL { ?theory rdfs:label ?theoryLabel } }
        OPTIONAL { ?this cmo:extractedBy ?agent OPTIONAL { ?agent rdfs:label ?agentLabel } }
        OPTIONAL { ?this dcterms:created ?created }
    } LIMIT 1""", iri)[0]
    page: dict[str, Any] = {k: _v(main, k) for k in main}
    page["settings"] = rows("""SELECT ?c ?l WHERE { ?this cmo:inSetting ?c OPTIONAL { ?c skos:prefLabel ?l } }
                               ORDER BY ?l""", iri)
    page["resources"] = rows("""SELECT ?c ?l ?dim ?dimLabel WHERE { ?this cmo:drawsOn ?c
        OPTIONAL { ?c skos:prefLabel ?l } OPTIONAL { ?c skos:broader ?dim OPTIONAL { ?dim skos:prefLabel ?dimLabel } }
        } ORDER BY ?dimLabel ?l""", iri)
    page["leads_to"] = rows("""SELECT ?c (SAMPLE(?l) AS ?label) (SAMPLE(?o) AS ?outcome) WHERE { ?this cmo:leadsTo ?c
        OPTIONAL { ?c cmo:authorLabel|dcterms:identifier ?l } OPTIONAL { ?c cmo:hasOutcome/cmo:description ?o }
        } GROUP BY ?c ORDER BY ?c""", iri)
    page["led_from"] = rows("""SELECT ?c (SAMPLE(?l) AS ?label) (SAMPLE(?o) AS ?outcome) WHERE { ?c cmo:leadsTo ?this
        OPTIONAL { ?c cmo:authorLabel|dcterms:identifier ?l } OPTIONAL { ?c cmo:hasOutcome/cmo:description ?o }
        } GROUP BY ?c ORDER BY ?c""", iri)
    page["evidence"] = [{k: _v(r, k) for k in r} for r in rows("""SELECT * WHERE {
        { ?e cmo:supports ?this BIND("supports" AS ?relation) }
        UNION { ?e cmo:refutes ?this BIND("refutes" AS ?relation) }
        OPTIONAL { ?e dcterms:identifier ?key }
        OPTIONAL { ?e oa:hasTarget/oa:hasSelector/oa:exact ?quote }
        OPTIONAL { ?e oa:hasTarget/oa:hasSource ?src }
        OPTIONAL { ?e cmo:page ?page } OPTIONAL { ?e cmo:section ?section }
        OPTIONAL { ?e cmo:interpretiveLevel ?level OPTIONAL { ?level skos:prefLabel ?levelLabel } }
        OPTIONAL { ?e cmo:relevance ?relevance OPTIONAL { ?relevance skos:prefLabel ?relevanceLabel } }
        OPTIONAL { ?e cmo:rigour ?rigour OPTIONAL { ?rigour skos:prefLabel ?rigourLabel } }
    } ORDER BY ?key""", iri)]
    page["sources"] = _sources("""SELECT * WHERE {
        { ?this cmo:statedIn ?src } UNION { ?e cmo:supports|cmo:refutes ?this . ?e oa:hasTarget/oa:hasSource ?src }
        """ + SOURCE_FIELDS + "}", iri)
    page["reviews"] = _sources("""SELECT * WHERE {
        { ?this cmo:statedIn ?src . ?src a cmo:Review }
        UNION { ?this cmo:statedIn ?doc . ?src a cmo:Review ; cito:cites ?doc }
        """ + SOURCE_FIELDS + "}", iri)
    page["batches"] = rows("""SELECT DISTINCT ?g ?l WHERE { GRAPH ?g { ?this a cmo:CMOConfiguration }
                              OPTIONAL { ?g rdfs:label ?l } }""", iri)
    return page


def evidence_page(iri: str) -> dict[str, Any]:
    """An evidence fragment: its quote, the CMOCs it supports or refutes, the document quoted and its appraisal,
    then every statement about it (the generic tables, which also link its target and selector)."""
    main = rows("""SELECT * WHERE {
        OPTIONAL { ?this dcterms:identifier ?key }
        OPTIONAL { ?this cmo:page ?pageNumber } OPTIONAL { ?this cmo:section ?section }
        OPTIONAL { ?this cmo:interpretiveLevel ?level OPTIONAL { ?level skos:prefLabel ?levelLabel } }
        OPTIONAL { ?this cmo:relevance ?relevance OPTIONAL { ?relevance skos:prefLabel ?relevanceLabel } }
        OPTIONAL { ?this cmo:rigour ?rigour OPTIONAL { ?rigour skos:prefLabel ?rigourLabel } }
    } LIMIT 1""", iri)[0]
    page: dict[str, Any] = {k: _v(main, k) for k in main}
    page["quotes"] = [{k: _v(r, k) for k in r} for r in rows("""SELECT DISTINCT ?quote ?selector WHERE {
        ?this oa:hasTarget ?target . ?target oa:hasSelector ?selector . ?selector oa:exact ?quote
        } ORDER BY ?quote""", iri)]
    page["cmocs"] = [{k: _v(r, k) for k in r} for r in rows("""SELECT ?c ?relation (SAMPLE(?l) AS ?label)
        (SAMPLE(?st) AS ?statement) WHERE {
        { ?this cmo:supports ?c BIND("supports" AS ?relation) }
        UNION { ?this cmo:refutes ?c BIND("refutes" AS ?relation) }
        OPTIONAL { ?c cmo:authorLabel|dcterms:identifier ?l } OPTIONAL { ?c cmo:statement ?st }
        } GROUP BY ?c ?relation ORDER BY ?c""", iri)]
    page["sources"] = _sources("SELECT * WHERE { ?this oa:hasTarget/oa:hasSource ?src " + SOURCE_FIELDS + "}", iri)
    page.update(generic_page(iri))
    return page


def source_page(iri: str) -> dict[str, Any]:
    page: dict[str, Any] = {"source": _sources("SELECT * WHERE { BIND(?this AS ?src) " + SOURCE_FIELDS + "}", iri)[0]}
    page["creators"] = rows("""SELECT ?p ?l WHERE { ?this dcterms:creator ?p OPTIONAL { ?p rdfs:label ?l } }
                               ORDER BY ?l""", iri)
    page["cmocs"] = rows("""SELECT ?c (SAMPLE(?l) AS ?label) (SAMPLE(?st) AS ?statement) WHERE {
        ?c cmo:statedIn ?this OPTIONAL { ?c cmo:authorLabel|dcterms:identifier ?l } OPTIONAL { ?c cmo:statement ?st }
        } GROUP BY ?c ORDER BY ?c""", iri)
    # the relation by a FILTER, not a UNION, which Oxigraph 0.5 evaluated for every fragment of the graph before
    # joining this source's (350 ms for a review at 100k CMOCs; 13 ms)
    page["evidence"] = [{k: _v(r, k) for k in r} for r in rows("""SELECT ?e ?quote ?page ?relation ?c WHERE {
        ?e oa:hasTarget/oa:hasSource ?this ; oa:hasTarget/oa:hasSelector/oa:exact ?quote ; ?rel ?c .
        FILTER(?rel IN (cmo:supports, cmo:refutes)) BIND(IF(?rel = cmo:supports, "supports", "refutes") AS ?relation)
        OPTIONAL { ?e cmo:page ?page }
        } ORDER BY ?e""", iri)]
    page["cites"] = _sources("SELECT * WHERE { ?this cito:cites ?src " + SOURCE_FIELDS + "}", iri)
    page["cited_by"] = _sources("SELECT * WHERE { ?src cito:cites ?this " + SOURCE_FIELDS + "}", iri)
    page["theories"] = rows("SELECT ?t ?l WHERE { ?t cmo:theoryOf ?this OPTIONAL { ?t rdfs:label ?l } }", iri)
    return page


def concept_page(iri: str) -> dict[str, Any]:
    main = rows("""SELECT * WHERE {
        OPTIONAL { ?this skos:prefLabel ?label } OPTIONAL { ?this skos:definition ?definition }
        OPTIONAL { ?this skos:scopeNote ?note }
        OPTIONAL { ?this skos:inScheme ?scheme
                   OPTIONAL { ?scheme skos:prefLabel|rdfs:label|dcterms:title ?schemeLabel } }
        } LIMIT 1""", iri)[0]
    page: dict[str, Any] = {k: _v(main, k) for k in main}
    page["alt"] = [_v(r, "l") for r in rows("SELECT ?l WHERE { ?this skos:altLabel ?l } ORDER BY ?l", iri)]
    page["broader"] = rows("SELECT ?c ?l WHERE { ?this skos:broader ?c OPTIONAL { ?c skos:prefLabel ?l } }", iri)
    page["narrower"] = rows("""SELECT ?c ?l WHERE { { ?this skos:narrower ?c } UNION { ?c skos:broader ?this }
                               OPTIONAL { ?c skos:prefLabel ?l } } ORDER BY ?l""", iri)
    # The CMOCs drawing on it or in it, and the fragments it appraises: each list a page at a time (one ?page= for
    # both; a concept has either in practice), in IRI order, the page chosen first and only its rows described
    uses = ('{ ?c cmo:drawsOn ?this BIND("draws on" AS ?how) } '
            'UNION { ?c cmo:inSetting ?this BIND("in setting" AS ?how) }')
    appraises = "?e cmo:interpretiveLevel|cmo:relevance|cmo:rigour ?this"
    page["cmocs_total"] = _count(f"SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE {{ {uses} }}", iri)
    page["evidence_total"] = _count(f"SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE {{ {appraises} }}", iri)
    pages = page["paging"] = paging(max(page["cmocs_total"], page["evidence_total"]))
    window = f"LIMIT {pages.size} OFFSET {pages.offset}"
    page["cmocs"] = rows(f"""SELECT ?c (SAMPLE(?l) AS ?label) (SAMPLE(?st) AS ?statement) (SAMPLE(?how) AS ?via)
        WHERE {{ {{ SELECT DISTINCT ?c ?how WHERE {{ {uses} }} ORDER BY {iri_order("c")} {window} }}
        OPTIONAL {{ ?c cmo:authorLabel|dcterms:identifier ?l }} OPTIONAL {{ ?c cmo:statement ?st }}
        }} GROUP BY ?c ORDER BY {iri_order("c")}""", iri) if page["cmocs_total"] > pages.offset else []
    page["evidence"] = [{k: _v(r, k) for k in r} for r in rows(f"""SELECT ?e ?quote ?c WHERE {{
        {{ SELECT DISTINCT ?e WHERE {{ {appraises} }} ORDER BY {iri_order("e")} {window} }}
        ?e cmo:supports|cmo:refutes ?c . OPTIONAL {{ ?e oa:hasTarget/oa:hasSelector/oa:exact ?quote }}
        }} ORDER BY {iri_order("e")}""", iri)] if page["evidence_total"] > pages.offset else []
    return page


def batch_page(iri: str) -> dict[str, Any]:
    main = rows("""SELECT * WHERE { GRAPH ?this { ?this a cmo:ImportBatch
        OPTIONAL { ?this rdfs:label ?label } OPTIONAL { ?this cmo:sourceFileName ?file }
        OPTIONAL { ?this cmo:sha256 ?sha } OPTIONAL { ?this prov:generatedAtTime ?time }
        OPTIONAL { ?this cmo:tripleCount ?triples } OPTIONAL { ?this cmo:shapesVersion ?shapes }
        OPTIONAL { ?this cmo:softwareVersion ?software }
        OPTIONAL { ?this prov:wasAttributedTo ?agent OPTIONAL { ?agent rdfs:label ?agentLabel } } } } LIMIT 1""", iri)
    page: dict[str, Any] = {k: _v(main[0], k) for k in main[0]} if main else {}
    page["cmocs"] = rows("""SELECT ?c (SAMPLE(?l) AS ?label) WHERE { GRAPH ?this { ?c a cmo:CMOConfiguration
        OPTIONAL { ?c cmo:authorLabel|dcterms:identifier ?l } } } GROUP BY ?c ORDER BY ?c""", iri)
    page["sources"] = _sources("SELECT * WHERE { GRAPH ?this { ?src a cmo:Document } " + SOURCE_FIELDS + "}", iri)
    return page


def generic_page(iri: str) -> dict[str, Any]:
    """Every statement about the resource, and the resources linking to it a page at a time (an agent that
    extracted 100k CMOCs sorted and labelled all of them to show 500: 17 s; a page of 50, 1.7 s)."""
    total = _count("SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p WHERE { ?s ?p ?this } }", iri)
    pages = paging(total)
    order = f"{iri_order('p')} {iri_order('s')}"
    return {
        "out": rows("""SELECT ?p ?o (SAMPLE(?l) AS ?label) WHERE { ?this ?p ?o
            OPTIONAL { ?o skos:prefLabel|rdfs:label|dcterms:title ?l } } GROUP BY ?p ?o ORDER BY ?p ?o""", iri),
        "incoming": rows(f"""SELECT ?s ?p (SAMPLE(?l) AS ?label) WHERE {{
            {{ SELECT DISTINCT ?s ?p WHERE {{ ?s ?p ?this }} ORDER BY {order}
               LIMIT {pages.size} OFFSET {pages.offset} }}
            OPTIONAL {{ ?s cmo:authorLabel|skos:prefLabel|rdfs:label|dcterms:title|dcterms:identifier ?l }} }}
            GROUP BY ?s ?p ORDER BY {order}""", iri) if total else [],
        "incoming_total": total,
        "paging": pages,
    }


def html_page(iri: str) -> str:
    types = types_of(iri)
    common = {"iri": iri, "label": label_of(iri), "types": sorted(types), "alternates": _alternates(iri)}
    if CMO + "CMOConfiguration" in types:
        return render_template("ld/cmoc.html", **common, page=cmoc_page(iri))
    if CMO + "EvidenceFragment" in types:
        return render_template("ld/evidence.html", **common, page=evidence_page(iri))
    if types & {CMO + "Document", CMO + "Review", CMO + "Study", CMO + "GreyLiterature"}:
        return render_template("ld/source.html", **common, page=source_page(iri))
    if SKOS + "Concept" in types:
        return render_template("ld/concept.html", **common, page=concept_page(iri))
    if CMO + "ImportBatch" in types:
        return render_template("ld/batch.html", **common, page=batch_page(iri))
    return render_template("ld/resource.html", **common, page=generic_page(iri))


# -- the route ------------------------------------------------------------------------------------------


def _alternates(iri: str) -> list[tuple[str, str]]:
    path = local_path(iri) or ""
    return [(path + suffix, mime) for suffix, mime in ALTERNATES.items()]


def as_uri(iri: str) -> str:
    """The IRI as a URI (RFC 3987 §3.1: non-ASCII characters as percent-encoded UTF-8), for HTTP headers,
    which carry Latin-1 only: an IRI such as .../source/研究一 would otherwise fail the response."""
    return "".join(c if ord(c) < 0x80 else quote(c, safe="") for c in iri)


def _link_header(iri: str) -> str:
    links = [f'<{as_uri(href)}>; rel="alternate"; type="{mime}"' for href, mime in _alternates(iri)]
    links.append(f'<{as_uri(iri)}>; rel="canonical"')
    return ", ".join(links)


def _exists(iri: str) -> bool:
    store = get_store().ox
    node = ox.NamedNode(iri)
    return (next(iter(store.quads_for_pattern(node, None, None, None)), None) is not None
            or next(iter(store.quads_for_pattern(None, None, node, None)), None) is not None)


def _is_iri(text: str) -> bool:
    """Whether `text` is a valid absolute IRI (non-ASCII letters are; U+FFFD, a lone '%' or '[' are not)."""
    try:
        ox.NamedNode(text)
    except ValueError:
        return False
    return True


def _split_suffix(rest: str) -> tuple[str, str | None]:
    for suffix in ALTERNATES:
        if rest.endswith(suffix):
            return rest[: -len(suffix)], SUFFIXES[suffix]
    return rest, None


def negotiate(accept: str | None) -> str | None:
    """The media type a linked-data resource is answered in for `accept`: text/html when the client ranks it
    first (a browser), else the best of LD_TYPES; None when nothing acceptable can be made (406). Also what
    webapp.httpcache keys a resource's ETag by."""
    if prefers_html(accept, LD_TYPES):
        return HTML
    chosen = choose(accept, LD_TYPES)
    return chosen[0] if chosen else None


@bp.route("/id/<path:rest>", methods=["GET"])
def resource(rest: str) -> Response:
    """Linked data: every IRI under id/ as an HTML page, or Turtle, JSON-LD, N-Triples, RDF/XML by Accept."""
    iri, forced = id_base() + rest, None
    if _UNSAFE.search(rest) or not _is_iri(iri):  # e.g. %FF, %25 or %5B in the path: no IRI has it
        return error(404, "not an IRI of this graph")
    if not _exists(iri):
        bare, forced = _split_suffix(rest)
        iri = id_base() + bare
        if forced is None or not _exists(iri):
            return error(404, f"<{id_base() + rest}> is not in this graph")
    mime = forced or negotiate(request.headers.get("Accept"))
    if mime is None:
        return error(406, "acceptable here: text/html, " + ", ".join(LD_TYPES))
    if mime == HTML:
        r = Response(html_page(iri), mimetype=HTML)
    else:
        r = Response(serialize_triples(describe(iri), LD_TYPES[mime], _prefixes()), mimetype=mime)
    r.headers["Link"] = _link_header(iri)
    if forced is None:
        r.vary.add("Accept")
    return r


def _prefixes() -> dict[str, str]:
    return dict(PREFIXES)

