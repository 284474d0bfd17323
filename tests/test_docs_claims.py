"""The documentation as a contract: what README.md and docs/*.md state is what the code does.

tests/test_docs.py checks that every command, key, route and query is *named*; these check what is *said*
about them: the reference is exactly what `make reference` writes, the README's configuration table has the
code's defaults, the numbers the README quotes are what `cmokg build` prints, the example finding is what
`cmokg validate` reports, every route and CLI flag the docs use exists, and the workbook contract lists the
template's columns.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest
from flask.testing import FlaskClient

from graph.catalog import load_catalog
from graph.cli import build_parser
from graph.workbook import ONE_OF_COLUMNS, REQUIRED_COLUMNS, SHEETS
from webapp import CONFIG

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "model.md"}
CMOKG = str(Path(sys.executable).with_name("cmokg"))
FIXTURES = ROOT / "tests" / "fixtures" / "workbooks"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CMOKG, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


# -- docs/reference.md is exactly what docs/make_reference.py writes ------------------------------------------------

def _make_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_reference", ROOT / "docs" / "make_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_is_what_make_reference_writes(tmp_path: Path) -> None:
    """Descriptions and defaults too, not only the names (a changed default or docstring left it stale)."""
    expected = _make_reference().render(tmp_path / "store")
    actual = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/reference.md is stale: run `make reference`"


# -- README: the configuration table ------------------------------------------------------------------------------

def test_readme_configuration_table_has_the_codes_defaults_and_meanings() -> None:
    rows = {key: (default, meaning) for key, default, meaning
            in re.findall(r"^\| `([A-Z_]+)` \| `(.*?)` \| (.*) \|$", README, re.M)}
    assert sorted(rows) == sorted(CONFIG)
    for key, (default, meaning) in CONFIG.items():
        assert rows[key][0] == repr(default), key
        assert rows[key][1] == meaning.replace("|", "\\|"), key


# -- README: the numbers of the seed graph and the example outputs --------------------------------------------------

def _counts(line: str) -> dict[str, int]:
    return {what: int(n) for n, what in re.findall(r"(\d+) ([a-z]+)", line.split(":", 1)[1])}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The seed graph built by `cmokg build` as the README runs it, and what the command printed."""
    store = tmp_path_factory.mktemp("readme") / "store"
    proc = _run("build", "--store", str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return store, proc.stdout


def test_readme_build_output_is_what_cmokg_build_prints(built: tuple[Path, str]) -> None:
    [documented] = re.findall(r"^\s*# (built var/store: .*)$", README, re.M)
    [printed] = [line for line in built[1].splitlines() if line.startswith("built ")]
    assert _counts(documented) == _counts(printed)


def test_readme_introduction_counts_are_the_seed_graphs(built: tuple[Path, str]) -> None:
    [printed] = [line for line in built[1].splitlines() if line.startswith("built ")]
    counts = _counts(printed)
    intro = _flat(README.split("## Two commands")[0])
    assert f"holds {counts['sources']} sources" in intro
    assert f"with {counts['cmocs']} CMOCs" in intro
    assert f"{counts['evidence']} verbatim evidence fragments" in intro


def test_readme_validate_example_is_what_cmokg_validate_reports(built: tuple[Path, str]) -> None:
    [command] = re.findall(r"^\s*cmokg validate (tests/fixtures/\S+)$", README, re.M)
    [line] = re.findall(r"^\s*# (Violation │.*)$", README, re.M)
    severity, sheet, row, column, message, value = (cell.strip() for cell in line.split("│"))
    proc = _run("validate", "--store", str(built[0]), "--format", "json", command)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [finding] = json.loads(proc.stdout)["results"]
    assert (finding["severity"], finding["sheet"], finding["row"], finding["column"], finding["value"]) \
        == (severity, sheet, int(row), column, value)
    assert finding["message"] == message


def test_readme_curl_examples_answer_as_described(client: FlaskClient, built: tuple[Path, str]) -> None:
    [query] = re.findall(r"'query=(.*?)'", README)
    response = client.get("/sparql", query_string={"query": query}, headers={"Accept": "*/*"})
    assert response.status_code == 200
    assert response.mimetype == "application/sparql-results+json"
    [printed] = [line for line in built[1].splitlines() if line.startswith("built ")]
    assert int(response.get_json()["results"]["bindings"][0]["n"]["value"]) == _counts(printed)["cmocs"]
    [path] = re.findall(r"curl http://127\.0\.0\.1:8000(/id/\S+\.ttl)", README)
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/turtle"
    assert b"cmo:hasContext" in response.data and b"cmo:supports" in response.data


# -- every route the docs use exists --------------------------------------------------------------------------------

ROUTE = re.compile(r"`(/[^`\s]*)`")


def _documented_paths() -> list[str]:
    paths = set()
    for text in [README, *(t for name, t in DOCS.items() if name != "reference.md")]:
        for path in ROUTE.findall(text) + re.findall(r"(?:127\.0\.0\.1:8000|, )(/[a-z][\w./-]*)", text):
            path = path.split("?")[0].replace("...", "x").replace("…", "x")
            path = re.sub(r"<[^>]+>", "x", path)
            if not path.startswith(("/tmp", "/work", "/dev")):
                paths.add(path)
    return sorted(paths)


@pytest.mark.parametrize("path", _documented_paths())
def test_every_route_the_docs_name_exists(path: str) -> None:
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    from graph.store import EvidenceStore
    from webapp import create_app

    with tempfile.TemporaryDirectory() as tmp:
        store = EvidenceStore(Path(tmp) / "store")
        try:
            adapter = create_app({"CMOKG_STORE_OBJECT": store}).url_map.bind("localhost")
            try:
                adapter.match(path, method="GET")
            except MethodNotAllowed:
                adapter.match(path, method="POST")
            except NotFound:
                if path.endswith("/"):  # a prefix (`/assets/`, `/id/`): some route lies under it
                    adapter.match(path + "x", method="GET")
                else:
                    raise
        finally:
            store.close()


# -- every CLI flag, catalog query and parameter the docs use exists -------------------------------------------------

def _subparsers() -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _code(text: str) -> list[str]:
    """The code the text shows: fenced blocks, line by line, and `inline spans`."""
    blocks = re.findall(r"^\s*```[a-z]*\n(.*?)^\s*```", text, re.M | re.S)
    return [line for block in blocks for line in block.splitlines()] + re.findall(r"`([^`\n]+)`", text)


def _documented_commands() -> list[tuple[str, str]]:
    found = []
    for text in [README, *DOCS.values()]:
        for code in _code(text):
            for command, rest in re.findall(r"(?:^|\s)cmokg ([a-z]+)((?: [^#|)]*)?)", code):
                found.append((command, rest.strip()))
    return sorted(set(found))


@pytest.mark.parametrize(("command", "args"), _documented_commands())
def test_every_cli_flag_the_docs_use_exists(command: str, args: str) -> None:
    parsers = _subparsers()
    assert command in parsers, f"`cmokg {command}` is not a command"
    options = {o for action in parsers[command]._actions for o in action.option_strings}
    for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", args):
        assert flag in options, f"`cmokg {command}` has no {flag}"


def test_every_catalog_query_and_parameter_the_readme_runs_exists() -> None:
    catalog = load_catalog()
    runs = re.findall(r"cmokg query ([a-z-]+)((?: --param [a-z]+=\S+)*)", README)
    assert runs
    for name, params in runs:
        assert name in catalog, name
        for param in re.findall(r"--param ([a-z]+)=", params):
            assert param in {p.name for p in catalog[name].parameters}, (name, param)


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z]+):", makefile, re.M))
    for target in set(re.findall(r"`make ([a-z]+)", README)) | set(re.findall(r"^make ([a-z]+)", README, re.M)):
        assert target in targets, target


# -- docs/extraction-template.md lists the template's columns -------------------------------------------------------

def test_extraction_template_doc_lists_every_column_of_every_sheet_with_what_is_required() -> None:
    text = DOCS["extraction-template.md"]
    for sheet, columns in SHEETS.items():
        section = text.split(f"## sheet `{sheet}`")[1].split("\n## ")[0]
        rows = [r for r in re.findall(r"^\| ([a-z_]+) \| ([^|]*) \|", section, re.M) if r[0] != "column"]
        assert [name for name, _ in rows] == list(columns), sheet
        for name, required in rows:
            if name in REQUIRED_COLUMNS[sheet]:
                assert required.strip() == "yes", (sheet, name)
            elif name in ONE_OF_COLUMNS.get(sheet, ()):
                assert "one of" in required, (sheet, name)
            else:
                assert required.strip() in ("no", "no*"), (sheet, name)
