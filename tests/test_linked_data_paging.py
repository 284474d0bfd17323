"""Resource pages whose lists grow with the graph page them: the CMOCs drawing on a concept (or in a setting),
the fragments an interpretive level or appraisal level is given to, the resources linking to anything else. At
the benchmark's 100k CMOCs a framework resource listed its 25k CMOCs on one page (6.6 MB, 4 s), an appraisal
level showed 200 of its 170k fragments with no link to the others (35 s), and an agent 500 of the 100k CMOCs it
extracted (17 s). Each list now shows a page of PAGE_SIZE and a pager; following the pager reaches every item
once, in IRI order, checked against the store's triples.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from test_browse import ID, Element, pairs, parse_html, path_of

from graph.store import EvidenceStore
from webapp import linkeddata


def page(client: FlaskClient, url: str, status: int = 200) -> Element:
    r = client.get(url, headers={"Accept": "text/html"})
    assert r.status_code == status, (url, r.status_code, r.get_data(as_text=True)[:500])
    assert r.mimetype == "text/html"
    return parse_html(r.get_data(as_text=True))


def _iri(href: str) -> str:
    assert href.startswith("/id/"), href
    return ID + href.removeprefix("/id/")


def _walk(client: FlaskClient, path: str, rows: Callable[[Element], list[str]],
          total_id: str) -> tuple[list[str], int, int]:
    """Items listed on the pages of `path` (following rel=next), the total the pages state, and the pages."""
    listed: list[str] = []
    totals: set[int] = set()
    url: str | None = path
    pages = 0
    while url is not None:
        doc = page(client, url)
        pages += 1
        listed += rows(doc)
        totals |= {int(el.attrs["data-total"]) for el in doc.find_all(id=total_id)}
        nxt = doc.find_all("a", rel="next")
        url = nxt[0].attrs["href"] if nxt else None
        assert pages < 100
    assert len(totals) == 1, totals
    return listed, totals.pop(), pages


def _cmocs(doc: Element) -> list[str]:
    return [_iri(li.find_all("a")[0].attrs["href"]) for li in doc.one("ul", id="cmocs").find_all("li")]


def _most_used(used: set[tuple[str, ...]]) -> tuple[str, set[str]]:
    """The concept (first of each pair) with the most distinct users (second), and those users."""
    by_concept: dict[str, set[str]] = {}
    for concept, user in used:
        by_concept.setdefault(concept, set()).add(user)
    return max(by_concept.items(), key=lambda kv: (len(kv[1]), kv[0]))


def test_a_concept_with_more_cmocs_than_a_page_pages_them(client: FlaskClient, seed_evidence_store: EvidenceStore,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linkeddata, "PAGE_SIZE", 3)
    concept, cmocs = _most_used(pairs(seed_evidence_store, "?c cmo:drawsOn|cmo:inSetting ?k", "k", "c"))
    assert len(cmocs) > 6
    first = page(client, path_of(concept))
    assert len(_cmocs(first)) == 3
    [nxt] = first.find_all("a", rel="next")
    assert nxt.attrs["href"] == path_of(concept) + "?page=2"
    listed, total, pages = _walk(client, path_of(concept), _cmocs, "cmocs-total")
    assert listed == sorted(cmocs) and total == len(cmocs) and pages == -(-len(cmocs) // 3)
    past = page(client, f"{path_of(concept)}?page={pages + 1}", 400)
    assert past.one(id="message").text == f"page: there is no page {pages + 1}; the last page is {pages}"
    assert "page:" in page(client, path_of(concept) + "?page=0", 400).one(id="message").text


def test_a_level_with_more_fragments_than_a_page_pages_them(client: FlaskClient,
                                                            seed_evidence_store: EvidenceStore,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linkeddata, "PAGE_SIZE", 4)
    concept, fragments = _most_used(
        pairs(seed_evidence_store, "?e cmo:interpretiveLevel|cmo:relevance|cmo:rigour ?k", "k", "e"))
    assert len(fragments) > 8
    bears = dict(pairs(seed_evidence_store, "?e cmo:supports|cmo:refutes ?c", "e", "c"))

    def fragments_on(doc: Element) -> list[str]:
        found = []
        for div in doc.find_all("div", class_="evidence"):
            e, c = (a.attrs["href"] for a in div.find_all("a"))
            found.append(_iri(e))
            assert c == path_of(bears[found[-1]])
        return found

    listed, total, _ = _walk(client, path_of(concept), fragments_on, "evidence-total")
    assert listed == sorted(fragments) and total == len(fragments)


def test_a_resource_linked_from_more_than_a_page_pages_the_links(client: FlaskClient,
                                                                 seed_evidence_store: EvidenceStore,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent (a generic page): every (resource, property) linking to it, a page at a time."""
    monkeypatch.setattr(linkeddata, "PAGE_SIZE", 2)
    agents = pairs(seed_evidence_store, "?c cmo:extractedBy ?a", "a", "c")
    by_agent: dict[str, set[str]] = {}
    for a, c in agents:
        by_agent.setdefault(a, set()).add(c)
    agent = max(by_agent, key=lambda a: (len(by_agent[a]), a))
    incoming = pairs(seed_evidence_store, f"?s ?p <{agent}>", "s", "p")
    assert len(incoming) > 4

    def links(doc: Element) -> list[str]:
        return [a.attrs["href"] for row in doc.one("table", id="incoming").find_all("tr")[1:]
                for a in row.find_all("a")[:1]]

    listed, total, _ = _walk(client, path_of(agent), links, "incoming-total")
    assert total == len(incoming)
    assert listed == [path_of(s) for _, s in sorted((p, s) for s, p in incoming)]
