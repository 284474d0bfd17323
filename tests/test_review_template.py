"""`cmokg template`: notes on every column, drop-downs from the graph's vocabularies, and once filled with
openpyxl it imports."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook

from graph.namespaces import ID
from graph.pipeline import import_workbook
from graph.store import EvidenceStore
from graph.template import write_template
from graph.workbook import SHEETS


def test_template_has_notes_and_vocabulary_drop_downs_and_imports_once_filled(schema_store: EvidenceStore,
                                                                              tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    write_template(path, schema_store)
    wb = load_workbook(path)
    for sheet, columns in SHEETS.items():
        header = [c.value for c in wb[sheet][1]]
        assert header == list(columns)
        assert all(c.comment is not None and c.comment.text for c in wb[sheet][1])
    lists = wb["_lists"]
    values = {c.value for row in lists.iter_rows() for c in row if c.value}
    assert {"leadership", "stable funding", "general practice", "participant", "moderate"} <= values
    validated = {str(dv.sqref).split(":")[0] for dv in wb["cmocs"].data_validations.dataValidation}
    assert {"I2", "J2"} <= validated  # setting, framework_resource
    wb["sources"].append(["t2024", "study", "A title", "Doe, Jane", 2024, None, "10.1234/t.1"])
    wb["cmocs"].append(["t-c1", "t2024", "C1", None, "C", "M", None, "O", "community sector", "leadership",
                        None, None, "Reviewer", "2024-02-02"])
    wb["evidence"].append(["t-e1", "t-c1", "t2024", "A quote.", 1, None, "supports", "author", "low", "high"])
    wb.save(path)
    result = import_workbook(schema_store, [path], reviewer="r")
    assert result.imported, result.report.to_json()
    assert result.report.findings == []
    rows = schema_store.select(f"SELECT ?r WHERE {{ <{ID['cmoc/t-c1']}> cmo:drawsOn ?r }}")
    assert [r["r"].value for r in rows] == [str(ID["concept/framework/leadership"])]  # type: ignore[union-attr]
