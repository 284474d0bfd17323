"""The SHACL shapes compiled to SPARQL give exactly the results pySHACL (the reference engine) gives.

On every bad workbook fixture (tests/fixtures/workbooks/bad, the cases test_workbooks.py discovers), on the
good fixture, on the seed workbooks (no results) and on hand-made triples that break each constraint kind;
and the compiler refuses shapes using features it does not implement.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph
from test_workbooks import BAD_CASES, GOOD, _inputs

from graph.importer import add_provenance, convert, path_key, to_ox
from graph.namespaces import ID, SH
from graph.pipeline import DATA_DIR, workbooks_in
from graph.shacl_sparql import SEVERITIES, Result, UnsupportedShape, compile_shapes, subclass_closure
from graph.store import EvidenceStore
from graph.validate import concepts_for, ontology_graph, shacl_results, shapes_graph
from graph.workbook import UnreadableWorkbook, read_workbook

PREFIXES = """@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix ex: <http://example.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
"""


def both_engines(paths: list[Path], store: EvidenceStore | None) -> tuple[set[Result], set[Result]]:
    wb = read_workbook(paths)
    ext = convert(wb, concepts_for(store))
    add_provenance(ext, wb, "test", "0", dt.datetime(2024, 1, 1, tzinfo=dt.UTC), workbook_id="w")
    return set(shacl_results(ext, store, engine="sparql")), set(shacl_results(ext, store, engine="pyshacl"))


@pytest.mark.parametrize("folder", BAD_CASES, ids=[p.name for p in BAD_CASES])
def test_same_results_as_pyshacl_on_bad_fixtures(folder: Path, schema_store: EvidenceStore) -> None:
    try:
        compiled, reference = both_engines(_inputs(folder), schema_store)
    except UnreadableWorkbook:
        pytest.skip("unreadable: no triples to validate")
    assert compiled == reference


def test_same_results_on_the_good_fixture_against_the_seed_graph(seed_evidence_store: EvidenceStore) -> None:
    compiled, reference = both_engines([GOOD], seed_evidence_store)
    assert compiled == reference


@pytest.mark.parametrize("paths", workbooks_in(DATA_DIR), ids=lambda p: p[0].name)
def test_seed_workbooks_have_no_results_in_either_engine(paths: list[Path],
                                                        seed_evidence_store: EvidenceStore) -> None:
    compiled, reference = both_engines(paths, seed_evidence_store)
    assert compiled == reference == set()


def test_some_fixture_has_results_of_every_kind_the_shapes_use(schema_store: EvidenceStore) -> None:
    """The comparison above is not vacuous: the bad fixtures raise results from several components."""
    components = set()
    for folder in BAD_CASES:
        try:
            compiled, _ = both_engines(_inputs(folder), schema_store)
        except UnreadableWorkbook:
            continue
        components |= {r.component.rsplit("#", 1)[1] for r in compiled}
    assert {"MinCountConstraintComponent", "ClassConstraintComponent", "DatatypeConstraintComponent",
            "PatternConstraintComponent", "QualifiedMinCountConstraintComponent"} <= components


def _run_both(shapes_ttl: str, data_ttl: str, focus: list[str]) -> tuple[set[Result], set[Result]]:
    """Compiled engine and pySHACL on hand-written shapes and data (results on `focus` nodes only)."""
    from pyshacl import validate
    from rdflib import URIRef

    shapes = Graph().parse(data=PREFIXES + shapes_ttl, format="turtle")
    data = Graph().parse(data=PREFIXES + data_ttl, format="turtle")
    store = ox.Store()
    store.load(data.serialize(format="nt", encoding="utf-8"), ox.RdfFormat.N_TRIPLES,
               to_graph=ox.NamedNode("urn:test:data"))
    mine = set(compile_shapes(shapes, subclass_closure(data)).run(store, focus))
    _, results, _ = validate(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    assert isinstance(results, Graph)
    theirs = set()
    for r in results.objects(None, SH.result):
        if str(results.value(r, SH.focusNode)) not in focus:
            continue
        shape, value = results.value(r, SH.sourceShape), results.value(r, SH.value)
        severity = SEVERITIES[results.value(r, SH.resultSeverity) or SH.Violation]
        shape_path = shapes.value(shape, SH.path)
        theirs.add(Result(
            str(results.value(r, SH.focusNode)), path_key(shape_path, shapes) if shape_path is not None else None,
            to_ox(value) if value is not None else None, severity,
            str(results.value(r, SH.resultMessage)), str(shape) if isinstance(shape, URIRef) else f"_:{shape}",
            str(results.value(r, SH.sourceConstraintComponent))))
    return mine, theirs


SHAPES = """
ex:S a sh:NodeShape ; sh:targetClass ex:C ;
  sh:property [ sh:path ex:name ; sh:minCount 2 ; sh:maxCount 2 ; sh:message "names" ] ;
  sh:property [ sh:path ex:code ; sh:pattern "^a+$" ; sh:flags "i" ; sh:minLength 2 ; sh:maxLength 3 ;
                sh:message "code" ] ;
  sh:property [ sh:path ex:kind ; sh:in ( ex:k1 ex:k2 ) ; sh:nodeKind sh:IRI ; sh:message "kind" ] ;
  sh:property [ sh:path ex:n ; sh:datatype xsd:integer ; sh:severity sh:Warning ; sh:message "n" ] ;
  sh:property [ sh:path ex:flag ; sh:hasValue true ; sh:message "flag" ] ;
  sh:property [ sh:path ( ex:link ex:name ) ; sh:minCount 1 ; sh:message "sequence" ] ;
  sh:property [ sh:path [ sh:inversePath ex:link ] ; sh:class ex:C ; sh:message "inverse" ] ;
  sh:property [ sh:path [ sh:alternativePath ( ex:link [ sh:zeroOrMorePath ex:next ] ) ] ; sh:maxCount 3 ;
                sh:message "alternative" ] ;
  sh:property [ sh:path ex:link ; sh:node ex:Named ; sh:message "node" ] ;
  sh:property [ sh:path ex:link ; sh:qualifiedValueShape [ sh:class ex:D ] ; sh:qualifiedMinCount 1 ;
                sh:qualifiedMaxCount 1 ; sh:message "qualified" ] .
ex:T a sh:NodeShape ; sh:targetObjectsOf ex:link ; sh:targetNode ex:g ;
  sh:property [ sh:path ex:name ; sh:minCount 1 ; sh:message "named" ] .
ex:Named sh:nodeKind sh:IRI ; sh:in ( ex:b ex:c ) .
"""
DATA = """
ex:D rdfs:subClassOf ex:C .
ex:a a ex:C ; ex:name "x" ; ex:code "aAa" , "b" , "aaaa" ; ex:kind ex:k3 , "k1" ; ex:n 5 , "6" ;
     ex:link ex:b , ex:e ; ex:next ex:b . ex:b ex:next ex:e .
ex:b a ex:D ; ex:name "y" , "z" , "w" ; ex:flag true ; ex:link ex:a .
ex:e a ex:D .
ex:f a ex:C ; ex:name "p" , "q" ; ex:flag false .
ex:h a ex:C .
"""


def test_every_compiled_constraint_kind_agrees_with_pyshacl() -> None:
    focus = [f"http://example.org/{n}" for n in "abefg"]  # ex:h is not a focus candidate
    mine, theirs = _run_both(SHAPES, DATA, focus)
    assert mine == theirs
    assert len({r.component for r in mine}) >= 11
    assert "http://example.org/h" not in {r.focus for r in mine}


@pytest.mark.parametrize("extra", [
    "sh:closed true",
    "sh:property [ sh:path ex:p ; sh:equals ex:q ; sh:message \"m\" ]",
    "sh:property [ sh:path ex:p ; sh:minInclusive 3 ; sh:message \"m\" ]",
    "sh:property [ sh:path ex:p ; sh:minCount 1 ]",
    "sh:property [ sh:path ex:p ; sh:datatype xsd:double ; sh:message \"m\" ]",
    "sh:property [ sh:path ex:p ; sh:node [ sh:property [ sh:path ex:q ; sh:minCount 1 ] ] ; sh:message \"m\" ]",
    "sh:or ( [ sh:class ex:A ] [ sh:class ex:B ] )",
])
def test_the_compiler_refuses_what_it_does_not_implement(extra: str) -> None:
    shapes = Graph().parse(data=PREFIXES + f"ex:S a sh:NodeShape ; sh:targetClass ex:C ; {extra} .",
                           format="turtle")
    with pytest.raises(UnsupportedShape):
        compile_shapes(shapes, {})


def test_the_project_shapes_compile() -> None:
    compiled = compile_shapes(shapes_graph(), subclass_closure(ontology_graph()))
    assert len(compiled.checks) > 50
    assert not any(str(ID) in q for q in compiled.queries)  # the queries are about shapes, not instances


def test_cli_engines_give_the_same_report(tmp_path: Path) -> None:
    """`cmokg validate --engine sparql|pyshacl` on a bad workbook: the same findings, the same exit code."""
    import json
    import subprocess
    import sys

    cmokg = str(Path(sys.executable).parent / "cmokg")
    folder = next(p for p in BAD_CASES if p.name == "malformed-doi")
    runs = [subprocess.run([cmokg, "validate", str(folder), "--store", str(tmp_path / "none"), "--format", "json",
                            "--engine", engine], capture_output=True, timeout=120) for engine in ("sparql", "pyshacl")]
    assert [r.returncode for r in runs] == [1, 1]
    sparql, pyshacl = (json.loads(r.stdout)["results"] for r in runs)
    assert sparql == pyshacl and sparql
