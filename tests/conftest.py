"""Shared fixtures: a store holding only the ontology and vocabularies, and the built seed graph."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from graph.pipeline import build, load_schema
from graph.store import EvidenceStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def schema_store(tmp_path: Path) -> EvidenceStore:
    """An on-disk store with the ontology and vocabularies and no data."""
    store = EvidenceStore(tmp_path / "store")
    load_schema(store)
    return store


@pytest.fixture(scope="session")
def seed_store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed graph built from data/ exactly as `cmokg build` builds it."""
    path = tmp_path_factory.mktemp("seed") / "store"
    results = build(path)
    bad = [r.report.to_json() for r in results if not r.imported]
    assert not bad, bad
    return path


@pytest.fixture(scope="session")
def seed_evidence_store(seed_store_path: Path) -> Iterator[EvidenceStore]:
    yield EvidenceStore(seed_store_path, read_only=True)


@pytest.fixture(scope="session")
def seed_store(seed_evidence_store: EvidenceStore):
    """The built seed graph as a plain pyoxigraph Store (for catalog and QC query tests)."""
    return seed_evidence_store.ox


# The web app over the seed graph, queries in the request thread (a module may define its own `app` instead).
@pytest.fixture(scope="module")
def app(seed_evidence_store: EvidenceStore) -> Flask:
    from webapp import create_app

    return create_app({"TESTING": True, "CMOKG_STORE_OBJECT": seed_evidence_store, "CMOKG_QUERY_WORKERS": 0})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
