"""The `cmokg` command run as a user runs it: a subprocess of the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
from openpyxl import load_workbook

FIXTURES = Path(__file__).parent / "fixtures" / "workbooks"
CMOKG = str(Path(sys.executable).with_name("cmokg"))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CMOKG, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store built by `cmokg build` from a data folder holding only the good fixture workbook."""
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(FIXTURES / "good", root / "data" / "workbooks" / "01-good")
    proc = run("build", "--store", str(root / "store"), "--data", str(root / "data"))
    assert proc.returncode == 0, proc.stderr
    return root / "store"


def nquads(store: Path) -> set[str]:
    proc = run("export", "--store", str(store), "--format", "nq")
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.splitlines())


def test_build_then_batches_lists_one_batch(fixture_store: Path) -> None:
    proc = run("batches", "--store", str(fixture_store), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    batches = json.loads(proc.stdout)
    assert len(batches) == 1
    assert batches[0]["label"] == "01-good"
    assert len(batches[0]["sha256"]) == 64


def test_validate_good_workbook_exits_0_and_json_has_no_results(fixture_store: Path) -> None:
    proc = run("validate", "--store", str(fixture_store), "--format", "json", str(FIXTURES / "good.xlsx"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["conforms"] is True
    assert report["results"] == []


def test_validate_json_names_sheet_row_column(fixture_store: Path) -> None:
    proc = run("validate", "--store", str(fixture_store), "--format", "json",
               str(FIXTURES / "bad" / "unknown-source-id"))
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["conforms"] is False
    [result] = report["results"]
    assert (result["severity"], result["sheet"], result["row"], result["column"]) == ("Violation", "cmocs", 3,
                                                                                        "source_id")
    assert result["value"] == "nobody2020"
    assert result["focus_node"] == "https://w3id.org/cmokg/id/cmoc/fx-c2"


def test_validate_unreadable_exits_2(fixture_store: Path) -> None:
    proc = run("validate", "--store", str(fixture_store), str(FIXTURES / "bad" / "truncated-xlsx" / "workbook.xlsx"))
    assert proc.returncode == 2


def test_validate_csv_files_given_together_form_one_workbook(fixture_store: Path, tmp_path: Path) -> None:
    # the store holds this content as workbook 01-good: the files are given under that workbook's name (under
    # another name the same content is a violation, tests/test_flow_regressions.py)
    folder = tmp_path / "01-good"
    shutil.copytree(FIXTURES / "good", folder)
    files = [str(folder / f"{s}.csv") for s in ("sources", "cmocs", "evidence")]
    proc = run("validate", "--store", str(fixture_store), "--format", "json", *files)
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["conforms"] is True


def test_import_refused_leaves_store_unchanged(fixture_store: Path) -> None:
    before = nquads(fixture_store)
    proc = run("import", "--store", str(fixture_store), str(FIXTURES / "bad" / "malformed-doi"))
    assert proc.returncode == 1
    assert nquads(fixture_store) == before


def test_import_unreadable_exits_2_and_leaves_store_unchanged(fixture_store: Path) -> None:
    before = nquads(fixture_store)
    proc = run("import", "--store", str(fixture_store), str(FIXTURES / "bad" / "non-utf8-csv"))
    assert proc.returncode == 2
    assert nquads(fixture_store) == before


def test_query_catalog_json_returns_bindings(fixture_store: Path) -> None:
    proc = run("query", "all-cmocs", "--store", str(fixture_store), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    bindings = json.loads(proc.stdout)["results"]["bindings"]
    cmocs = {b["cmoc"]["value"] for b in bindings}
    assert cmocs == {"https://w3id.org/cmokg/id/cmoc/fx-c1", "https://w3id.org/cmokg/id/cmoc/fx-c2"}


def test_query_file_with_syntax_error_exits_2_naming_the_position(fixture_store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.rq"
    bad.write_text("SELECT ?x WHERE {\n  ?x ?y \n")
    proc = run("query", str(bad), "--store", str(fixture_store))
    assert proc.returncode == 2
    assert "syntax error" in proc.stderr.lower()


def test_query_unknown_name_and_bad_param_exit_2(fixture_store: Path) -> None:
    assert run("query", "no-such-query", "--store", str(fixture_store)).returncode == 2
    assert run("query", "all-cmocs", "--param", "novalue", "--store", str(fixture_store)).returncode == 2


def test_export_trig_round_trips_every_quad(fixture_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "dump.trig"
    assert run("export", "--store", str(fixture_store), "--format", "trig", "-o", str(out)).returncode == 0
    quads = set(ox.parse(path=str(out), format=ox.RdfFormat.TRIG))
    assert {str(q) + " ." for q in quads} == nquads(fixture_store)


def test_template_is_a_workbook_that_validates_once_filled(fixture_store: Path, tmp_path: Path) -> None:
    path = tmp_path / "template.xlsx"
    assert run("template", "--store", str(fixture_store), str(path)).returncode == 0
    wb = load_workbook(path)
    assert {"sources", "cmocs", "evidence"} <= set(wb.sheetnames)
    good = load_workbook(FIXTURES / "good.xlsx")
    for sheet in ("sources", "cmocs", "evidence"):
        header = [c.value for c in wb[sheet][1]]
        good_header = [c.value for c in good[sheet][1]]
        for row in good[sheet].iter_rows(min_row=2, values_only=True):
            values = dict(zip(good_header, row, strict=False))
            wb[sheet].append([values.get(col) for col in header])
    wb.save(path)
    proc = run("validate", "--store", str(fixture_store), "--format", "json", str(path))
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["results"] == []


def test_reason_finds_the_built_graph_consistent(fixture_store: Path) -> None:
    proc = run("reason", "--store", str(fixture_store))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_usage_and_missing_store_exit_2(tmp_path: Path) -> None:
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2
    proc = run("query", "all-cmocs", "--store", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert "cmokg build" in proc.stderr
