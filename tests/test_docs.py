"""Docs that cannot drift: the README names every CLI command and every configuration key."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from graph.cli import build_parser
from webapp import CONFIG

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _commands() -> list[str]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_cli_command_is_in_the_readme(command: str) -> None:
    assert f"cmokg {command}" in README


@pytest.mark.parametrize("key", sorted(CONFIG))
def test_every_config_key_is_in_the_readme(key: str) -> None:
    assert f"`{key}`" in README


# -- docs/reference.md: every route, catalog query, CLI command and configuration key ----------------------------

REFERENCE_FILE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def _reference() -> str:
    return REFERENCE_FILE.read_text(encoding="utf-8")


def _rules() -> list[tuple[str, str]]:
    import tempfile

    from graph.store import EvidenceStore
    from webapp import create_app

    with tempfile.TemporaryDirectory() as tmp:
        store = EvidenceStore(Path(tmp) / "store")
        app = create_app({"CMOKG_STORE_OBJECT": store})
        rules = [(r.rule, r.endpoint) for r in app.url_map.iter_rules()]
        views = {endpoint: app.view_functions[endpoint] for _, endpoint in rules}
        store.close()
    return [(rule, endpoint) for rule, endpoint in rules if endpoint != "static" and views[endpoint].__doc__ is None] \
        + [(rule, "") for rule, endpoint in rules if endpoint == "static" or views[endpoint].__doc__ is not None]


@pytest.mark.parametrize(("rule", "undocumented"), sorted(_rules()))
def test_every_route_is_in_the_reference_with_a_description(rule: str, undocumented: str) -> None:
    assert f"`{rule}`" in _reference(), "run `make reference`"
    assert not undocumented, f"the view {undocumented} of {rule} has no docstring for the reference"


def test_every_catalog_query_is_in_the_reference() -> None:
    from graph.catalog import load_catalog

    missing = [name for name in load_catalog() if f"| `{name}` |" not in _reference()]
    assert not missing, f"run `make reference`; missing: {missing}"


@pytest.mark.parametrize("command", _commands())
def test_every_cli_command_is_in_the_reference(command: str) -> None:
    assert f"`cmokg {command}`" in _reference(), "run `make reference`"


@pytest.mark.parametrize("key", sorted(CONFIG))
def test_every_config_key_is_in_the_reference(key: str) -> None:
    assert f"| `{key}` |" in _reference(), "run `make reference`"


def test_readme_points_to_the_reference() -> None:
    assert "docs/reference.md" in README
