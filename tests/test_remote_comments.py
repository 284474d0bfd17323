"""Regression: SPARQLWrapper guessed a SELECT to be an update when a header comment held "added" or "describes".

graph.remote.strip_comments removes comments (never a '#' inside a string or an IRI) before SPARQLWrapper sees
the text, so the query form it picks is the query's own.
"""

from __future__ import annotations

import pyoxigraph as ox
import pytest
from SPARQLWrapper import SPARQLWrapper

from graph.catalog import load_catalog, load_qc
from graph.remote import strip_comments

TRAP = '''# title: what a batch added
# description: describes what was added, inserted, loaded
PREFIX ex: <http://example.org/a#b>
SELECT ?s ?label WHERE {  # a comment after a brace
  ?s ex:p "# not a comment" ; <http://example.org/x#y> ?label .
  FILTER(?label != """a long # string
  with "quotes" """ && 1 < 2)  # a comment after a comparison
}'''


def _form(text: str) -> str:
    sw = SPARQLWrapper("http://127.0.0.1:1/sparql")
    sw.setQuery(text)
    return str(sw.queryType)


def test_a_header_no_longer_turns_a_select_into_an_update() -> None:
    assert _form(strip_comments(TRAP)) == "SELECT"


def test_strings_and_iris_keep_their_hash() -> None:
    store = ox.Store()
    ex = "http://example.org/a#b"
    store.add(ox.Quad(ox.NamedNode("http://s"), ox.NamedNode(ex + "p"), ox.Literal("# not a comment")))
    store.add(ox.Quad(ox.NamedNode("http://s"), ox.NamedNode("http://example.org/x#y"), ox.Literal("L")))
    stripped = strip_comments(TRAP)
    assert "# a comment" not in stripped
    rows = [(r["s"], r["label"]) for r in store.query(stripped)]  # type: ignore[union-attr]
    assert rows == [(ox.NamedNode("http://s"), ox.Literal("L"))]


@pytest.mark.parametrize("query", [*load_catalog().values(), *load_qc().values()], ids=lambda q: q.name)
def test_every_named_query_is_sent_as_what_it_is(query: object) -> None:
    text = query.text  # type: ignore[attr-defined]
    body = strip_comments(text)
    expected = "ASK" if " ASK" in f" {body.upper()}" and "SELECT" not in body.upper() else "SELECT"
    assert _form(body) == expected
