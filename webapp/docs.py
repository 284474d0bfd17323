"""Documents about the graph: /ontology and /shapes (HTML for people, RDF for machines), /void, the dumps.

- `/ontology` (`.ttl`, `.jsonld`, `.nt`, `.rdf`, `.html`): the OWL ontology, documented per class and property;
- `/shapes` (same suffixes): the SHACL shapes every import is validated against, one table per shape;
- `/void`: a VoID description of the dataset with statistics computed from the store (triples, entities,
  classes and properties with their partitions, one subset per named graph), the endpoint and the dumps;
- `/dump.nq`, `/dump.trig` (or `/dump` by Accept): every quad, streamed as the store writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from flask import Blueprint, Response, render_template, request

from graph.namespaces import PREFIXES, sparql_prologue
from graph.vocab import ONTOLOGY_FILE, ROOT

from . import get_store
from .conneg import DATASET_TYPES, HTML, RDF_TYPES, SUFFIXES, choose
from .linkeddata import LD_TYPES, curie, negotiate
from .memo import kept
from .sparql import check_reachable, error, public_url, serialize_triples
from .streaming import stream_writer

bp = Blueprint("docs", __name__)

SHAPES_FILE = ROOT / "shapes" / "cmokg-shapes.ttl"
RDF, RDFS, OWL = (PREFIXES["rdf"], PREFIXES["rdfs"], PREFIXES["owl"])
SKOS, SH, DCT = PREFIXES["skos"], PREFIXES["sh"], PREFIXES["dcterms"]
VOID = "http://rdfs.org/ns/void#"


def _graph(path: Path) -> ox.Store:
    store = ox.Store()
    store.load(path=str(path), format=ox.RdfFormat.TURTLE)
    return store


def _select(store: ox.Store, sparql: str) -> list[dict[str, str]]:
    result = store.query(sparql_prologue() + sparql)
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]
    return [{n: (s[n].value if s[n] is not None else "") for n in names} for s in result]


def _statistics(sparql: str, union: bool = False) -> list[dict[str, str]]:
    """A SELECT over the served store, as rows of strings. With query workers it runs in one of them: bounded
    by the query timeout, answered from the result cache until the store changes, and the memory an aggregate
    over the whole store takes is the worker's, not the web process's. Out of time or failed: a 503."""
    from flask import abort

    from . import answer
    from .executor import Job

    job = Job(sparql_prologue() + sparql, accept="application/sparql-results+json", union=union)
    graphs = getattr(get_store(), "union_graphs", lambda: None)()
    if graphs is not None:  # a remote store whose union holds more than its graphs: Virtuoso's system graphs
        job = Job(job.sparql, accept=job.accept, default_graph=graphs if union else [], named_graphs=graphs)
    outcome = answer(job)
    body = outcome.read()
    if outcome.status != 200:
        abort(503, description="the statistics could not be computed in time: " + body.decode("utf-8", "replace"))
    data = json.loads(body)
    names = data["head"]["vars"]
    return [{n: b[n]["value"] if n in b else "" for n in names} for b in data["results"]["bindings"]]


def _negotiated(name: str, suffix: str | None, path: Path, html: Any) -> Response:
    accept = request.headers.get("Accept")
    forced = SUFFIXES.get(suffix) if suffix else None
    if suffix and forced is None:
        return error(404, f"no /{name}{suffix}")
    mime = forced or negotiate(accept)  # as /id/ resources are negotiated (and webapp.httpcache keys them)
    if mime is None:
        return error(406, "acceptable here: text/html, " + ", ".join(LD_TYPES))
    if mime == HTML:
        r = Response(html(), mimetype=HTML)
    else:
        fmt = LD_TYPES[mime]
        if fmt == ox.RdfFormat.TURTLE:
            body = path.read_bytes()
        else:
            body = serialize_triples((q.triple for q in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)), fmt)
        r = Response(body, mimetype=mime)
    r.headers["Link"] = ", ".join(f'</{name}{s}>; rel="alternate"; type="{m}"' for s, m in (
        (".ttl", "text/turtle"), (".jsonld", "application/ld+json"), (".nt", "application/n-triples"),
        (".rdf", "application/rdf+xml"), (".html", HTML)))
    if forced is None:
        r.vary.add("Accept")
    return r


# -- ontology -------------------------------------------------------------------------------------------


def _ontology_html() -> str:
    g = _graph(ONTOLOGY_FILE)
    header = _select(g, """SELECT ?o ?title ?description ?version WHERE { ?o a owl:Ontology
        OPTIONAL { ?o dcterms:title ?title } OPTIONAL { ?o dcterms:description ?description }
        OPTIONAL { ?o owl:versionInfo ?version } } LIMIT 1""")
    terms = _select(g, """SELECT ?t ?kind (SAMPLE(?l) AS ?label) (SAMPLE(?d) AS ?definition)
        (GROUP_CONCAT(DISTINCT STR(?super); separator=" ") AS ?supers)
        (GROUP_CONCAT(DISTINCT STR(?dom); separator=" ") AS ?domains)
        (GROUP_CONCAT(DISTINCT STR(?ran); separator=" ") AS ?ranges) WHERE {
        VALUES ?kind { owl:Class owl:ObjectProperty owl:DatatypeProperty owl:AnnotationProperty }
        ?t a ?kind . FILTER(STRSTARTS(STR(?t), STR(cmo:)))
        OPTIONAL { ?t rdfs:label ?l } OPTIONAL { ?t skos:definition ?d }
        OPTIONAL { ?t rdfs:subClassOf|rdfs:subPropertyOf ?super FILTER(isIRI(?super)) }
        OPTIONAL { ?t rdfs:domain ?dom FILTER(isIRI(?dom)) } OPTIONAL { ?t rdfs:range ?ran FILTER(isIRI(?ran)) }
        } GROUP BY ?t ?kind ORDER BY ?kind ?t""")
    schemes = [r for r in _select(get_store().ox, """SELECT ?s (SAMPLE(?l) AS ?label) (COUNT(?c) AS ?n) WHERE {
        GRAPH ?g { ?s a skos:ConceptScheme OPTIONAL { ?s skos:prefLabel|rdfs:label|dcterms:title ?l }
        OPTIONAL { ?c skos:inScheme ?s } } } GROUP BY ?s ORDER BY ?s""")]
    creators = _select(g, """SELECT DISTINCT ?c ?label WHERE { ?o a owl:Ontology ; dcterms:creator ?c
        FILTER(isIRI(?c)) OPTIONAL { ?c rdfs:label ?label } } ORDER BY ?label ?c""")
    return render_template("docs/ontology.html", header=header[0] if header else {}, terms=terms,
                           schemes=schemes, creators=creators)


@bp.route("/ontology", defaults={"suffix": None})
@bp.route("/ontology<any('.ttl','.jsonld','.nt','.rdf','.html'):suffix>")
def ontology(suffix: str | None) -> Response:
    """The OWL ontology: an HTML page for people, Turtle, JSON-LD, N-Triples or RDF/XML by Accept or suffix."""
    return _negotiated("ontology", suffix, ONTOLOGY_FILE, _ontology_html)


# -- shapes ---------------------------------------------------------------------------------------------


def _shapes_html() -> str:
    g = _graph(SHAPES_FILE)
    shapes = _select(g, """SELECT ?shape (GROUP_CONCAT(DISTINCT STR(?target); separator=" ") AS ?targets)
        (SAMPLE(?m) AS ?message) WHERE { ?shape a sh:NodeShape
        OPTIONAL { ?shape sh:targetClass|sh:targetNode|sh:targetSubjectsOf|sh:targetObjectsOf ?target }
        OPTIONAL { ?shape sh:message|rdfs:comment ?m } } GROUP BY ?shape ORDER BY ?shape""")
    props = _select(g, """SELECT ?shape ?path ?min ?max ?datatype ?class ?pattern ?severity ?message ?nodeKind
        (GROUP_CONCAT(DISTINCT STR(?in); separator=", ") AS ?ins) WHERE {
        ?shape sh:property ?p . ?p sh:path ?path0 .
        BIND(IF(isIRI(?path0), STR(?path0), "(path expression)") AS ?path)
        OPTIONAL { ?p sh:minCount ?min } OPTIONAL { ?p sh:maxCount ?max } OPTIONAL { ?p sh:datatype ?datatype }
        OPTIONAL { ?p sh:class ?class } OPTIONAL { ?p sh:pattern ?pattern } OPTIONAL { ?p sh:severity ?severity }
        OPTIONAL { ?p sh:message ?message } OPTIONAL { ?p sh:nodeKind ?nodeKind }
        OPTIONAL { ?p sh:in/rdf:rest*/rdf:first ?in }
        } GROUP BY ?shape ?path ?min ?max ?datatype ?class ?pattern ?severity ?message ?nodeKind
        ORDER BY ?shape ?path""")
    by_shape: dict[str, list[dict[str, str]]] = {}
    for p in props:
        by_shape.setdefault(p["shape"], []).append(p)
    return render_template("docs/shapes.html", shapes=shapes, props=by_shape)


@bp.route("/shapes", defaults={"suffix": None})
@bp.route("/shapes<any('.ttl','.jsonld','.nt','.rdf','.html'):suffix>")
def shapes(suffix: str | None) -> Response:
    """The SHACL shapes every extraction is validated against: HTML for people, RDF by Accept or suffix."""
    return _negotiated("shapes", suffix, SHAPES_FILE, _shapes_html)


@bp.app_template_filter("shortiri")
def _shortiri(iri: str) -> str:
    return curie(iri)


# -- VoID -----------------------------------------------------------------------------------------------


def void_triples() -> list[ox.Triple]:
    """The description, computed once per version of the app's store (its statistics scan every quad: ~30 s at
    100k CMOCs) and per address it is served at (webapp.memo)."""
    return kept(("void", public_url("void")), _void_triples)


def _void_triples() -> list[ox.Triple]:
    n, lit = ox.NamedNode, ox.Literal
    xsd_int = n(PREFIXES["xsd"] + "integer")

    def count(v: str | int) -> ox.Literal:
        return lit(str(v), datatype=xsd_int)

    ds = n(public_url("void") + "#dataset")
    out = [
        ox.Triple(ds, n(RDF + "type"), n(VOID + "Dataset")),
        ox.Triple(ds, n(DCT + "title"), lit("cmokg: realist-review evidence (CMO configurations, quotes, sources)")),
        ox.Triple(ds, n(VOID + "sparqlEndpoint"), n(public_url("sparql"))),
        ox.Triple(ds, n(VOID + "dataDump"), n(public_url("dump.nq"))),
        ox.Triple(ds, n(VOID + "dataDump"), n(public_url("dump.trig"))),
        ox.Triple(ds, n(VOID + "uriSpace"), lit(PREFIXES["id"])),
        ox.Triple(ds, n(VOID + "vocabulary"), n(PREFIXES["cmo"])),
        ox.Triple(ds, n(VOID + "feature"), n("http://www.w3.org/ns/formats/N-Quads")),
        ox.Triple(ds, n(VOID + "feature"), n("http://www.w3.org/ns/formats/TriG")),
    ]
    # The dataset is the default graph of /sparql: the union of all graphs, each triple counted once (Oxigraph's
    # union default graph yields a triple once per graph holding it, so the counts go through DISTINCT).
    totals = _statistics("""SELECT (COUNT(*) AS ?triples) (COUNT(DISTINCT ?s) AS ?subjects)
        (COUNT(DISTINCT ?p) AS ?properties) (COUNT(DISTINCT ?o) AS ?objects) WHERE {
        SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o } }""", union=True)[0]
    stats = _statistics("""SELECT (COUNT(DISTINCT ?e) AS ?entities) (COUNT(DISTINCT ?c) AS ?classes) WHERE {
        ?e a ?c }""", union=True)[0]
    for key, prop in (("triples", "triples"), ("subjects", "distinctSubjects"), ("properties", "properties"),
                      ("objects", "distinctObjects")):
        out.append(ox.Triple(ds, n(VOID + prop), count(totals[key])))
    out.append(ox.Triple(ds, n(VOID + "entities"), count(stats["entities"])))
    out.append(ox.Triple(ds, n(VOID + "classes"), count(stats["classes"])))
    for i, r in enumerate(_statistics("""SELECT ?c (COUNT(DISTINCT ?e) AS ?n) WHERE { ?e a ?c }
                                            GROUP BY ?c ORDER BY ?c""", union=True)):
        part = ox.BlankNode(f"class{i}")
        out += [ox.Triple(ds, n(VOID + "classPartition"), part), ox.Triple(part, n(VOID + "class"), n(r["c"])),
                ox.Triple(part, n(VOID + "entities"), count(r["n"]))]
    for i, r in enumerate(_statistics("""SELECT ?p (COUNT(*) AS ?n) WHERE {
                                                SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o } }
                                            GROUP BY ?p ORDER BY ?p""", union=True)):
        part = ox.BlankNode(f"property{i}")
        out += [ox.Triple(ds, n(VOID + "propertyPartition"), part),
                ox.Triple(part, n(VOID + "property"), n(r["p"])), ox.Triple(part, n(VOID + "triples"), count(r["n"]))]
    for i, r in enumerate(_statistics("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } "
                                         "GROUP BY ?g ORDER BY ?g")):
        sub = ox.BlankNode(f"graph{i}")
        out += [ox.Triple(ds, n(VOID + "subset"), sub), ox.Triple(sub, n(RDF + "type"), n(VOID + "Dataset")),
                ox.Triple(sub, n("http://www.w3.org/ns/sparql-service-description#name"), n(r["g"])),
                ox.Triple(sub, n(VOID + "triples"), count(r["n"]))]
    return out


@bp.route("/void", defaults={"suffix": None})
@bp.route("/void<any('.ttl','.jsonld','.nt','.rdf'):suffix>")
def void(suffix: str | None) -> Response:
    """The VoID description of the dataset (graphs, triple counts, endpoint, dumps) as RDF."""
    forced = SUFFIXES.get(suffix) if suffix else None
    chosen = (forced, RDF_TYPES[forced]) if forced else choose(request.headers.get("Accept"), LD_TYPES)
    if chosen is None:
        return error(406, "VoID is RDF: accept one of " + ", ".join(LD_TYPES))
    mime, fmt = chosen
    r = Response(serialize_triples(void_triples(), fmt, {"void": VOID, "dcterms": DCT}), mimetype=mime)
    r.vary.add("Accept")
    return r


# -- dumps ----------------------------------------------------------------------------------------------


@bp.route("/dump", defaults={"suffix": None})
@bp.route("/dump<any('.nq','.trig'):suffix>")
def dump(suffix: str | None) -> Response:
    """The whole store as a streamed dump: N-Quads or TriG, by Accept or suffix."""
    forced = SUFFIXES.get(suffix) if suffix else None
    chosen = (forced, DATASET_TYPES[forced]) if forced else choose(request.headers.get("Accept"), DATASET_TYPES)
    if chosen is None:
        return error(406, "the dump is a dataset: accept application/n-quads or application/trig")
    mime, fmt = chosen
    store = get_store()
    check_reachable(store)
    ext = {"application/n-quads": "nq", "application/trig": "trig"}[mime]

    def write(out: Any) -> None:
        store.ox.dump(out, fmt)

    r = Response(stream_writer(write), mimetype=mime,
                 headers={"Content-Disposition": f'attachment; filename="cmokg.{ext}"'})
    r.vary.add("Accept")
    return r
