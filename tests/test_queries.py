"""The named queries: headers parse, queries parse and run on the mini fixture, QC checks pass on it and fail
on deliberately broken copies of it, and parameters are bound as RDF terms, never pasted into query text.

The same catalog and QC tests run on the real built graph through the ``seed_store`` fixture
(tests/conftest.py) when it exists.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyoxigraph as ox
import pytest
from SPARQLWrapper import SPARQLWrapper

from graph.catalog import (
    MAX_PAGING,
    QUERIES_ROOT,
    CatalogError,
    NamedQuery,
    Page,
    ParameterError,
    bind,
    load_catalog,
    load_qc,
    load_query,
    page,
    paged_text,
    run,
)
from graph.pipeline import import_workbook
from graph.remote import inject_values
from graph.store import EvidenceStore

FIXTURE = Path(__file__).parent / "fixtures" / "mini.trig"
FIXTURE_ADDITIONS = Path(__file__).parent / "fixtures" / "mini-catalog.trig"
WORKBOOKS = Path(__file__).parent / "fixtures" / "workbooks"
BASE = "https://w3id.org/cmokg/"
ID = BASE + "id/"
CMO = BASE + "ontology#"
BATCH = ox.NamedNode(ID + "batch/0000000000000000")
VOCAB = ox.NamedNode(BASE + "graph/vocab")
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
SKOS = "http://www.w3.org/2004/02/skos/core#"
OA = "http://www.w3.org/ns/oa#"
PRISM_DOI = ox.NamedNode("http://prismstandard.org/namespaces/basic/2.0/doi")
XSD_INTEGER = ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")

CATALOG = load_catalog()
QC = load_qc()
INJECTIONS = ['x" } ; DROP ALL ; #', '") || true || ("', "trust' || 'a", "x> } ; DROP ALL ; <y", "*"]
SEED_NONEMPTY = {
    "all-cmocs",
    "batches",
    "documents",
    "setting-dimension-comparison",
    "shared-mechanisms",
    "weak-evidence-cmocs",
    "cited-sources-with-evidence",
    "programme-theory-cmocs",
    "citations",
    "evidence-trail",
    "cmo-chains",
}
"""Catalog queries whose example must return rows on the real built graph (the seed data)."""
MINI_VALUES: dict[str, dict[str, str]] = {
    "cited-sources-with-evidence": {"citing": ID + "source/calderon2021"},
    "citations": {"citing": ID + "source/calderon2021"},
    "evidence-trail": {"cmoc": ID + "cmoc/t2"},
    "cmo-chains": {"start": ID + "cmoc/t1"},
}
"""Parameter values for the mini fixture where the example (and default) names a resource of the seed data."""

Row = dict[str, ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple]


def iri(path: str) -> ox.NamedNode:
    return ox.NamedNode(ID + path)


def cmo(name: str) -> ox.NamedNode:
    return ox.NamedNode(CMO + name)


def load_mini() -> ox.Store:
    store = ox.Store()
    store.load(path=str(FIXTURE), format=ox.RdfFormat.TRIG)
    store.load(path=str(FIXTURE_ADDITIONS), format=ox.RdfFormat.TRIG)
    return store


def mini_values(query: NamedQuery) -> dict[str, str]:
    return MINI_VALUES.get(query.name, dict(query.example_values))


def rows(result: ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples) -> list[Row]:
    assert isinstance(result, ox.QuerySolutions), "catalog and QC queries are SELECT queries"
    names = [v.value for v in result.variables]
    return [{n: s[n] for n in names if s[n] is not None} for s in result]


def run_rows(
    store: ox.Store, query: NamedQuery, values: dict[str, str] | None = None, rows_page: Page | None = None
) -> list[Row]:
    return rows(run(store, query, values or {}, rows_page))


@pytest.fixture(scope="module")
def catalog_store() -> ox.Store:
    """The mini fixture in an in-memory store, shared by the read-only tests of this module."""
    return load_mini()


# --- headers -------------------------------------------------------------------------------------------


def test_catalog_and_qc_are_not_empty() -> None:
    assert len(CATALOG) >= 10
    assert len(QC) >= 10
    assert all(name.endswith("-violation") for name in QC)


@pytest.mark.parametrize("query", [*CATALOG.values(), *QC.values()], ids=lambda q: f"{q.kind}/{q.name}")
def test_header_parses(query: NamedQuery) -> None:
    reloaded = load_query(query.path, query.kind)
    assert reloaded == query
    assert query.title and query.description
    assert query.name == query.path.stem
    if query.kind == "catalog":
        assert query.example.startswith(f"cmokg query {query.name}")
    for param in query.parameters:
        if param.required:
            assert param.name in query.example_values, f"the example must set required parameter {param.name}"


@pytest.mark.parametrize("query", [*CATALOG.values(), *QC.values()], ids=lambda q: f"{q.kind}/{q.name}")
def test_query_parses(query: NamedQuery) -> None:
    result = ox.Store().query(query.text, use_default_graph_as_union=True)
    assert isinstance(result, ox.QuerySolutions)


@pytest.mark.parametrize("query", [*CATALOG.values(), *QC.values()], ids=lambda q: f"{q.kind}/{q.name}")
def test_remote_backends_send_it_as_a_query(query: NamedQuery) -> None:
    """Regression: SPARQLWrapper (graph.remote) guesses the operation from the text and strips only every other
    comment line, so the word "added" in batch-changes' header made it send the query as an ADD update."""
    wrapper = SPARQLWrapper("http://localhost/sparql")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper.setQuery(query.text)
    assert wrapper.queryType == "SELECT"


def test_readme_documents_every_query() -> None:
    readme = (QUERIES_ROOT / "README.md").read_text(encoding="utf-8")
    for query in [*CATALOG.values(), *QC.values()]:
        assert f"`{query.name}`" in readme, f"queries/README.md does not list {query.name}"


# --- catalog on the mini fixture ---------------------------------------------------------------------


@pytest.mark.parametrize("query", CATALOG.values(), ids=lambda q: q.name)
def test_catalog_query_returns_rows(query: NamedQuery, catalog_store: ox.Store) -> None:
    values = mini_values(query)
    found = run_rows(catalog_store, query, values)
    assert found, f"{query.name} returned no rows on the mini fixture with {values}"
    for name, value in values.items():
        expected = bind(query, {name: value})[ox.Variable(name)]
        assert all(row.get(name) == expected for row in found), f"?{name} is not the bound value"


@pytest.mark.parametrize(
    "query", [q for q in CATALOG.values() if not any(p.required for p in q.parameters)], ids=lambda q: q.name
)
def test_catalog_query_without_parameters_returns_rows(query: NamedQuery, catalog_store: ox.Store) -> None:
    values = MINI_VALUES.get(query.name, {})
    assert run_rows(catalog_store, query, values), f"{query.name} with its defaults returned no rows"


CONCATENATED = {"cmocLabels": ", ", "sourceTitles": " | ", "documentIds": ", ", "resources": ", ", "labels": " | "}
"""GROUP_CONCAT columns, whose order SPARQL leaves open: compared as sets of parts."""


def frozen(found: list[Row]) -> list[frozenset[tuple[str, object]]]:
    def key(name: str, value: object) -> object:
        if name in CONCATENATED and isinstance(value, ox.Literal):
            return frozenset(value.value.split(CONCATENATED[name]))
        return value

    return [frozenset((name, key(name, value)) for name, value in row.items()) for row in found]


@pytest.mark.parametrize("query", CATALOG.values(), ids=lambda q: q.name)
def test_rows_do_not_repeat_when_graphs_repeat_a_triple(query: NamedQuery, catalog_store: ox.Store) -> None:
    """Regression: `batches` listed every batch 13 times on the seed graph, once per batch graph holding the
    importing agent's label, because the union default graph repeats a triple held in several graphs."""
    doubled = load_mini()
    copy = ox.NamedNode(ID + "batch/1111111111111111")
    for quad in list(doubled.quads_for_pattern(None, None, None, BATCH)):
        doubled.add(ox.Quad(quad.subject, quad.predicate, quad.object, copy))
    values = mini_values(query)
    found = frozen(run_rows(doubled, query, values))
    assert len(found) == len(set(found)), "duplicate rows"
    if query.name != "batches":  # the copy is a second graph describing the batch: one more row, rightly
        single = frozen(run_rows(catalog_store, query, values))
        assert len(found) == len(single)
        assert set(found) == set(single)


def test_all_cmocs_lists_every_cmoc_with_its_parts(catalog_store: ox.Store) -> None:
    found = {row["cmoc"]: row for row in run_rows(catalog_store, CATALOG["all-cmocs"])}
    assert set(found) == {iri("cmoc/t1"), iri("cmoc/t2"), iri("cmoc/t3"), iri("cmoc/w1")}
    assert "resource" not in found[iri("cmoc/t3")]
    assert "reasoning" not in found[iri("cmoc/w1")]
    assert found[iri("cmoc/t1")]["documentTitle"].value.startswith("Tensions and opportunities")


def test_cmocs_by_framework_filters_by_label_or_iri(catalog_store: ox.Store) -> None:
    query = CATALOG["cmocs-by-framework"]
    everything = run_rows(catalog_store, query)
    assert len(everything) == 4
    by_label = run_rows(catalog_store, query, {"resource": "LEADERSHIP"})
    by_iri = run_rows(catalog_store, query, {"resource": ID + "concept/framework/leadership"})
    assert {r["cmoc"] for r in by_label} == {r["cmoc"] for r in by_iri} == {iri("cmoc/t3"), iri("cmoc/w1")}
    assert (
        run_rows(catalog_store, query, {"dimension": "interpersonal relations", "resource": "leadership"})
        == []
    )


def test_evidence_trail_has_every_field(catalog_store: ox.Store) -> None:
    found = run_rows(catalog_store, CATALOG["evidence-trail"], {"cmoc": ID + "cmoc/t1"})
    assert len(found) == 1
    row = found[0]
    assert row["quote"] == ox.Literal("Having the time to listen is what makes them trust you.")
    assert row["page"] == ox.Literal("68-69")
    assert row["section"] == ox.Literal("Findings")
    assert row["relation"] == ox.Literal("supports")
    assert (row["level"].value, row["relevance"].value, row["rigour"].value) == (
        "participant",
        "high",
        "moderate",
    )
    assert row["source"] == iri("source/linkworkers2023")
    assert row["doi"] == ox.NamedNode("https://doi.org/10.4236/jss.2023.115006")
    assert row["year"].value == "2023"


def test_contested_cmocs_counts_both_sides(catalog_store: ox.Store) -> None:
    found = run_rows(catalog_store, CATALOG["contested-cmocs"])
    assert [(r["cmoc"], int(r["supporting"].value), int(r["refuting"].value)) for r in found] == [
        (iri("cmoc/t2"), 1, 1)
    ]


def test_cmo_chains_gives_every_pair_with_its_length(catalog_store: ox.Store) -> None:
    found = run_rows(catalog_store, CATALOG["cmo-chains"])
    pairs = {
        (r["start"].value[-2:], r["end"].value[-2:]): (int(r["length"].value), r["complete"].value)
        for r in found
    }
    assert pairs == {("t1", "t2"): (1, "false"), ("t2", "t3"): (1, "false"), ("t1", "t3"): (2, "true")}


def test_documents_filters_by_integer_year(catalog_store: ox.Store) -> None:
    query = CATALOG["documents"]
    assert {r["document"] for r in run_rows(catalog_store, query, {"since": "2022"})} == {
        iri("source/linkworkers2023")
    }
    assert {r["document"] for r in run_rows(catalog_store, query, {"until": "2021"})} == {
        iri("source/calderon2021")
    }
    assert bind(query, {"since": " 2022 "})[ox.Variable("since")] == ox.Literal("2022", datatype=XSD_INTEGER)


def test_setting_dimension_comparison_filters_by_setting_text_or_iri(catalog_store: ox.Store) -> None:
    query = CATALOG["setting-dimension-comparison"]
    found = run_rows(catalog_store, query, dict(query.example_values))
    assert [(r["cmoc"], r["resources"].value, int(r["supportingFragments"].value)) for r in found] == [
        (iri("cmoc/w1"), "leadership", 0)
    ]
    assert found[0]["settingLabel"].value == "link workers"
    assert found[0]["document"] == iri("source/linkworkers2023")
    assert found[0]["context"].value == "Practice manager champions the link worker role"
    by_iri = run_rows(catalog_store, query, {"setting": ID + "concept/setting/link-workers"})
    assert {r["cmoc"] for r in by_iri} == {iri("cmoc/t1"), iri("cmoc/w1")}
    everything = run_rows(catalog_store, query)
    assert len(everything) == 4
    assert {(r["cmoc"], int(r["supportingFragments"].value)) for r in everything} == {
        (iri("cmoc/t1"), 1), (iri("cmoc/t2"), 1), (iri("cmoc/t3"), 1), (iri("cmoc/w1"), 0)
    }
    assert [r["settingLabel"].value for r in everything] == sorted(r["settingLabel"].value for r in everything)


def test_shared_mechanisms_counts_documents_against_min(catalog_store: ox.Store) -> None:
    query = CATALOG["shared-mechanisms"]
    found = run_rows(catalog_store, query, {"min": "2"})
    assert [(r["kind"].value, r["mechanism"], int(r["documents"].value), int(r["cmocs"].value)) for r in found] == [
        ("framework resource", iri("concept/framework/leadership"), 2, 2)
    ]
    assert found[0]["dimensionLabel"].value == "organisational contingencies"
    assert set(found[0]["documentIds"].value.split(", ")) == {"calderon2021", "linkworkers2023"}
    assert run_rows(catalog_store, query, {"min": "3"}) == []
    assert len(run_rows(catalog_store, query, {"min": "1"})) > len(found)


def test_shared_mechanisms_matches_wording_across_documents() -> None:
    store = load_mini()
    # w1's resource reworded like t2's, with other case, spacing and a full stop: one shared wording
    store.remove(ox.Quad(iri("cmoc/w1/resource"), cmo("description"),
                         ox.Literal("Regular supervision and a shared office"), BATCH))
    add(store, iri("cmoc/w1/resource"), cmo("description"), ox.Literal("welcoming  volunteers who remember THEM."))
    found = run_rows(store, CATALOG["shared-mechanisms"], {"min": "2"})
    wording = [r for r in found if r["kind"].value == "resource wording"]
    assert [(r["label"].value, int(r["documents"].value)) for r in wording] == [
        ("welcoming volunteers who remember them", 2)
    ]
    assert "mechanism" not in wording[0]


def test_weak_evidence_cmocs_gives_the_basis(catalog_store: ox.Store) -> None:
    found = run_rows(catalog_store, CATALOG["weak-evidence-cmocs"])
    assert {(r["cmoc"], r["basis"].value, int(r["supporting"].value)) for r in found} == {
        (iri("cmoc/t2"), "low rigour only", 1),
        (iri("cmoc/t3"), "reviewer inference only", 1),
    }
    store = load_mini()
    add(store, iri("evidence/e4"), cmo("rigour"), iri("concept/appraisal/low"))
    add(store, iri("evidence/e1"), cmo("interpretiveLevel"), iri("concept/level/reviewer"))
    remove(store, iri("evidence/e1"), cmo("interpretiveLevel"))
    found = {r["cmoc"]: r["basis"].value for r in run_rows(store, CATALOG["weak-evidence-cmocs"])}
    assert found == {iri("cmoc/t2"): "low rigour only", iri("cmoc/t3"): "reviewer inference and low rigour only"}


def test_cited_sources_with_evidence_counts_fragments(catalog_store: ox.Store) -> None:
    query = CATALOG["cited-sources-with-evidence"]
    found = run_rows(catalog_store, query, {"citing": ID + "source/calderon2021"})
    assert [
        (r["cited"], int(r["fragments"].value), int(r["supporting"].value), int(r["refuting"].value),
         int(r["cmocs"].value))
        for r in found
    ] == [(iri("source/linkworkers2023"), 3, 3, 0, 3)]
    assert run_rows(catalog_store, query, {"citing": ID + "source/linkworkers2023"}) == []
    assert query.parameter("citing").default == ID + "source/griffiths2023"


def test_programme_theory_cmocs_by_name_or_iri(catalog_store: ox.Store) -> None:
    query = CATALOG["programme-theory-cmocs"]
    by_name = run_rows(catalog_store, query, {"theory": "ENGAGEMENT"})
    by_iri = run_rows(catalog_store, query, {"theory": ID + "theory/calderon2021/engagement"})
    assert [r["cmoc"] for r in by_name] == [r["cmoc"] for r in by_iri] == [iri("cmoc/t1"), iri("cmoc/t2")]
    assert [(int(r["supporting"].value), int(r["refuting"].value)) for r in by_name] == [(1, 0), (1, 1)]
    assert by_name[0]["theoryDocument"] == iri("source/calderon2021")
    assert run_rows(catalog_store, query, {"theory": "Engage"}) == []
    with pytest.raises(ParameterError) as caught:
        bind(query, {})
    assert caught.value.name == "theory"


def test_batch_changes_of_a_first_import_are_all_new(catalog_store: ox.Store) -> None:
    found = run_rows(catalog_store, CATALOG["batch-changes"], {"batch": BATCH.value})
    assert {r["change"].value for r in found} == {"new"}
    assert {(r["kind"].value, r["identifier"].value) for r in found} == {
        ("CMOC", "t1"), ("CMOC", "t2"), ("CMOC", "t3"), ("CMOC", "w1"),
        ("source", "calderon2021"), ("source", "linkworkers2023"),
        ("evidence", "e1"), ("evidence", "e2"), ("evidence", "e3"), ("evidence", "e4"),
    }
    quote = next(r for r in found if r["node"] == iri("evidence/e1"))
    assert quote["labels"].value == "Having the time to listen is what makes them trust you."
    assert run_rows(catalog_store, CATALOG["batch-changes"], {"batch": ID + "batch/ffffffffffffffff"}) == []


# --- parameters ---------------------------------------------------------------------------------------


STRING_PARAMS = [(q, p.name) for q in CATALOG.values() for p in q.parameters if p.type == "string"]
IRI_PARAMS = [(q, p.name) for q in CATALOG.values() for p in q.parameters if p.type == "iri"]


@pytest.mark.parametrize("injection", INJECTIONS)
@pytest.mark.parametrize(
    ("query", "name"), STRING_PARAMS, ids=lambda x: x.name if isinstance(x, NamedQuery) else x
)
def test_string_parameter_is_only_ever_a_literal(
    query: NamedQuery, name: str, injection: str, catalog_store: ox.Store
) -> None:
    """Text that would break out of a string in a pasted query matches nothing and changes nothing."""
    size = len(catalog_store)
    values = {**mini_values(query), name: injection}
    assert bind(query, values)[ox.Variable(name)] == ox.Literal(injection)
    assert run_rows(catalog_store, query, values) == []
    assert len(catalog_store) == size


def test_string_parameter_matches_its_exact_value(catalog_store: ox.Store) -> None:
    found = run_rows(catalog_store, CATALOG["mechanism-keyword"], {"keyword": "TRUST"})
    assert [r["cmoc"] for r in found] == [iri("cmoc/t1")]
    assert found[0]["keyword"] == ox.Literal("TRUST")


@pytest.mark.parametrize(
    "value",
    [
        'x" } ; DROP ALL ; #',
        ID + "cmoc/t1> } ; DROP ALL ; <x",
        ID + 'cmoc/t1" }',
        ID + "cmoc/t 1",
        ID + "cmoc/{t1}",
        ID + "cmoc/t1|x",
        ID + "cmoc/t1^x",
        ID + "cmoc/t1`x",
        ID + "cmoc\\t1",
        "cmoc/t1",
        "",
    ],
)
@pytest.mark.parametrize(
    ("query", "name"), IRI_PARAMS, ids=lambda x: x.name if isinstance(x, NamedQuery) else x
)
def test_iri_parameter_rejects_non_iris(query: NamedQuery, name: str, value: str) -> None:
    param = query.parameter(name)
    if value == "":
        if param.required:
            with pytest.raises(ParameterError) as caught:
                bind(query, {name: value})
            assert caught.value.name == name
        elif param.default is not None:
            assert bind(query, {name: value})[ox.Variable(name)] == ox.NamedNode(param.default)
        else:
            assert ox.Variable(name) not in bind(query, {name: value})
        return
    with pytest.raises(ParameterError) as caught:
        bind(query, {name: value})
    assert caught.value.name == name
    assert name in str(caught.value)


def test_unknown_and_missing_parameters_are_named() -> None:
    with pytest.raises(ParameterError) as caught:
        bind(CATALOG["all-cmocs"], {"nope": "x"})
    assert caught.value.name == "nope"
    with pytest.raises(ParameterError) as caught:
        bind(CATALOG["evidence-trail"], {})
    assert caught.value.name == "cmoc"
    with pytest.raises(ParameterError) as caught:
        bind(CATALOG["documents"], {"since": "2020; DROP ALL"})
    assert caught.value.name == "since"


def test_optional_parameter_without_value_stays_unbound() -> None:
    assert bind(CATALOG["cmocs-by-framework"], {}) == {}
    assert bind(CATALOG["cmocs-by-framework"], {"resource": ""}) == {}


def write_query(folder: Path, name: str, header: str, body: str = "SELECT ?n ?d ?b ?i ?x WHERE { }") -> Path:
    (folder / "catalog").mkdir(exist_ok=True)
    path = folder / "catalog" / f"{name}.rq"
    path.write_text(header + body + "\n", encoding="utf-8")
    return path


TYPED_HEADER = """# title: Typed parameters
# description: One parameter of each type, with defaults.
# param: n | integer | 5 | a number
# param: d | date | 2024-01-31 | a date
# param: b | boolean | true | a flag
# param: i | iri | https://example.org/x | an IRI
# param: x | decimal | - | a decimal
# example: cmokg query typed
"""


def test_defaults_and_types_become_typed_literals(tmp_path: Path) -> None:
    write_query(tmp_path, "typed", TYPED_HEADER)
    query = load_catalog(tmp_path)["typed"]
    xsd = "http://www.w3.org/2001/XMLSchema#"
    assert bind(query, {}) == {
        ox.Variable("n"): ox.Literal("5", datatype=XSD_INTEGER),
        ox.Variable("d"): ox.Literal("2024-01-31", datatype=ox.NamedNode(xsd + "date")),
        ox.Variable("b"): ox.Literal("true", datatype=ox.NamedNode(xsd + "boolean")),
        ox.Variable("i"): ox.NamedNode("https://example.org/x"),
    }
    bound = bind(query, {"n": "-7", "b": "0", "x": "1.50"})
    assert bound[ox.Variable("n")] == ox.Literal("-7", datatype=XSD_INTEGER)
    assert bound[ox.Variable("b")] == ox.Literal("false", datatype=ox.NamedNode(xsd + "boolean"))
    assert bound[ox.Variable("x")] == ox.Literal("1.50", datatype=ox.NamedNode(xsd + "decimal"))
    for name, bad in [("n", "5.5"), ("d", "2024-02-30"), ("d", "31/01/2024"), ("b", "yes"), ("x", "1e3")]:
        with pytest.raises(ParameterError) as caught:
            bind(query, {name: bad})
        assert caught.value.name == name
    assert run(ox.Store(), query, {}).__class__ is ox.QuerySolutions


BAD_HEADERS = [
    ("# title: T\n# descripton: typo\n# example: cmokg query bad\n", 2, "unknown header key"),
    ("# description: no title\n# example: cmokg query bad\n", 1, "no '# title:'"),
    ("# title: T\n# description: D\n", 1, "no '# example:'"),
    ("# title: T\n# title: again\n# description: D\n# example: x\n", 2, "given twice"),
    ("# title: T\n# description: D\n# param: n | number | - | n\n# example: x\n", 3, "not one of"),
    ("# title: T\n# description: D\n# param: n | integer | five | n\n# example: x\n", 3, "default"),
    ("# title: T\n# description: D\n# param: n | integer | 5\n# example: x\n", 3, "name | type"),
    ("# title: T\n# description: D\n# param: bad-name | string | - | n\n# example: x\n", 3, "variable name"),
    ("# title: T\n# description: D\n# param: zz | string | - | n\n# example: x\n", 3, "not used"),
    ("# title: T\n# description: D\n# example: cmokg query bad --param n=1\n", 3, "unknown parameter"),
    (
        "# title: T\n# description: D\n# param: i | iri | - | i\n# example: x --param i=nope\n",
        4,
        "not an absolute",
    ),
    ("# title: T\n#\n#   orphan continuation\n# description: D\n# example: x\n", 3, "continuation"),
    ("# title: T\n# just some words\n# description: D\n# example: x\n", 2, "expected"),
    ("# title:\n# description: D\n# example: x\n", 1, "no value"),
]


@pytest.mark.parametrize(("header", "line", "reason"), BAD_HEADERS, ids=[b[2] for b in BAD_HEADERS])
def test_bad_header_names_file_and_line(tmp_path: Path, header: str, line: int, reason: str) -> None:
    path = write_query(tmp_path, "bad", header)
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert caught.value.path == path
    assert caught.value.line == line
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("SELECT ?a WHERE { ?a ?p ?n }", "SELECT projection"),
        ("SELECT ?a ?n WHERE { ?a ?p ?o FILTER(!BOUND(?n) || ?o = ?n) }", "COALESCE"),
        ("SELECT ?a ?n WHERE { ?a ?p ?o BIND(?n AS ?m) FILTER(?o = ?m) }", "COALESCE"),
    ],
)
def test_parameter_the_substitution_would_miss_is_refused(tmp_path: Path, body: str, reason: str) -> None:
    header = "# title: T\n# description: D\n# param: n | string | - | n\n# example: cmokg query bad\n"
    write_query(tmp_path, "bad", header, body)
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert caught.value.line == 3
    assert reason in caught.value.reason


def test_qc_queries_take_no_parameters(tmp_path: Path) -> None:
    (tmp_path / "qc").mkdir()
    path = tmp_path / "qc" / "x-violation.rq"
    path.write_text(
        "# title: T\n# description: D\n# param: n | string | - | n\nSELECT ?focus ?message ?n {}\n"
    )
    with pytest.raises(CatalogError) as caught:
        load_qc(tmp_path)
    assert (caught.value.path, caught.value.line) == (path, 3)


# --- quality checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", QC.values(), ids=lambda q: q.name)
def test_qc_query_passes_on_fixture(query: NamedQuery, catalog_store: ox.Store) -> None:
    result = run(catalog_store, query)
    assert isinstance(result, ox.QuerySolutions)
    assert [v.value for v in result.variables] == ["focus", "message"]
    found = rows(result)
    assert found == [], [row["message"].value for row in found]


def remove(store: ox.Store, subject: ox.NamedNode, predicate: ox.NamedNode) -> None:
    quads = list(store.quads_for_pattern(subject, predicate, None, None))
    assert quads, f"nothing to remove for {subject} {predicate}"
    for quad in quads:
        store.remove(quad)


def add(
    store: ox.Store, s: ox.NamedNode, p: ox.NamedNode, o: ox.NamedNode | ox.Literal, g: ox.NamedNode = BATCH
) -> None:
    store.add(ox.Quad(s, p, o, g))


def replace_source(store: ox.Store) -> None:
    remove(store, iri("evidence/e1/target"), ox.NamedNode(OA + "hasSource"))
    add(store, iri("evidence/e1/target"), ox.NamedNode(OA + "hasSource"), iri("source/never-described"))


def orphan_resource(store: ox.Store) -> None:
    concept = iri("concept/framework/floating")
    add(store, concept, RDF_TYPE, cmo("FrameworkResource"), VOCAB)
    add(store, concept, ox.NamedNode(SKOS + "prefLabel"), ox.Literal("floating", language="en"), VOCAB)


def duplicate_doi(store: ox.Store) -> None:
    add(store, iri("source/calderon2021-again"), RDF_TYPE, cmo("Review"))
    add(store, iri("source/calderon2021-again"), PRISM_DOI, ox.Literal("10.3399/bjgpo.2021.0017"))


BREAKERS: dict[str, tuple[Callable[[ox.Store], None], str]] = {
    "cmoc-without-context-violation": (lambda s: remove(s, iri("cmoc/t1"), cmo("hasContext")), "cmoc/t1"),
    "cmoc-without-outcome-violation": (
        lambda s: remove(s, iri("cmoc/t2/outcome"), cmo("description")),
        "cmoc/t2",
    ),
    "cmoc-without-mechanism-part-violation": (
        lambda s: remove(s, iri("cmoc/t3/mechanism"), cmo("hasReasoning")),
        "cmoc/t3",
    ),
    "cmoc-without-source-violation": (lambda s: remove(s, iri("cmoc/w1"), cmo("statedIn")), "cmoc/w1"),
    "evidence-without-quote-violation": (
        lambda s: remove(s, iri("evidence/e1/quote"), ox.NamedNode(OA + "exact")),
        "evidence/e1",
    ),
    "evidence-quote-source-missing-violation": (replace_source, "evidence/e1"),
    "evidence-without-relation-violation": (
        lambda s: remove(s, iri("evidence/e4"), cmo("supports")),
        "evidence/e4",
    ),
    "leadsto-self-loop-violation": (
        lambda s: add(s, iri("cmoc/t3"), cmo("leadsTo"), iri("cmoc/t3")),
        "cmoc/t3",
    ),
    "leadsto-target-not-cmoc-violation": (
        lambda s: add(s, iri("cmoc/t3"), cmo("leadsTo"), iri("cmoc/never-imported")),
        "cmoc/t3",
    ),
    "framework-resource-without-dimension-violation": (orphan_resource, "concept/framework/floating"),
    "concept-without-preflabel-violation": (
        lambda s: remove(s, iri("concept/setting/general-practice"), ox.NamedNode(SKOS + "prefLabel")),
        "concept/setting/general-practice",
    ),
    "concept-reference-wrong-type-violation": (
        lambda s: add(s, iri("cmoc/t1"), cmo("drawsOn"), iri("concept/setting/general-practice")),
        "cmoc/t1",
    ),
    "source-without-identifier-violation": (
        lambda s: remove(s, iri("source/linkworkers2023"), PRISM_DOI),
        "source/linkworkers2023",
    ),
    "duplicate-doi-violation": (duplicate_doi, "source/calderon2021-again"),
    "batch-without-provenance-violation": (
        lambda s: add(s, iri("cmoc/t1"), cmo("statement"), ox.Literal("x"), iri("batch/ffffffffffffffff")),
        "batch/ffffffffffffffff",
    ),
}


def test_every_qc_query_has_a_breaker() -> None:
    assert set(BREAKERS) == set(QC)


@pytest.mark.parametrize("query", QC.values(), ids=lambda q: q.name)
def test_qc_query_fails_on_broken_fixture(query: NamedQuery) -> None:
    store = load_mini()
    breaker, focus = BREAKERS[query.name]
    breaker(store)
    found = rows(run(store, query))
    assert found, f"{query.name} did not notice the break"
    assert iri(focus) in {row["focus"] for row in found}
    assert all(isinstance(row.get("message"), ox.Literal) and row["message"].value for row in found)


# --- the real built graph -----------------------------------------------------------------------------


def seed_store_or_skip(request: pytest.FixtureRequest) -> ox.Store:
    try:
        store = request.getfixturevalue("seed_store")
    except pytest.FixtureLookupError:
        pytest.skip("seed_store fixture not available")
    assert isinstance(store, ox.Store)
    return store


@pytest.mark.parametrize("query", CATALOG.values(), ids=lambda q: q.name)
def test_catalog_query_on_seed_graph(query: NamedQuery, request: pytest.FixtureRequest) -> None:
    store = seed_store_or_skip(request)
    found = run_rows(store, query, dict(query.example_values))
    assert len(frozen(found)) == len(set(frozen(found))), "duplicate rows"
    if query.name in SEED_NONEMPTY:
        assert found, f"{query.name} returned no rows on the seed graph"


@pytest.mark.parametrize("query", QC.values(), ids=lambda q: q.name)
def test_qc_query_on_seed_graph(query: NamedQuery, request: pytest.FixtureRequest) -> None:
    store = seed_store_or_skip(request)
    found = run_rows(store, query)
    assert found == [], [row["message"].value for row in found[:20]]


# --- the new catalog queries on the seed graph, checked against the triples themselves -----------------


def objects(store: ox.Store, subject: ox.NamedNode, predicate: ox.NamedNode) -> set[ox.NamedNode | ox.Literal]:
    return {q.object for q in store.quads_for_pattern(subject, predicate, None, None)}


def subjects(store: ox.Store, predicate: ox.NamedNode, obj: ox.NamedNode) -> set[ox.NamedNode]:
    return {q.subject for q in store.quads_for_pattern(None, predicate, obj, None)}


def instances(store: ox.Store, cls: ox.NamedNode, graph: ox.NamedNode | None = None) -> set[ox.NamedNode]:
    return {q.subject for q in store.quads_for_pattern(None, RDF_TYPE, cls, graph)}


SKOS_BROADER = ox.NamedNode(SKOS + "broader")
SKOS_NARROWER = ox.NamedNode(SKOS + "narrower")
SKOS_PREF = ox.NamedNode(SKOS + "prefLabel")
CITES = ox.NamedNode("http://purl.org/spar/cito/cites")
RDFS_LABEL = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")


def dimension_of(store: ox.Store, resource: ox.NamedNode) -> set[ox.NamedNode]:
    return objects(store, resource, SKOS_BROADER) | subjects(store, SKOS_NARROWER, resource)


def test_setting_dimension_comparison_on_seed_graph(request: pytest.FixtureRequest) -> None:
    store = seed_store_or_skip(request)
    query = CATALOG["setting-dimension-comparison"]
    found = run_rows(store, query, dict(query.example_values))
    setting = iri("concept/setting/link-workers")
    dimension = ox.NamedNode(query.example_values["dimension"])
    expected: dict[ox.NamedNode, set[str]] = {}
    for cmoc in subjects(store, cmo("inSetting"), setting):
        for resource in objects(store, cmoc, cmo("drawsOn")):
            if dimension in dimension_of(store, resource):
                label = next(iter(objects(store, resource, SKOS_PREF)))
                expected.setdefault(cmoc, set()).add(label.value)
    assert len(expected) >= 5
    assert {r["cmoc"]: set(r["resources"].value.split(", ")) for r in found} == expected
    assert len(found) == len(expected)
    for row in found:
        assert row["settingConcept"] == setting and row["dimension"] == dimension
        assert int(row["supportingFragments"].value) == len(subjects(store, cmo("supports"), row["cmoc"]))
    documents = {row["document"] for row in found}
    assert len(documents) >= 3, "side by side across reviews"


def normalised(text: str) -> str:
    return re.sub(r"^ | ?\.? ?$", "", re.sub(r"\s+", " ", text).lower())


def test_shared_mechanisms_on_seed_graph(request: pytest.FixtureRequest) -> None:
    store = seed_store_or_skip(request)
    found = run_rows(store, CATALOG["shared-mechanisms"], {"min": "3"})
    documents: dict[object, set[object]] = {}
    for resource in instances(store, cmo("FrameworkResource")):
        for cmoc in subjects(store, cmo("drawsOn"), resource):
            documents.setdefault(("framework resource", resource), set()).update(
                objects(store, cmoc, cmo("statedIn"))
            )
    for part, kind in ((cmo("hasResource"), "resource wording"), (cmo("hasReasoning"), "reasoning wording")):
        for quad in store.quads_for_pattern(None, part, None, None):
            [cmoc] = subjects(store, cmo("hasMechanism"), quad.subject)
            for text in objects(store, quad.object, cmo("description")):
                documents.setdefault((kind, normalised(text.value)), set()).update(
                    objects(store, cmoc, cmo("statedIn"))
                )
    expected = {key: len(docs) for key, docs in documents.items() if len(docs) >= 3}
    got = {
        (r["kind"].value, r["mechanism"] if "mechanism" in r else r["label"].value): int(r["documents"].value)
        for r in found
    }
    assert got == expected
    assert len(got) >= 5
    counts = [int(r["documents"].value) for r in found]
    assert counts == sorted(counts, reverse=True)


def test_weak_evidence_cmocs_on_seed_graph(request: pytest.FixtureRequest) -> None:
    store = seed_store_or_skip(request)
    found = run_rows(store, CATALOG["weak-evidence-cmocs"])
    reviewer, low = iri("concept/level/reviewer"), iri("concept/appraisal/low")
    expected = {}
    for cmoc in instances(store, cmo("CMOConfiguration")):
        fragments = subjects(store, cmo("supports"), cmoc)
        if not fragments:
            continue
        by_reviewer = all(reviewer in objects(store, e, cmo("interpretiveLevel")) for e in fragments)
        by_low = all(low in objects(store, e, cmo("rigour")) for e in fragments)
        if by_reviewer or by_low:
            basis = {(True, True): "reviewer inference and low rigour only", (True, False): "reviewer inference only",
                     (False, True): "low rigour only"}[(by_reviewer, by_low)]
            expected[cmoc] = basis
    assert {r["cmoc"]: r["basis"].value for r in found} == expected
    assert "low rigour only" in expected.values() and "reviewer inference only" in expected.values()


def test_cited_sources_with_evidence_on_seed_graph(request: pytest.FixtureRequest) -> None:
    store = seed_store_or_skip(request)
    query = CATALOG["cited-sources-with-evidence"]
    found = run_rows(store, query)  # the default: the link workers' perspectives study
    citing = iri("source/griffiths2023")
    assert "Link Workers" in next(iter(objects(store, citing, ox.NamedNode("http://purl.org/dc/terms/title")))).value
    has_source, has_target = ox.NamedNode(OA + "hasSource"), ox.NamedNode(OA + "hasTarget")
    expected = {}
    for cited in objects(store, citing, CITES):
        fragments = {
            e
            for target in subjects(store, has_source, cited)
            for e in subjects(store, has_target, target)
            if objects(store, e, cmo("supports")) | objects(store, e, cmo("refutes"))
        }
        if fragments:
            expected[cited] = len(fragments)
    assert {r["cited"]: int(r["fragments"].value) for r in found} == expected
    assert len(expected) >= 3
    assert all(r["citing"] == citing for r in found)


def test_programme_theory_cmocs_on_seed_graph(request: pytest.FixtureRequest) -> None:
    store = seed_store_or_skip(request)
    found = run_rows(store, CATALOG["programme-theory-cmocs"], {"theory": "Engagement"})
    theories = {
        t for t in instances(store, cmo("ProgrammeTheory"))
        if any(label.value.lower() == "engagement" for label in objects(store, t, RDFS_LABEL))
    }
    assert len(theories) >= 2
    expected = {(t, c) for t in theories for c in subjects(store, cmo("refines"), t)}
    assert {(r["theoryNode"], r["cmoc"]) for r in found} == expected


def test_batch_changes_on_seed_graph(request: pytest.FixtureRequest) -> None:
    store = seed_store_or_skip(request)
    kinds = {cmo("CMOConfiguration"): "CMOC", cmo("Review"): "source", cmo("Study"): "source",
             cmo("GreyLiterature"): "source", cmo("EvidenceFragment"): "evidence"}
    batches = instances(store, cmo("ImportBatch"))
    assert len(batches) == 13
    for batch in batches:
        found = run_rows(store, CATALOG["batch-changes"], {"batch": batch.value})
        expected = {(kind, node) for cls, kind in kinds.items() for node in instances(store, cls, batch)}
        assert {(r["kind"].value, r["node"]) for r in found} == expected
        assert {r["change"].value for r in found} == {"new"}


# --- batch-changes on a revised workbook ---------------------------------------------------------------


def revise(folder: Path) -> None:
    """Correct fx-e1's quote, drop fx-e3, add fx-e4."""
    evidence = folder / "evidence.csv"
    lines = evidence.read_text(encoding="utf-8").splitlines()
    lines = [line.replace("Training made conversations feel natural.", "Training made talking feel natural.")
             for line in lines if not line.startswith("fx-e3,")]
    lines.append("fx-e4,fx-c1,fx-review,Link workers who were trained felt confident.,6,Results,supports,author,,")
    evidence.write_text("\n".join(lines) + "\n", encoding="utf-8")


def changes(store: EvidenceStore, batch: str) -> set[tuple[str, str, str]]:
    """The (change, kind, node) rows, the same whether the batch is bound as a term (the embedded store) or as
    a VALUES block at the top of the query (what remote stores and the SPARQL endpoint are sent)."""
    query = CATALOG["batch-changes"]
    found = run_rows(store.ox, query, {"batch": batch})
    as_values = rows(store.ox.query(inject_values(query.text, bind(query, {"batch": batch})),
                                    use_default_graph_as_union=True))

    def key(row: Row) -> tuple[object, ...]:  # GROUP_CONCAT's order is not fixed
        return tuple(sorted((name, frozenset(term.value.split(" | ")) if name == "labels" else term)
                            for name, term in row.items()))

    assert Counter(map(key, as_values)) == Counter(map(key, found))
    return {(r["change"].value, r["kind"].value, r["node"].value.rsplit("/", 1)[-1]) for r in found}


def test_batch_changes_of_a_revision(schema_store: EvidenceStore, tmp_path: Path) -> None:
    folder = tmp_path / "extraction"
    shutil.copytree(WORKBOOKS / "good", folder)
    first = import_workbook(schema_store, [folder], reviewer="r")
    assert first.imported and first.batch
    earlier = list(schema_store.ox.quads_for_pattern(None, None, None, ox.NamedNode(first.batch)))
    revise(folder)
    second = import_workbook(schema_store, [folder], reviewer="r")
    assert second.imported and second.batch and second.superseded == [first.batch]

    # the store as an import leaves it: the earlier graph is gone, and the changes are those the revision
    # recorded when it was imported (tests/test_batch_changes.py)
    found = run_rows(schema_store.ox, CATALOG["batch-changes"], {"batch": second.batch})
    [revises] = [r for r in found if r["change"].value == "revises"]
    assert revises["earlier"] == ox.NamedNode(first.batch)
    assert revises["earlierInStore"].value == "false"
    assert changes(schema_store, second.batch) == {
        ("revises", "batch", first.batch.rsplit("/", 1)[-1]),
        ("changed", "evidence", "fx-e1"),
        ("gone", "evidence", "fx-e3"),
        ("new", "evidence", "fx-e4"),
    }

    # with the earlier graph back (say, restored from a dump): the differences themselves
    for quad in earlier:
        schema_store.ox.add(quad)
    assert changes(schema_store, second.batch) == {
        ("revises", "batch", first.batch.rsplit("/", 1)[-1]),
        ("changed", "evidence", "fx-e1"),
        ("gone", "evidence", "fx-e3"),
        ("new", "evidence", "fx-e4"),
    }
    found = run_rows(schema_store.ox, CATALOG["batch-changes"], {"batch": second.batch})
    changed = next(r for r in found if r["change"].value == "changed")
    assert set(changed["labels"].value.split(" | ")) == {
        "Training made conversations feel natural.", "Training made talking feel natural."
    }
    assert next(r for r in found if r["change"].value == "gone")["earlier"] == ox.NamedNode(first.batch)
    assert next(r for r in found if r["change"].value == "revises")["earlierInStore"].value == "true"


def test_batch_changes_against_two_earlier_revisions(schema_store: EvidenceStore, tmp_path: Path) -> None:
    """A batch compared with every earlier revision in the store, not with one revision at a time: fx-e4,
    which the second revision already had, is not "new" for being absent from the first."""
    folder = tmp_path / "extraction"
    shutil.copytree(WORKBOOKS / "good", folder)

    def graph_of(batch: str) -> list[ox.Quad]:
        return list(schema_store.ox.quads_for_pattern(None, None, None, ox.NamedNode(batch)))

    first = import_workbook(schema_store, [folder], reviewer="r")
    assert first.batch
    first_quads = graph_of(first.batch)
    revise(folder)  # fx-e1 corrected, fx-e3 dropped, fx-e4 added
    second = import_workbook(schema_store, [folder], reviewer="r")
    assert second.batch and second.superseded == [first.batch]
    second_quads = graph_of(second.batch)
    schema_store.ox.extend(first_quads)  # both earlier revisions in the store when the third comes
    with (folder / "evidence.csv").open("a", encoding="utf-8") as fh:
        fh.write("fx-e5,fx-c2,fx-review,Link workers came back to the training.,7,Results,supports,author,,\n")
    third = import_workbook(schema_store, [folder], reviewer="r")
    assert third.imported and third.batch and sorted(third.superseded) == sorted([first.batch, second.batch])
    schema_store.ox.extend(first_quads + second_quads)  # and back after it, to compare against

    assert changes(schema_store, third.batch) == {
        ("revises", "batch", first.batch.rsplit("/", 1)[-1]), ("revises", "batch", second.batch.rsplit("/", 1)[-1]),
        ("changed", "evidence", "fx-e1"),  # its quote differs from the first revision's
        ("gone", "evidence", "fx-e3"),  # the first revision had it
        ("new", "evidence", "fx-e5"),
    }
    found = run_rows(schema_store.ox, CATALOG["batch-changes"], {"batch": third.batch})
    assert all(r["earlierInStore"].value == "true" for r in found if r["change"].value == "revises")


# --- paging -------------------------------------------------------------------------------------------


def test_page_validates_limit_and_offset() -> None:
    assert page("100", "200") == Page(100, 200)
    assert page(" 5 ", None) == Page(5, 0)
    assert page(None, "") == Page(None, 0)
    assert page(0, 0) == Page(0, 0)
    bad = [("limit", "-1"), ("limit", "1.5"), ("offset", "ten"), ("offset", "١٢"), ("limit", "10; DROP ALL"),
           ("limit", "1e3"), ("offset", str(MAX_PAGING + 1)), ("limit", "10 OFFSET 5")]
    for name, value in bad:
        with pytest.raises(ParameterError) as caught:
            page(**{name: value})
        assert caught.value.name == name, value


def test_paged_text_appends_integers_only() -> None:
    query = CATALOG["all-cmocs"]
    assert paged_text(query) == paged_text(query, Page()) == query.text
    assert paged_text(query, Page(100, 200)).endswith("ORDER BY ?document ?label ?cmoc\nLIMIT 100\nOFFSET 200\n")
    assert paged_text(query, Page(None, 5)).endswith("\nOFFSET 5\n")


@pytest.mark.parametrize("query", CATALOG.values(), ids=lambda q: q.name)
def test_every_catalog_query_can_be_paged(query: NamedQuery) -> None:
    assert re.search(r"\bORDER\s+BY\b", query.text, re.IGNORECASE), "pages are stable only under ORDER BY"
    result = ox.Store().query(paged_text(query, Page(10, 20)), use_default_graph_as_union=True)
    assert isinstance(result, ox.QuerySolutions)


@pytest.mark.parametrize("query", CATALOG.values(), ids=lambda q: q.name)
def test_pages_add_up_to_the_whole_result(query: NamedQuery, request: pytest.FixtureRequest) -> None:
    store = seed_store_or_skip(request)
    values = dict(query.example_values)
    whole = run_rows(store, query, values)
    size = 7
    pages = [run_rows(store, query, values, Page(size, start)) for start in range(0, len(whole) + size, size)]
    assert all(len(p) == size for p in pages[: len(whole) // size])
    assert frozen([row for p in pages for row in p]) == frozen(whole)


@pytest.mark.parametrize(
    ("header", "body", "line", "reason"),
    [
        ("# param: limit | integer | - | n\n", "SELECT ?limit WHERE { }", 3, "reserved for paging"),
        ("# param: OFFSET | integer | - | n\n", "SELECT ?OFFSET WHERE { }", 3, "reserved for paging"),
        ("", "SELECT ?s WHERE { ?s ?p ?o }\nORDER BY ?s\nLIMIT 10", 6, "LIMIT/OFFSET"),
    ],
)
def test_paging_names_and_own_limits_are_refused(
    tmp_path: Path, header: str, body: str, line: int, reason: str
) -> None:
    write_query(tmp_path, "bad", "# title: T\n# description: D\n" + header + "# example: cmokg query bad\n", body)
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert reason in caught.value.reason
    assert caught.value.line == line
