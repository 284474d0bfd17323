"""SHACL Core shapes compiled to SPARQL queries, run by pyoxigraph over a batch and its neighbourhood.

Why: pySHACL (pure Python) cost ~95 % of an import. The shapes file is fixed at start-up, so each property
shape's constraints become SPARQL patterns once, joined into UNION queries of a few checks each; validating
a batch is then loading its triples into a small in-memory Oxigraph store and running those queries
natively. Not one UNION of every check: Oxigraph's planning time grows faster than the number of branches
(114 checks: 35 ms to plan one UNION on an empty store, 5 ms for the same checks in groups of 8).

Semantics follow SHACL Core for the components compiled here (targets: class with rdfs:subClassOf*, node,
subjects-of, objects-of; paths: predicate, inverse, alternative, sequence, zero-or-more, one-or-more,
zero-or-one; constraints: minCount, maxCount, datatype, class, nodeKind, in, hasValue, pattern (+flags),
minLength, maxLength, node and qualifiedValueShape (with min/max counts) over value shapes made of
node-level constraints; severity, message, deactivated). Anything else in the shapes graph makes
`compile_shapes` raise `UnsupportedShape` naming the shape and the term, so the shapes cannot silently
outgrow the compiler; pySHACL stays available as the reference engine (`--engine pyshacl`), and
tests/test_shacl_compiled.py proves both give the same results.

sh:datatype follows XSD 1.1 (the lexical form, and for gYear, date and dateTime a cast by Oxigraph, so that
30 February is refused as pySHACL refuses it). Where rdflib departs from XSD 1.1 the engines differ on purpose,
on literals the importer never writes: pySHACL accepts a gYear "21" or "+2021" and refuses year 0000 and
24:00:00, which XSD 1.1 allows.

Only nodes the caller names as focus candidates (the nodes the workbook defines) are validated; the other
nodes in the data (the neighbourhood: types of referenced nodes) only serve as values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, XSD
from rdflib.term import Node

from .importer import Term, path_key, to_ox
from .namespaces import SH
from .report import Severity

FOCUS_GRAPH = "urn:cmokg:validation:focus"  # holds one marker triple per focus candidate
TARGETS_GRAPH = "urn:cmokg:validation:targets"  # ?focus TARGET <TARGET{n}>: the focus is a target of shape n
TARGET = "urn:cmokg:validation:target"
SEVERITIES: dict[Node, Severity] = {SH.Violation: "Violation", SH.Warning: "Warning", SH.Info: "Info"}
RDF_TYPE = f"<{RDF.type}>"
CHECKS_PER_QUERY = 8  # UNION branches per query (see the module's docstring)

ZONE = r"(Z|[+-][0-9]{2}:[0-9]{2})?$"
# Lexical forms checked for sh:datatype (rdflib/pySHACL reject ill-typed literals of these datatypes).
LEXICAL: dict[str, str | None] = {
    str(XSD.string): None,
    str(XSD.anyURI): None,
    str(XSD.gYear): r"^-?[0-9]{4,}" + ZONE,
    str(XSD.date): r"^-?[0-9]{4,}-[0-9]{2}-[0-9]{2}" + ZONE,
    str(XSD.dateTime): r"^-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?" + ZONE,
    str(XSD.integer): r"^[+-]?[0-9]+$",
    str(XSD.boolean): r"^(true|false|1|0)$",
}
# Datatypes whose values the lexical pattern alone does not check (a month 13, 30 February, hour 25): the literal
# must also cast to its datatype, which Oxigraph does by the XSD 1.1 rules.
CAST_CHECKED = {str(XSD.gYear), str(XSD.date), str(XSD.dateTime)}
# Oxigraph stores the integer types derived from xsd:integer as xsd:integer: their datatype is checked as an
# xsd:integer in the derived type's range.
INTEGER_RANGES = {str(XSD.nonNegativeInteger): ">= 0", str(XSD.positiveInteger): "> 0",
                  str(XSD.nonPositiveInteger): "<= 0", str(XSD.negativeInteger): "< 0"}
NODE_KINDS = {
    SH.IRI: "isIRI(?v)", SH.BlankNode: "isBlank(?v)", SH.Literal: "isLiteral(?v)",
    SH.BlankNodeOrIRI: "(isBlank(?v) || isIRI(?v))", SH.BlankNodeOrLiteral: "(isBlank(?v) || isLiteral(?v))",
    SH.IRIOrLiteral: "(isIRI(?v) || isLiteral(?v))",
}
VALUE_PARAMETERS = {SH["class"], SH.datatype, SH.nodeKind, SH["in"], SH.hasValue, SH.pattern, SH.flags,
                    SH.minLength, SH.maxLength, SH.node}
PROPERTY_PARAMETERS = VALUE_PARAMETERS | {SH.minCount, SH.maxCount, SH.qualifiedValueShape, SH.qualifiedMinCount,
                                          SH.qualifiedMaxCount, SH.qualifiedValueShapesDisjoint}
DESCRIPTIVE = {SH.name, SH.description, SH.order, SH.group, SH.message, SH.severity, SH.deactivated, SH.path,
               SH.defaultValue}
TARGETS = {SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf}


class UnsupportedShape(Exception):
    """The shapes graph uses a SHACL feature this compiler does not implement."""


@dataclass(frozen=True)
class Result:
    """One SHACL validation result, the same from either engine."""

    focus: str
    path: str | None  # the path as graph.importer.path_key writes it
    value: Term | None
    severity: Severity
    message: str
    shape: str  # the source shape: an IRI, or a blank node's label in the shapes graph
    component: str  # the constraint component IRI


@dataclass(frozen=True)
class Check:
    """One constraint of one shape, as a SPARQL group yielding ?focus (and ?value when results carry one)."""

    pattern: str
    path: str | None
    severity: Severity
    message: str
    shape: str
    component: str


class _Compiler:
    def __init__(self, shapes: Graph, subclasses: Mapping[str, set[str]]) -> None:
        self.g = shapes
        self.subclasses = subclasses
        self.target_updates: list[str] = []

    # -- terms, lists, paths --------------------------------------------------------------------------
    def one(self, node: Node, pred: URIRef) -> Node | None:
        values = list(self.g.objects(node, pred))
        if len(values) > 1:
            raise UnsupportedShape(f"shape {node}: {len(values)} values of {pred}; one is supported")
        return values[0] if values else None

    def integer(self, node: Node, pred: URIRef) -> int | None:
        value = self.one(node, pred)
        if value is None:
            return None
        if not isinstance(value, Literal) or not isinstance(value.toPython(), int):
            raise UnsupportedShape(f"shape {node}: {pred} must be an integer, not {value!r}")
        return int(value.toPython())

    def sparql_term(self, term: Node) -> str:
        if isinstance(term, BNode):
            raise UnsupportedShape(f"a blank node ({term}) as a value in a constraint")
        return str(to_ox(term))

    def path(self, node: Node) -> str:
        if isinstance(node, URIRef):
            return f"<{node}>"
        preds = set(self.g.predicates(node))
        if RDF.first in preds:
            return "(" + "/".join(self.path(p) for p in Collection(self.g, node)) + ")"
        for pred, template in ((SH.inversePath, "^{}"), (SH.zeroOrMorePath, "{}*"), (SH.oneOrMorePath, "{}+"),
                               (SH.zeroOrOnePath, "{}?")):
            if pred in preds:
                return "(" + template.format(self.path(self.one(node, pred))) + ")"  # type: ignore[arg-type]
        if SH.alternativePath in preds:
            items = Collection(self.g, self.one(node, SH.alternativePath))  # type: ignore[arg-type]
            return "(" + "|".join(self.path(p) for p in items) + ")"
        raise UnsupportedShape(f"path {node}: unknown property path ({sorted(map(str, preds))})")

    def instance_of(self, var: str, klass: Node) -> str:
        """A pattern true when `var` is a SHACL instance of `klass` (rdf:type/rdfs:subClassOf*)."""
        classes = " ".join(f"<{k}>" for k in sorted(self.subclasses.get(str(klass), {str(klass)})))
        return f"{var} {RDF_TYPE} ?_k . VALUES ?_k {{ {classes} }}"

    # -- node-level constraints as a boolean expression on ?v ------------------------------------------
    def conditions(self, shape: Node, allowed: set[URIRef]) -> list[tuple[str, str]]:
        """(component, SPARQL expression true when ?v conforms) for each node-level constraint of `shape`."""
        out = []
        for pred in sorted(p for p in set(self.g.predicates(shape)) & VALUE_PARAMETERS & allowed
                           if isinstance(p, URIRef)):
            if pred == SH.flags:
                continue
            value = self.one(shape, pred)
            assert value is not None
            out.append(self.condition(shape, pred, value))
        return out

    def condition(self, shape: Node, pred: URIRef, value: Node) -> tuple[str, str]:
        name = str(pred).rsplit("#", 1)[-1]
        component = str(SH[name[0].upper() + name[1:] + "ConstraintComponent"])
        if pred == SH["class"]:
            return component, f"EXISTS {{ {self.instance_of('?v', value)} }}"
        if pred == SH.datatype and str(value) in INTEGER_RANGES:
            return component, (f"(isLiteral(?v) && sameTerm(datatype(?v), <{XSD.integer}>) && "
                               f"REGEX(STR(?v), {_string(str(LEXICAL[str(XSD.integer)]))}) && "
                               f"?v {INTEGER_RANGES[str(value)]})")
        if pred == SH.datatype:
            lexical = LEXICAL.get(str(value), "unsupported")
            if lexical == "unsupported":
                raise UnsupportedShape(f"shape {shape}: sh:datatype {value} (no lexical check for it)")
            test = f"(isLiteral(?v) && sameTerm(datatype(?v), <{value}>) && !langMatches(lang(?v), '*')"
            if str(value) in CAST_CHECKED:  # an invalid value makes the cast an error: COALESCE turns it false
                test += f" && COALESCE(isLiteral(<{value}>(STR(?v))), false)"
            return component, test + (f" && REGEX(STR(?v), {_string(lexical)}))" if lexical else ")")
        if pred == SH.nodeKind:
            if value not in NODE_KINDS:
                raise UnsupportedShape(f"shape {shape}: sh:nodeKind {value}")
            return component, NODE_KINDS[value]  # type: ignore[index]
        if pred == SH["in"]:
            members = [self.sparql_term(m) for m in Collection(self.g, value)]  # type: ignore[arg-type,unused-ignore]
            return component, "(" + (" || ".join(f"sameTerm(?v, {m})" for m in members) or "false") + ")"
        if pred == SH.hasValue:
            return component, f"sameTerm(?v, {self.sparql_term(value)})"
        if pred == SH.pattern:
            flags = self.one(shape, SH.flags)
            regex = f"REGEX(STR(?v), {_string(str(value))}" + (f", {_string(str(flags))})" if flags else ")")
            return component, f"(!isBlank(?v) && {regex})"
        if pred in (SH.minLength, SH.maxLength):
            op = ">=" if pred == SH.minLength else "<="
            return component, f"(!isBlank(?v) && STRLEN(STR(?v)) {op} {self.integer(shape, pred)})"
        if pred == SH.node:
            return component, self.conforms(value)
        raise UnsupportedShape(f"shape {shape}: {pred}")  # pragma: no cover - VALUE_PARAMETERS lists the above

    def conforms(self, shape: Node) -> str:
        """An expression true when ?v conforms to a value shape (node-level constraints only)."""
        self.refuse_unknown(shape, VALUE_PARAMETERS | {RDF.type})
        parts = [expr for _, expr in self.conditions(shape, VALUE_PARAMETERS)]
        return "(" + (" && ".join(parts) or "true") + ")"

    def refuse_unknown(self, shape: Node, allowed: set[URIRef]) -> None:
        for pred in set(self.g.predicates(shape)):
            if pred in allowed or pred in DESCRIPTIVE or pred in (RDFS.label, RDFS.comment):
                continue
            if str(pred).startswith(str(SH)) or pred == RDF.type:
                raise UnsupportedShape(f"shape {shape}: {pred} is not supported by the SPARQL compiler; "
                                       "extend graph/shacl_sparql.py or validate with --engine pyshacl")

    # -- shapes ---------------------------------------------------------------------------------------
    def targets(self, shape: Node) -> str | None:
        """A pattern binding ?focus to the focus candidates the shape targets (None: it targets nothing).

        Targets are computed once per run by an update (`target_updates`) that marks them in a graph of their
        own, so the many checks of a shape each look them up instead of recomputing them. (An update's default
        graph is not the union of the data's graphs: hence GRAPH ?_g.)"""
        branches = []
        for klass in self.g.objects(shape, SH.targetClass):
            branches.append(f"GRAPH ?_g {{ {self.instance_of('?focus', klass)} }}")
        for node in self.g.objects(shape, SH.targetNode):
            branches.append(f"VALUES ?focus {{ {self.sparql_term(node)} }}")
        for pred in self.g.objects(shape, SH.targetSubjectsOf):
            branches.append(f"GRAPH ?_g {{ ?focus <{pred}> ?_o }}")
        for pred in self.g.objects(shape, SH.targetObjectsOf):
            branches.append(f"GRAPH ?_g {{ ?_s <{pred}> ?focus }}")
        if not branches:
            return None
        union = " UNION ".join(f"{{ {b} }}" for b in branches)
        mark = f"<{TARGET}{len(self.target_updates)}>"
        self.target_updates.append(f"INSERT {{ GRAPH <{TARGETS_GRAPH}> {{ ?focus <{TARGET}> {mark} }} }} WHERE "
                                   f"{{ GRAPH <{FOCUS_GRAPH}> {{ ?focus ?_m ?_m }} {union} }}")
        return f"GRAPH <{TARGETS_GRAPH}> {{ ?focus <{TARGET}> {mark} }}"

    def node_shapes(self) -> list[Node]:
        shapes = {s for s in self.g.subjects(RDF.type, SH.NodeShape)}
        shapes |= {s for t in TARGETS for s in self.g.subjects(t, None)}
        for s in shapes:
            if (s, RDF.type, RDFS.Class) in self.g or (s, RDF.type, URIRef("http://www.w3.org/2002/07/owl#Class")) \
                    in self.g:
                raise UnsupportedShape(f"shape {s}: implicit class targets (a shape that is also a class)")
        return sorted(shapes, key=str)

    def compile(self) -> list[Check]:
        checks: list[Check] = []
        for shape in self.node_shapes():
            self.refuse_unknown(shape, TARGETS | {SH.property} | VALUE_PARAMETERS | {RDF.type})
            if self.one(shape, SH.deactivated) == Literal(True):
                continue
            target = self.targets(shape)
            if target is None:  # only used through sh:node or a qualified value shape: not validated alone
                continue
            checks += self.shape_checks(shape, shape, target, None)
            for prop in sorted(self.g.objects(shape, SH.property), key=str):
                if self.one(prop, SH.deactivated) == Literal(True):
                    continue
                self.refuse_unknown(prop, PROPERTY_PARAMETERS | {RDF.type})
                path = self.one(prop, SH.path)
                if path is None:
                    raise UnsupportedShape(f"property shape {prop} of {shape} has no sh:path")
                checks += self.shape_checks(prop, shape, target, path)
        return checks

    def shape_checks(self, shape: Node, node_shape: Node, target: str, path: Node | None) -> list[Check]:
        """The checks of one shape: its node-level constraints on each value, then its counts."""
        severity = SEVERITIES.get(self.one(shape, SH.severity) or SH.Violation)
        if severity is None:
            raise UnsupportedShape(f"shape {shape}: sh:severity {self.one(shape, SH.severity)}")
        message = self.one(shape, SH.message)
        if message is None and (path is not None or self.conditions(shape, VALUE_PARAMETERS)):
            raise UnsupportedShape(f"shape {shape} (of {node_shape}) has no sh:message: every constraint needs "
                                   "the message a reviewer reads")
        text = str(message)
        key = path_key(path, self.g) if path is not None else None
        values = f"?focus {self.path(path)} ?value" if path is not None else "BIND(?focus AS ?value)"
        made = []

        def check(pattern: str, component: str) -> None:
            made.append(Check(pattern, key, severity, text, _shape_id(shape), component))

        per_value = VALUE_PARAMETERS - {SH.hasValue} if path is not None else VALUE_PARAMETERS
        for component, expr in self.conditions(shape, per_value):
            check(f"{target} {values} FILTER(!{_on(expr, '?value')})", component)
        if path is None:
            return made
        p = self.path(path)
        required = self.one(shape, SH.hasValue)
        if required is not None:  # on a property shape: some value is it (the result names no value)
            term = self.sparql_term(required)
            check(f"{target} FILTER NOT EXISTS {{ ?focus {p} ?_v FILTER(sameTerm(?_v, {term})) }}",
                  str(SH.HasValueConstraintComponent))
        min_count, max_count = self.integer(shape, SH.minCount), self.integer(shape, SH.maxCount)
        if min_count == 1:
            check(f"{target} FILTER NOT EXISTS {{ ?focus {p} ?_v }}", str(SH.MinCountConstraintComponent))
        elif min_count is not None and min_count > 1:
            check(_count(target, p, "true", f"< {min_count}"), str(SH.MinCountConstraintComponent))
        if max_count is not None:
            check(_count(target, p, "true", f"> {max_count}"), str(SH.MaxCountConstraintComponent))
        qualified = self.one(shape, SH.qualifiedValueShape)
        if qualified is not None:
            if self.one(shape, SH.qualifiedValueShapesDisjoint) == Literal(True):
                raise UnsupportedShape(f"shape {shape}: sh:qualifiedValueShapesDisjoint")
            conforms = _on(self.conforms(qualified), "?_v")
            for pred, op, component in ((SH.qualifiedMinCount, "<", SH.QualifiedMinCountConstraintComponent),
                                        (SH.qualifiedMaxCount, ">", SH.QualifiedMaxCountConstraintComponent)):
                bound = self.integer(shape, pred)
                if bound is not None:
                    check(_count(target, p, conforms, f"{op} {bound}"), str(component))
        return made


def _count(target: str, path: str, condition: str, test: str) -> str:
    """Focus nodes whose number of distinct values along `path` meeting `condition` passes `test`."""
    return (f"{{ SELECT ?focus (COUNT(DISTINCT ?_v) AS ?_n) WHERE {{ {target} "
            f"OPTIONAL {{ ?focus {path} ?_v FILTER({condition}) }} }} GROUP BY ?focus }} FILTER(?_n {test})")


def _on(expr: str, var: str) -> str:
    """A value-node expression (written on ?v) applied to another variable."""
    return re.sub(r"\?v\b", var, expr)


def _string(text: str) -> str:
    return str(ox.Literal(text))


def _shape_id(shape: Node) -> str:
    return str(shape) if isinstance(shape, URIRef) else f"_:{shape}"


def subclass_closure(graph: Graph) -> dict[str, set[str]]:
    """For each class: itself and every class below it by rdfs:subClassOf* (IRIs only)."""
    below: dict[str, set[str]] = {}
    for sub_node, sup_node in graph.subject_objects(RDFS.subClassOf):
        if isinstance(sub_node, URIRef) and isinstance(sup_node, URIRef):
            below.setdefault(str(sup_node), set()).add(str(sub_node))
    closure: dict[str, set[str]] = {}
    for klass in below:
        seen, todo = {klass}, [klass]
        while todo:
            for sub in below.get(todo.pop(), ()):
                if sub not in seen:
                    seen.add(sub)
                    todo.append(sub)
        closure[klass] = seen
    return closure


@dataclass(frozen=True)
class CompiledShapes:
    """The shapes as SPARQL queries; `run` validates data with them."""

    checks: tuple[Check, ...]
    targets: str  # the update marking each shape's targets
    queries: tuple[str, ...]  # together, every check; ?c is the check's index

    def run(self, store: ox.Store, focus: Iterable[str]) -> list[Result]:
        """Validate the union of the graphs in `store`: results on the `focus` nodes only."""
        marker = f"<{FOCUS_GRAPH}>"
        markers = "".join(f"<{f}> {marker} {marker} .\n" for f in focus).encode("utf-8")
        store.clear_graph(ox.NamedNode(FOCUS_GRAPH))
        store.load(markers, ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(FOCUS_GRAPH))
        store.clear_graph(ox.NamedNode(TARGETS_GRAPH))
        store.update(self.targets)
        out = []
        for query in self.queries:
            results = store.query(query, use_default_graph_as_union=True)
            assert isinstance(results, ox.QuerySolutions)
            for row in results:
                check = self.checks[int(row["c"].value)]
                out.append(Result(row["focus"].value, check.path, row["value"],
                                  check.severity, check.message, check.shape, check.component))
        return list(dict.fromkeys(out))


def compile_shapes(shapes: Graph, subclasses: Mapping[str, set[str]]) -> CompiledShapes:
    """Compile every node shape of `shapes`; raises UnsupportedShape on a feature outside SHACL Core's subset
    listed in this module's docstring. `subclasses` maps a class to the classes below it (itself included)."""
    compiler = _Compiler(shapes, subclasses)
    checks = tuple(compiler.compile())
    branches = []
    for i, c in enumerate(checks):
        has_value = "?value" in c.pattern
        select = "?focus ?value" if has_value else "?focus"
        branches.append(f"{{ SELECT ?c {select} WHERE {{ {c.pattern} BIND({i} AS ?c) }} }}")
    queries = tuple("SELECT ?c ?focus ?value WHERE {\n" + "\nUNION\n".join(branches[i:i + CHECKS_PER_QUERY]) + "\n}"
                    for i in range(0, len(branches), CHECKS_PER_QUERY))
    return CompiledShapes(checks, " ;\n".join(compiler.target_updates), queries)
