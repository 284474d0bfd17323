"""Two reviewers: CMOCs paired within a source by C/M/O similarity, unpaired listed, agreement and kappa."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graph.compare import cohen_kappa, compare_workbooks
from graph.workbook import read_workbook

GOOD = Path(__file__).parent / "fixtures" / "workbooks" / "good"
CMOKG = str(Path(sys.executable).with_name("cmokg"))


def test_cohen_kappa_textbook_example() -> None:
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a"), ("a", "a")]) == 1.0


@pytest.fixture
def second_reviewer(tmp_path: Path) -> Path:
    b = tmp_path / "b"
    shutil.copytree(GOOD, b)
    cmocs = (b / "cmocs.csv").read_text()
    cmocs = cmocs.replace("Link workers receive motivational interviewing training",
                          "Link workers are trained in motivational interviewing")
    cmocs = cmocs.replace(",link workers,training opportunities; trustful interactions,",
                          ",general practice,training opportunities,")
    cmocs += "b-c9,fx-study,,,Practices lack space,Rooms are offered,,Groups meet,,,,,B,\n"
    (b / "cmocs.csv").write_text(cmocs)
    ev = (b / "evidence.csv").read_text()
    assert "refutes,reviewer,moderate,moderate" in ev
    ev = ev.replace("refutes,reviewer,moderate,moderate", "refutes,reviewer,moderate,low")
    (b / "evidence.csv").write_text(ev)
    return b


def test_pairs_unpaired_agreement_and_kappa(second_reviewer: Path) -> None:
    result = compare_workbooks(read_workbook([GOOD]), read_workbook([second_reviewer]))
    assert [(p.source_id, p.a, p.b) for p in result.pairs] == [("fx-review", "fx-c1", "fx-c1"),
                                                               ("fx-review", "fx-c2", "fx-c2")]
    assert result.pairs[0].similarity < 1.0 == result.pairs[1].similarity
    assert result.unpaired_a == [] and result.unpaired_b == ["b-c9"]
    fields = {f.field: f for f in result.fields}
    assert fields["context"].agreement == 0.5 and fields["outcome"].agreement == 1.0
    assert fields["setting"].agreement == 0.5
    # setting decisions over {link workers, general practice, community sector} x 2 pairs:
    # pair 1: lw (T,F) gp (F,T) cs (F,F); pair 2: all equal (T,T) (F,F) (T,T)
    assert fields["setting"].kappa == pytest.approx(cohen_kappa(
        [("True", "False"), ("False", "True"), ("False", "False"), ("False", "False"), ("True", "True"),
         ("True", "True")]))
    assert fields["relation"].n == 3 and fields["relation"].kappa == 1.0
    assert fields["rigour"].agreement == pytest.approx(2 / 3)
    assert fields["rigour"].kappa == pytest.approx(cohen_kappa(
        [("moderate", "moderate"), ("low", "low"), ("moderate", "low")]))
    assert fields["rigour"].kappa == pytest.approx(0.4)  # p_o 2/3, p_e 4/9


def test_cli_table_json_csv(second_reviewer: Path) -> None:
    for fmt in ("table", "json", "csv"):
        proc = subprocess.run([CMOKG, "compare", str(GOOD), str(second_reviewer), "--format", fmt],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        if fmt == "json":
            data = json.loads(proc.stdout)
            assert data["unpaired_b"] == ["b-c9"]
            assert {f["field"] for f in data["fields"]} >= {"setting", "framework_resource", "relation",
                                                             "interpretive_level", "relevance", "rigour"}
        elif fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(proc.stdout)))
            assert ("only_b", "b-c9") in {(r["kind"], r["b"]) for r in rows}
        else:
            assert "b-c9" in proc.stdout
    bad = subprocess.run([CMOKG, "compare", str(GOOD), str(GOOD.parent / "bad" / "empty-file" / "workbook.xlsx")],
                         capture_output=True, text=True)
    assert bad.returncode == 2
