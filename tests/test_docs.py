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
