"""Quotes checked against the full text of their source: normalisation, offsets recorded as an
oa:TextPositionSelector, and a quote not found reported (with the closest passage), never attached."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Literal
from rdflib.namespace import PROV, RDF, XSD

from graph.namespaces import ID, OA
from graph.pipeline import _commit, import_workbook
from graph.quotes import locate, normalise
from graph.store import EvidenceStore
from graph.validate import validate_workbook

GOOD = Path(__file__).parent / "fixtures" / "workbooks" / "good"

STUDY = ("Methods\n\nWe interviewed 20 patients.  In the ﬁrst round, \u201cTraining made\n   conversations "
         "feel natural.\u201d \u2014 one said.\nSome patients did not attend despite trusting the link\u2011worker.\n")


def test_normalise_folds_whitespace_ligatures_dashes_and_quotes() -> None:
    n = normalise("  a\u00a0\u201cﬁne\u201d \u2013 b\n\tc ")
    assert n.text == 'a "fine" - b c'
    assert len(n.offsets) == len(n.text)


def test_locate_gives_offsets_into_the_original() -> None:
    text = normalise(STUDY)
    found = locate("Training made conversations feel natural", text)
    assert found is not None
    start, end = found
    assert STUDY[start:end] == "Training made\n   conversations feel natural"
    assert locate("In the first round", text) is not None  # ligature in the text
    assert locate("did not attend despite trusting the link-worker.", text) is not None  # non-breaking hyphen
    assert locate("Training made conversations feel awkward", text) is None


def fulltext_workbook(tmp_path: Path) -> Path:
    folder = tmp_path / "wb"
    shutil.copytree(GOOD, folder)
    (folder / "fulltext").mkdir()
    (folder / "fulltext" / "fx-study.txt").write_text(STUDY, encoding="utf-8")
    return folder


def test_found_quote_records_a_position_selector_and_a_missing_one_is_a_warning(tmp_path: Path,
                                                                                 schema_store: EvidenceStore) -> None:
    folder = fulltext_workbook(tmp_path)
    text = folder / "evidence.csv"
    text.write_text(text.read_text().replace("Some patients did not attend despite trusting the link worker.",
                                             "Some patients never attended although they trusted the link worker."))
    result = import_workbook(schema_store, [folder], reviewer="r")
    assert result.imported, result.report.to_json()
    # fx-e1 (fx-study) found; fx-e3 (fx-study) not found: a warning on its row; fx-e2 (fx-review) has no text
    assert {(f.severity, f.sheet, f.row, f.column) for f in result.report.findings} == {
        ("Warning", "evidence", 4, "quote")}
    warning = result.report.findings[0]
    assert warning.origin == "quotes" and "did not attend despite trusting" in warning.message
    position = ID["evidence/fx-e1/position"]
    rows = schema_store.select(f"""SELECT ?s ?e WHERE {{ <{ID['evidence/fx-e1/target']}> oa:hasSelector <{position}> .
        <{position}> a oa:TextPositionSelector ; oa:start ?s ; oa:end ?e }}""")
    assert len(rows) == 1
    start, end = int(rows[0]["s"].value), int(rows[0]["e"].value)  # type: ignore[union-attr]
    assert STUDY[start:end].startswith("Training made") and STUDY[start:end].endswith("natural.")
    # the quote not found is not attached anywhere
    assert not list(schema_store.select(
        f"SELECT ?p WHERE {{ <{ID['evidence/fx-e3/target']}> oa:hasSelector ?p . ?p a oa:TextPositionSelector }}"))


def test_positions_conform_to_the_shapes(tmp_path: Path) -> None:
    result = validate_workbook([fulltext_workbook(tmp_path)], None, reviewer="r")
    assert result.report.conforms and result.extraction is not None
    g = result.extraction.graph
    position = ID["evidence/fx-e1/position"]
    assert (position, RDF.type, OA.TextPositionSelector) in g
    assert g.value(position, OA.start).datatype == XSD.nonNegativeInteger  # type: ignore[union-attr]
    assert g.value(position, OA.end) != Literal(0)


def test_the_triples_validated_are_the_triples_written(tmp_path: Path, schema_store: EvidenceStore) -> None:
    """The extraction's validation store is parsed when the workbook is converted (ahead, in a build); the
    position selectors and the provenance added afterwards must reach it too, or SHACL would judge less than
    what is written. A revision adds prov:wasRevisionOf as well."""
    folder = fulltext_workbook(tmp_path)
    assert import_workbook(schema_store, [folder], reviewer="r").imported
    cmocs = folder / "cmocs.csv"
    cmocs.write_text(cmocs.read_text(encoding="utf-8").replace("feel hope", "feel hopeful"), encoding="utf-8")
    validated = validate_workbook([folder], schema_store, reviewer="r")
    ext = validated.extraction
    assert ext is not None and validated.report.conforms and validated.supersedes
    batch = ox.NamedNode(str(ext.batch))
    parsed = ox.Store()  # a store of its own, so that literals are canonical on both sides (e.g. times in Z)
    parsed.load(ext.nt(), ox.RdfFormat.N_TRIPLES, to_graph=batch)
    expected = set(parsed)
    assert set(ext.store.quads_for_pattern(None, None, None, batch)) == expected
    types = {q.object.value for q in expected if q.predicate.value == str(RDF.type)}
    assert str(OA.TextPositionSelector) in types
    assert any(q.predicate.value == str(PROV.wasRevisionOf) for q in expected)
    result = _commit(schema_store, validated)  # what import_workbook writes, without validating anew
    assert result.imported and result.batch == batch.value
    assert set(schema_store.ox.quads_for_pattern(None, None, None, batch)) == expected


SECRET = "Training made conversations feel natural. The server's private notes."


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_a_source_id_never_reads_a_file_outside_the_fulltext_folder(tmp_path: Path, how: str) -> None:
    """A source id is looked up among the folder's own files, never used as a path: `../../secret` and
    `/abs/secret` name no file there (no full text, nothing checked), and a link out of the folder is not read."""
    folder = fulltext_workbook(tmp_path)
    (tmp_path / "secret.txt").write_text(SECRET, encoding="utf-8")
    source = {"relative": "../../secret", "absolute": str(tmp_path / "secret"), "symlink": "fx-study"}[how]
    if how == "symlink":
        (folder / "fulltext" / "fx-study.txt").unlink()
        (folder / "fulltext" / "fx-study.txt").symlink_to(tmp_path / "secret.txt")
    evidence = folder / "evidence.csv"
    evidence.write_text(evidence.read_text(encoding="utf-8").replace(",fx-study,", f",{source},"), encoding="utf-8")
    result = validate_workbook([folder], None, reviewer="r")
    assert result.extraction is not None
    # fx-e1's quote is in the secret file, fx-e3's is not: neither is found nor reported as not found
    assert [f for f in result.report.findings if f.origin == "quotes"] == []
    assert (None, RDF.type, OA.TextPositionSelector) not in result.extraction.graph


def test_full_texts_are_found_by_the_slug_of_their_name(tmp_path: Path) -> None:
    folder = fulltext_workbook(tmp_path)
    (folder / "fulltext" / "fx-study.txt").rename(folder / "fulltext" / "FX_Study.txt")
    result = validate_workbook([folder], None, reviewer="r")
    assert result.extraction is not None
    position = ID["evidence/fx-e1/position"]
    assert (position, RDF.type, OA.TextPositionSelector) in result.extraction.graph
    assert {(f.sheet, f.row, f.column) for f in result.report.findings if f.origin == "quotes"} == {
        ("evidence", 4, "quote")}


def test_an_uploaded_workbook_cannot_read_server_files_either(tmp_path: Path, schema_store: EvidenceStore) -> None:
    """The same through /review (no token needed): a zip with a fulltext/ folder and a source id that is a path."""
    from webapp import create_app

    (tmp_path / "secret.txt").write_text(SECRET, encoding="utf-8")
    folder = fulltext_workbook(tmp_path)
    evidence = folder / "evidence.csv"
    for source in ("../../../../../../../../.." + str(tmp_path / "secret"), str(tmp_path / "secret")):
        evidence.write_text((GOOD / "evidence.csv").read_text(encoding="utf-8").replace(",fx-study,", f",{source},"),
                            encoding="utf-8")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for p in sorted(folder.glob("*.csv")):
                zf.write(p, p.name)
            zf.writestr("fulltext/fx-study.txt", STUDY)
        app = create_app({"TESTING": True, "CMOKG_STORE_OBJECT": schema_store, "CMOKG_QUERY_WORKERS": 0})
        r = app.test_client().post("/review", data={"workbook": (io.BytesIO(buf.getvalue()), "upload.zip"),
                                                    "format": "json"})
        assert r.status_code in (200, 422), r.status_code
        results = json.loads(r.data)["results"]
        assert results and [f for f in results if f["origin"] == "quotes"] == []
