"""Hostile parameter values reach no query text: through graph.catalog, `cmokg query --param` and /queries.

Each value either binds as a literal of the parameter's type (the result is the one the same value gives
when substituted by hand as a proper RDF term) or is refused naming the parameter (ParameterError, exit 2,
HTTP 400). The store's quad count is the same afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from flask.testing import FlaskClient

from graph.catalog import NamedQuery, ParameterError, bind, convert, load_catalog, run
from graph.pipeline import build
from graph.store import EvidenceStore
from webapp import create_app

CATALOG = load_catalog()
CMOKG = str(Path(sys.executable).with_name("cmokg"))
HOSTILE = [
    '" } ; DROP ALL ; #',
    'x" . ?s ?p ?o',
    "> <http://evil>",
    "x' } UNION { ?s ?p ?o } #",
    "trust\n} ; CLEAR ALL ; {",
    "trust\r\n#",
    "ünïcödé \u202e\u200b 🚀 trust",
    "nul\x00byte",
    "it's",
    'back\\slash \\" }',
    "\\u0022 } ; DROP ALL ; #",
    "http://example.org/a'b",
    "urn:x:%22%7D",
    "trust",
]
TARGETS = [
    ("mechanism-keyword", "keyword"),  # string, in a FILTER
    ("contexts-for-mechanism-outcome", "outcome"),  # string, in a COALESCE filter
    ("setting-dimension-comparison", "setting"),  # string, compared with an IRI's text and a label
    ("programme-theory-cmocs", "theory"),  # string
    ("evidence-trail", "cmoc"),  # iri, required
    ("batch-changes", "batch"),  # iri inside GRAPH
    ("shared-mechanisms", "min"),  # integer
]
CLI_TARGETS = [("mechanism-keyword", "keyword"), ("evidence-trail", "cmoc"), ("shared-mechanisms", "min")]
Rows = list[frozenset[tuple[str, object]]]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EvidenceStore]:
    """A writable copy of the seed graph: a value that could write would show in its quad count."""
    path = tmp_path_factory.mktemp("injection") / "store"
    assert all(r.imported for r in build(path))
    opened = EvidenceStore(path)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def client(store: EvidenceStore) -> FlaskClient:
    app = create_app({"TESTING": True, "CMOKG_STORE_OBJECT": store, "CMOKG_QUERY_WORKERS": 0,
                      "CMOKG_UPDATE_TOKEN": "secret"})
    return app.test_client()


def solutions(result: object) -> Rows:
    assert isinstance(result, ox.QuerySolutions)
    names = [v.value for v in result.variables]
    return sorted((frozenset((n, s[n]) for n in names if s[n] is not None) for s in result), key=sorted)


def by_hand(store: ox.Store, query: NamedQuery, name: str, value: str) -> Rows | None:
    """The result with the value substituted as a proper term of the parameter's type, the other parameters
    at their example values; None when the value is not a term of that type."""
    terms: dict[ox.Variable, ox.NamedNode | ox.Literal] = {}
    for other in query.parameters:
        raw = query.example_values.get(other.name, other.default)
        if other.name != name and raw is not None:
            terms[ox.Variable(other.name)] = convert(other, raw)
    kind = query.parameter(name).type
    if kind == "string":
        term: ox.NamedNode | ox.Literal = ox.Literal(value)
    elif kind == "iri":
        try:
            term = ox.NamedNode(value)
        except ValueError:
            return None
        if any(c in value for c in ' <>"{}|^`\\') or any(ord(c) < 0x21 for c in value) or ":" not in value:
            return None
    else:
        return None
    terms[ox.Variable(name)] = term
    return solutions(store.query(query.text, substitutions=terms, use_default_graph_as_union=True))


CASES = [(q, n, v) for q, n in TARGETS for v in HOSTILE]


def case_id(case: object) -> str:
    return repr(case)[:40]


@pytest.mark.parametrize(("name", "param", "value"), CASES, ids=case_id)
def test_library_binds_a_literal_or_refuses(store: EvidenceStore, name: str, param: str, value: str) -> None:
    query = CATALOG[name]
    before = store.quad_count()
    values = {**query.example_values, param: value}
    expected = by_hand(store.ox, query, param, value)
    try:
        got = solutions(run(store.ox, query, values))
    except ParameterError as exc:
        assert exc.name == param
        assert expected is None, f"{value!r} is a proper {query.parameter(param).type} but was refused"
    else:
        assert expected is not None, f"{value!r} is not a proper {query.parameter(param).type} but was bound"
        assert got == expected
        assert all(dict(row).get(param) == bind(query, values)[ox.Variable(param)] for row in got)
    assert store.quad_count() == before


def test_a_benign_value_does_find_rows(store: EvidenceStore) -> None:
    """The harness is not vacuous: the plain word among the hostile values matches CMOCs."""
    assert solutions(run(store.ox, CATALOG["mechanism-keyword"], {"keyword": "trust"}))
    assert by_hand(store.ox, CATALOG["mechanism-keyword"], "keyword", "trust")


@pytest.mark.parametrize(("name", "param", "value"), CASES, ids=case_id)
def test_web_binds_a_literal_or_refuses(
    client: FlaskClient, store: EvidenceStore, name: str, param: str, value: str
) -> None:
    query = CATALOG[name]
    before = store.quad_count()
    values = {**query.example_values, param: value}
    r = client.get(f"/queries/{name}", query_string=values, headers={"Accept": "application/sparql-results+json"})
    expected = by_hand(store.ox, query, param, value)
    if r.status_code == 400:
        assert f"parameter '{param}'" in r.data.decode("utf-8")
        assert expected is None
    else:
        assert r.status_code == 200, r.data
        assert expected is not None
        assert solutions(ox.parse_query_results(r.data, ox.QueryResultsFormat.JSON)) == expected
    assert store.quad_count() == before


@pytest.mark.parametrize("value", HOSTILE, ids=case_id)
def test_web_paging_refuses_anything_but_a_number(client: FlaskClient, store: EvidenceStore, value: str) -> None:
    before = store.quad_count()
    for name in ("limit", "offset"):
        r = client.get("/queries/all-cmocs", query_string={name: value, "format": "json"})
        assert r.status_code == 400 and f"parameter '{name}'" in r.data.decode("utf-8")
    assert store.quad_count() == before


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("injection-cli") / "store"
    assert all(r.imported for r in build(path))
    return path


def quad_count(path: Path) -> int:
    opened = EvidenceStore(path, read_only=True)
    try:
        return opened.quad_count()
    finally:
        opened.close()


CLI_CASES = [(q, n, v) for q, n in CLI_TARGETS for v in HOSTILE]


@pytest.mark.parametrize(("name", "param", "value"), CLI_CASES, ids=case_id)
def test_cli_binds_a_literal_or_refuses(cli_store: Path, name: str, param: str, value: str) -> None:
    if "\x00" in value:
        with pytest.raises(ValueError, match="null byte"):
            subprocess.run([CMOKG, "query", name, "--param", f"{param}={value}"], check=False)
        pytest.skip("an argument cannot hold NUL: the OS refuses it before cmokg runs")
    query = CATALOG[name]
    before = quad_count(cli_store)
    args = [CMOKG, "query", name, "--store", str(cli_store), "--format", "json"]
    for k, v in {**query.example_values, param: value}.items():
        args += ["--param", f"{k}={v}"]
    done = subprocess.run(args, capture_output=True, timeout=60, check=False)
    opened = EvidenceStore(cli_store, read_only=True)
    try:
        expected = by_hand(opened.ox, query, param, value)
    finally:
        opened.close()
    if done.returncode == 2:
        assert f"parameter '{param}'" in done.stderr.decode("utf-8"), done.stderr
        assert expected is None
    else:
        assert done.returncode == 0, done.stderr
        assert expected is not None
        assert solutions(ox.parse_query_results(done.stdout, ox.QueryResultsFormat.JSON)) == expected
    assert quad_count(cli_store) == before


def test_cli_paging_refuses_text(cli_store: Path) -> None:
    done = subprocess.run([CMOKG, "query", "all-cmocs", "--store", str(cli_store), "--limit", "5; DROP ALL"],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "parameter 'limit'" in done.stderr.decode("utf-8")
    done = subprocess.run([CMOKG, "query", "all-cmocs", "--store", str(cli_store), "--limit", "5", "--offset", "3",
                           "--format", "json"], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0
    assert len(json.loads(done.stdout)["results"]["bindings"]) == 5
