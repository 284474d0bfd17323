"""Identity: the IRIs keys, names and workbook ids become.

Keys and names in any script get IRIs of their own (letters and digits outside ASCII are kept); a key or name
with no letter or digit at all is a violation at its cell, never a shared node; two keys that make the same IRI
are reported on the later row; workbook ids never share a workbook by accident; an ambiguous batch prefix is
said to be ambiguous. The slugs of ASCII and accented Latin text are those of earlier versions.
"""

from __future__ import annotations

import csv
import random
import re
import shutil
import unicodedata
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS

from graph.batches import AmbiguousBatch, resolve_batch, workbook_iri
from graph.importer import agent_iri
from graph.namespaces import BATCH_PREFIX, ID, slug
from graph.pipeline import import_workbook
from graph.store import EvidenceStore
from graph.validate import validate_workbook

GOOD = Path(__file__).parent / "fixtures" / "workbooks" / "good"
Located = tuple[str, str | None, int | None, str | None]


def copy_good(tmp_path: Path, name: str = "wb", *, prefix: str = "fx-") -> Path:
    """The good fixture workbook in a folder of this name, its keys starting with `prefix` instead of fx-."""
    folder = tmp_path / name
    shutil.copytree(GOOD, folder)
    for p in folder.glob("*.csv"):
        p.write_text(p.read_text(encoding="utf-8").replace("fx-", prefix), encoding="utf-8")
    return folder


def edit(folder: Path, sheet: str, change: dict[str, dict[str, str]] | None = None,
         append: list[dict[str, str]] | None = None) -> None:
    """Change cells of rows (by their key, the first column) and append rows (missing cells blank)."""
    path = folder / f"{sheet}.csv"
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        row.update((change or {}).get(row[header[0]], {}))
    rows += [{c: r.get(c, "") for c in header} for r in append or []]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)


def row_of(folder: Path, sheet: str, key: str) -> dict[str, str]:
    with (folder / f"{sheet}.csv").open(encoding="utf-8", newline="") as f:
        return next(r for r in csv.DictReader(f) if next(iter(r.values())) == key)


def located(findings: list) -> set[Located]:
    return {(f.severity, f.sheet, f.row, f.column) for f in findings}


# -- slug ---------------------------------------------------------------------------------------------------

def ascii_slug(text: str) -> str:
    """The slug of earlier versions (ASCII only), the reference for text it could already name."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")


def foldable(ch: str) -> bool:
    """ASCII, or a character NFKD decomposes into ASCII and combining marks (accented Latin, ligatures...)."""
    return all(c < "\x80" or unicodedata.category(c).startswith("M") for c in unicodedata.normalize("NFKD", ch))


FOLDABLE = [chr(i) for i in range(0x30000) if not 0xD800 <= i <= 0xDFFF and foldable(chr(i))]


def test_slug_of_ascii_and_accented_latin_text_is_unchanged() -> None:
    """The seed graph's IRIs (and every IRI minted before) stay as they were."""
    assert len(FOLDABLE) > 4000
    for ch in FOLDABLE:
        assert slug(f"a{ch}b {ch}") == ascii_slug(f"a{ch}b {ch}"), hex(ord(ch))
    rng = random.Random(20240131)
    pool = FOLDABLE + [chr(i) for i in range(128)] * 10
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 14)))
        assert slug(text) == ascii_slug(text), text
    assert slug("Calderón-Larrañaga, Sara") == "calderon-larranaga-sara"
    assert slug("O\u2019Donnell, C. A.") == "odonnell-c-a"  # punctuation outside ASCII is still dropped
    assert slug("Ｆｘ－Ｃ１") == "fx-c1"


def test_slug_keeps_letters_and_digits_of_other_scripts() -> None:
    assert slug("研究一") == "研究一"
    assert slug("Иванов, Иван") == "иванов-иван"
    assert slug("ИВАНОВ Иван") == slug("иванов, иван")  # case-folded
    assert slug("Йошкар-Ола") == "йошкар-ола"  # a letter with its mark, recomposed (NFC)
    assert slug("دراسة ٢٠٢١") == "دراسة-٢٠٢١"
    assert slug("हिन्दी") == "हिन्दी"  # vowel signs (marks) stay with their letters
    assert slug("연구") == "연구"  # Hangul recomposed
    assert slug(unicodedata.normalize("NFD", "연구 Café")) == slug("연구 Café") == "연구-cafe"
    # Latin letters with no decomposition are kept as letters (earlier versions dropped them): ø, æ, ł, đ;
    # ß case-folds to ss
    assert slug("Øster, Ærø") == "øster-ærø"
    assert slug("Łódź") == "łodz"
    assert slug("Straße") == slug("STRASSE") == "strasse"
    for text in ("研究", "分析", "Иванов", "Øster"):
        assert slug(text) and slug(text) != ascii_slug(text)
    assert slug("🙂") == slug("!!!") == slug("—") == ""


def test_every_letter_digit_and_mark_makes_a_valid_iri_in_every_syntax() -> None:
    kept = [chr(i) for i in range(0x110000) if not 0xD800 <= i <= 0xDFFF
            and unicodedata.category(chr(i))[0] in "LNM"]
    segments = {slug(f"x{ch}y") for ch in kept}
    for s in segments:
        ox.NamedNode(f"{ID}source/{s}")  # raises ValueError on an invalid IRI
    g = Graph()
    names = ["研究一", "未知の文献", "دراسة", "Иванов, Иван", "Øster", "हिन्दी", "연구", *sorted(segments)[:3000]]
    for name in names:
        g.add((URIRef(f"{ID}source/{slug(name)}"), DCTERMS.identifier, Literal(name)))
    expected = {(str(s), str(o)) for s, _, o in g}
    for fmt in ("turtle", "nt"):
        text = g.serialize(format=fmt, encoding="utf-8")
        assert {(str(s), str(o)) for s, _, o in Graph().parse(data=text, format=fmt)} == expected
        parsed = ox.Store()
        parsed.load(text, ox.RdfFormat.TURTLE if fmt == "turtle" else ox.RdfFormat.N_TRIPLES)
        assert {(q.subject.value, q.object.value) for q in parsed} == expected  # type: ignore[union-attr]
        again = ox.serialize(parsed, format=ox.RdfFormat.TURTLE)
        assert again is not None
        reparsed = ox.Store()
        reparsed.load(again, ox.RdfFormat.TURTLE)
        assert {(q.subject.value, q.object.value) for q in reparsed} == expected  # type: ignore[union-attr]


# -- keys and names in other scripts (bug: they all became one node) ------------------------------------------

def cjk_workbook(tmp_path: Path) -> Path:
    folder = copy_good(tmp_path)
    edit(folder, "sources", change={"fx-review": {"source_id": "研究一", "authors": "王芳; 李伟"},
                                    "fx-study": {"source_id": "Исследование", "authors": "Иванов, Иван",
                                                 "cited_by": "研究一"}})
    edit(folder, "cmocs", change={"fx-c1": {"source_id": "研究一", "extracted_by": "王芳"},
                                  "fx-c2": {"source_id": "研究一", "extracted_by": "Иванов, Иван"}})
    edit(folder, "evidence", change={"fx-e1": {"source_id": "Исследование"}, "fx-e2": {"source_id": "研究一"},
                                     "fx-e3": {"source_id": "Исследование"}})
    return folder


def test_non_latin_keys_and_names_are_distinct_nodes(tmp_path: Path, schema_store: EvidenceStore) -> None:
    result = import_workbook(schema_store, [cjk_workbook(tmp_path)], reviewer="r")
    assert result.imported, result.report.to_json()
    rows = schema_store.select("""SELECT ?s ?id ?p ?name WHERE { ?s a cmo:Document ; dcterms:identifier ?id ;
        dcterms:creator ?p . ?p rdfs:label ?name }""")
    got = {(r["s"].value, r["id"].value, r["p"].value, r["name"].value) for r in rows}  # type: ignore[union-attr]
    review, study = f"{ID}source/研究一", f"{ID}source/исследование"
    assert got == {(review, "研究一", f"{ID}person/王芳", "王芳"), (review, "研究一", f"{ID}person/李伟", "李伟"),
                   (study, "Исследование", f"{ID}person/иванов-иван", "Иванов, Иван")}
    agents = schema_store.select("SELECT DISTINCT ?a WHERE { ?c cmo:extractedBy ?a }")
    assert {r["a"].value for r in agents} == {f"{ID}agent/王芳", f"{ID}agent/иванов-иван"}  # type: ignore[union-attr]
    cited = schema_store.select(f"SELECT ?x WHERE {{ <{review}> cito:cites ?x }}")
    assert {r["x"].value for r in cited} == {study}  # type: ignore[union-attr]


def test_undefined_non_latin_source_is_a_violation(tmp_path: Path, schema_store: EvidenceStore) -> None:
    folder = cjk_workbook(tmp_path)
    edit(folder, "cmocs", change={"fx-c2": {"source_id": "未知の文献"}})
    report = validate_workbook([folder], schema_store, reviewer="r").report
    assert located(report.findings) == {("Violation", "cmocs", 3, "source_id")}


def test_a_second_non_latin_source_is_not_the_first(tmp_path: Path, schema_store: EvidenceStore) -> None:
    assert import_workbook(schema_store, [cjk_workbook(tmp_path)], reviewer="r").imported
    later = tmp_path / "later"
    later.mkdir()
    header = (GOOD / "sources.csv").read_text(encoding="utf-8").splitlines()[0]
    (later / "sources.csv").write_text(f"{header}\nدراسة,study,A study,\"علي, أحمد\",2020,,10.1234/arabic.1,,,\n",
                                       encoding="utf-8")
    for sheet in ("cmocs", "evidence"):
        (later / f"{sheet}.csv").write_text((GOOD / f"{sheet}.csv").read_text().splitlines()[0] + "\n")
    result = import_workbook(schema_store, [later], reviewer="r")
    assert result.imported, result.report.to_json()
    titles = schema_store.select("SELECT ?s ?t WHERE { ?s a cmo:Document ; dcterms:title ?t }")
    assert {r["s"].value for r in titles} == {  # type: ignore[union-attr]
        f"{ID}source/研究一", f"{ID}source/исследование", f"{ID}source/دراسة"}


@pytest.mark.parametrize(("sheet", "key", "column", "text"), [
    ("sources", "fx-review", "source_id", "🙂"),
    ("sources", "fx-review", "authors", "Doe, Jane; ★"),
    ("sources", "fx-study", "cited_by", "—"),
    ("cmocs", "fx-c1", "cmoc_id", "!!!"),
    ("cmocs", "fx-c2", "source_id", "🙂"),
    ("cmocs", "fx-c1", "leads_to", "?"),
    ("cmocs", "fx-c1", "programme_theory", "✓"),
    ("cmocs", "fx-c2", "extracted_by", "—"),
    ("evidence", "fx-e2", "evidence_id", "…"),
    ("evidence", "fx-e2", "cmoc_id", "🙂"),
    ("evidence", "fx-e2", "source_id", "🙂"),
])
def test_a_key_or_name_without_letters_or_digits_is_a_violation_at_its_cell(
        tmp_path: Path, schema_store: EvidenceStore, sheet: str, key: str, column: str, text: str) -> None:
    folder = copy_good(tmp_path)
    row = {"fx-review": 2, "fx-study": 3, "fx-c1": 2, "fx-c2": 3, "fx-e2": 3}[key]
    edit(folder, sheet, change={key: {column: text}})
    before = schema_store.quads()
    result = import_workbook(schema_store, [folder], reviewer="r")
    assert not result.imported and schema_store.quads() == before
    report = result.report
    # a source or CMOC no longer named leaves the rows referring to it dangling: those are reported as such
    assert [(f.severity, f.row) for f in report.findings if (f.sheet, f.column) == (sheet, column)] == [
        ("Violation", row)]
    ext = validate_workbook([folder], None, reviewer="r").extraction
    assert ext is not None
    nodes = {str(n) for t in ext.graph for n in t if isinstance(n, URIRef)}
    shared = {f"{ID}{kind}/" for kind in ("source", "cmoc", "evidence", "person", "agent")}
    assert not nodes & (shared | {f"{ID}person/unknown", f"{ID}agent/unknown"})
    assert not any(n.endswith("/") for n in nodes if n.startswith(str(ID)))


def test_the_reviewer_is_never_a_shared_unknown_agent() -> None:
    assert agent_iri("王芳") == ID["agent/王芳"]
    assert agent_iri("★") != agent_iri("☆")
    assert agent_iri("★") == agent_iri("★")
    assert ID["agent/unknown"] not in {agent_iri("★"), agent_iri("—")}
    ox.NamedNode(str(agent_iri("★")))


# -- workbook ids (bug: 研究.xlsx and 分析.xlsx were one workbook, the second replacing the first) ---------

def test_workbook_ids_in_other_scripts_are_distinct_workbooks(tmp_path: Path, schema_store: EvidenceStore) -> None:
    first = import_workbook(schema_store, [copy_good(tmp_path, "研究")], reviewer="r")
    second = import_workbook(schema_store, [copy_good(tmp_path, "分析", prefix="gx-")], reviewer="r")
    assert first.imported and second.imported, second.report.to_json()
    assert not second.replaced and second.superseded == []
    rows = schema_store.select("SELECT ?b ?w WHERE { GRAPH ?b { ?b a cmo:ImportBatch ; prov:specializationOf ?w } }")
    assert {(r["b"].value, r["w"].value) for r in rows} == {  # type: ignore[union-attr]
        (first.batch, f"{ID}workbook/研究"), (second.batch, f"{ID}workbook/分析")}


def test_workbook_ids_without_letters_or_digits_are_distinct_and_stable() -> None:
    iris = {name: workbook_iri(name) for name in ("★", "☆", "!!!", "——", "🙂")}
    assert len(set(iris.values())) == len(iris)
    assert all(workbook_iri(name) == iri for name, iri in iris.items())
    assert ID["workbook/unnamed"] not in iris.values()
    for iri in iris.values():
        assert ox.NamedNode(str(iri)).value == str(iri)
        assert str(iri) not in {str(workbook_iri(n)) for n in ("unnamed", "a", "_")}
    assert workbook_iri("Review A") == workbook_iri("review-a") == ID["workbook/review-a"]  # as before


# -- keys that differ but make the same IRI (bug: the first, correct row got the violations) -------------------

@pytest.mark.parametrize(("sheet", "key", "other", "row"), [
    ("cmocs", "fx-c1", "fx_c1", 4),
    ("evidence", "fx-e1", "fx e1", 5),
    ("sources", "fx-review", "FX Review", 4),
    ("evidence", "fx-e3", "Fx_É3", 5),
])
def test_keys_making_the_same_iri_are_reported_on_the_later_row(
        tmp_path: Path, schema_store: EvidenceStore, sheet: str, key: str, other: str, row: int) -> None:
    folder = copy_good(tmp_path)
    column = {"cmocs": "cmoc_id", "evidence": "evidence_id", "sources": "source_id"}[sheet]
    copy = {**row_of(folder, sheet, key), column: other}
    if sheet == "cmocs":
        copy["label"] = "a label of its own"
    edit(folder, sheet, append=[copy])
    before = schema_store.quads()
    result = import_workbook(schema_store, [folder], reviewer="r")
    assert not result.imported and schema_store.quads() == before
    assert located(result.report.findings) == {("Violation", sheet, row, column)}
    finding = result.report.findings[0]
    kind = {"cmocs": "cmoc", "evidence": "evidence", "sources": "source"}[sheet]
    assert finding.value == other and finding.focus_node == f"{ID}{kind}/{slug(key)}"


def test_a_key_making_the_iri_of_a_key_in_the_graph_is_reported_on_its_row(tmp_path: Path,
                                                                           schema_store: EvidenceStore) -> None:
    assert import_workbook(schema_store, [copy_good(tmp_path)], reviewer="r").imported
    later = copy_good(tmp_path, "later", prefix="gx-")
    edit(later, "cmocs", change={"gx-c1": {"leads_to": "FX_C2"}, "gx-c2": {"cmoc_id": "FX_C2"}})
    edit(later, "evidence", change={"gx-e2": {"cmoc_id": "FX_C2"}, "gx-e3": {"cmoc_id": "FX_C2"}})
    report = validate_workbook([later], schema_store, reviewer="r").report
    assert located(report.findings) == {("Violation", "cmocs", 3, "cmoc_id")}
    assert report.findings[0].focus_node == f"{ID}cmoc/fx-c2"


# -- batches named by a prefix ----------------------------------------------------------------------------------

def test_an_ambiguous_batch_prefix_is_not_reported_as_no_batch(tmp_path: Path, schema_store: EvidenceStore) -> None:
    result = import_workbook(schema_store, [copy_good(tmp_path)], reviewer="r")
    assert result.batch is not None
    digest = result.batch.removeprefix(BATCH_PREFIX)
    twin = BATCH_PREFIX + digest[0] + ("0" if digest[1] != "0" else "1") + digest[2:]
    schema_store.update(f"""INSERT {{ GRAPH <{twin}> {{ ?s2 ?p ?o }} }} WHERE {{ GRAPH <{result.batch}> {{ ?s ?p ?o }}
        BIND(IF(?s = <{result.batch}>, <{twin}>, ?s) AS ?s2) }}""")
    assert {b.iri for b in schema_store.batches()} == {result.batch, twin}
    with pytest.raises(AmbiguousBatch) as raised:
        resolve_batch(schema_store, digest[0])
    assert raised.value.candidates == sorted([result.batch, twin])
    with pytest.raises(AmbiguousBatch):
        resolve_batch(schema_store, f"id:batch/{digest[0].upper()}")
    assert resolve_batch(schema_store, digest[:2]) == result.batch
    assert resolve_batch(schema_store, "zzzz") is None



def test_a_review_with_a_non_latin_key_has_its_page(tmp_path: Path, schema_store: EvidenceStore) -> None:
    """/reviews/<slug> accepted only ASCII slugs: the review 研究一 had no page (404)."""
    from webapp import create_app

    assert import_workbook(schema_store, [cjk_workbook(tmp_path)], reviewer="r").imported
    app = create_app({"TESTING": True, "CMOKG_STORE_OBJECT": schema_store, "CMOKG_QUERY_WORKERS": 0})
    r = app.test_client().get("/reviews/研究一")
    assert r.status_code == 200
    cmocs = {r["c"].value for r in schema_store.select(  # type: ignore[union-attr]
        f"SELECT ?c WHERE {{ ?c cmo:statedIn <{ID}source/研究一> }}")}
    assert cmocs and all(c.removeprefix(ID) in r.get_data(as_text=True) for c in cmocs)
