"""Regressions found by exploratory QA of `cmokg bib`, `query`, `export`, `map` and `reason`: bibliographies
parsed into the right records (accents, field values, authors, recovery), duplicates merged only when they are
one work, and bad usage answered with exit 2 and no file left behind instead of a traceback."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pyoxigraph as ox
import pytest

from graph import cli
from graph.bibliography import Record, dedupe, parse_bibtex, parse_medline, parse_ris, read_bibliographies
from graph.pipeline import load_schema
from graph.store import EvidenceStore

# -- bibliographies ----------------------------------------------------------------------------------------


def test_bibtex_latex_accents_become_unicode_letters() -> None:
    text = r"""@article{k,
      author = {M{\"u}ller, J{\"o}rg and Garc{\'\i}a, Jos\'e and {\O}stergaard, S{\o}ren and Fran{\c c}ois, L{\'{e}}a
                and \v{S}koda, Ji\v{r}{\'\i}},
      title = {{\"U}berlingen: Stra{\ss}e, 50\% \& \emph{more}},
      year = {2020}}"""
    records, problems = parse_bibtex(text, "a.bib")
    assert problems == []
    assert [(r.title, r.authors) for r in records] == [
        ("Überlingen: Straße, 50% & more",
         ["Müller, Jörg", "García, José", "Østergaard, Søren", "François, Léa", "Škoda, Jiří"])]


def test_bibtex_text_inside_a_value_is_never_a_field() -> None:
    text = """@article{k,
      url = {https://example.com/view?doi=10.9999/wrong&year=1999},
      note = {title = not this},
      title = {Real title},
      doi = {10.1000/right},
      year = {2020}}"""
    records, problems = parse_bibtex(text, "a.bib")
    assert problems == []
    assert [(r.title, r.doi, r.year) for r in records] == [("Real title", "10.1000/right", "2020")]


def test_bibtex_braced_names_macros_and_concatenation() -> None:
    text = """@string{bmj = "British Medical Journal"}
    @article{k,
      author = {{Barnes and Noble} and Jan van der Berg and Doe, Jane and others},
      title = {T}, journal = bmj, year = "20" # "22", month = jan}"""
    records, problems = parse_bibtex(text, "a.bib")
    assert problems == []
    assert [(r.authors, r.venue, r.year) for r in records] == [
        (["Barnes and Noble", "van der Berg, Jan", "Doe, Jane"], "British Medical Journal", "2022")]


def test_bibtex_unbalanced_entry_is_reported_and_the_next_one_read() -> None:
    text = ("@article{a,\n  title = {Unbalanced {title},\n  year = {2018}\n}\n"
            "@article{b,\n  title = {Next},\n  year = {2017}\n}\n")
    records, problems = parse_bibtex(text, "a.bib")
    assert [r.title for r in records] == ["Next"]
    assert len(problems) == 1 and problems[0].startswith("a.bib:1:")


def test_bibtex_quote_ending_a_quoted_value_early_is_reported_not_cut() -> None:
    records, problems = parse_bibtex('@article{a, title = "A \\"quoted\\" word", year = 2020}', "a.bib")
    assert records == [] and len(problems) == 1 and problems[0].startswith("a.bib:1:")


def test_ris_continuation_before_any_tag_of_the_record() -> None:
    text = "TY  - JOUR\nTI  - One\nN2  - abstract\nER  - \nTY  - JOUR\n  stray line\nTI  - Two\nER  - \n"
    records, problems = parse_ris(text, "a.ris")  # was KeyError: 'N2'
    assert [r.title for r in records] == ["One", "Two"] and problems == []


def test_titles_alike_but_different_dois_or_no_year_are_not_merged() -> None:
    a = Record("a:1", title="Correction", year="2020", doi="10.1000/corr.1")
    b = Record("a:7", title="Correction", year="2020", doi="10.1000/corr.2")
    c = Record("a:13", title="Annual report")
    d = Record("a:17", title="Annual report")
    e = Record("a:20", title="Correction", year="2020", pmid="123")  # which of the two? neither is assumed
    kept, merges = dedupe([a, b, c, d, e])
    assert kept == [a, b, c, d, e] and merges == [] and a.pmid == ""
    f = Record("b:1", title="Trust", year="2020", pmid="123")
    g = Record("b:5", title="Trust", year="2020", pmid="456")
    h = Record("b:9", title="trust!", year="2020", doi="10.1/t")
    kept, merges = dedupe([f, g, h])
    assert kept == [f, g, h] and merges == []


def test_medline_empty_title_is_reported_and_short_authors_name_the_source() -> None:
    text = ("PMID- 1\nTI  - \nDP  - 2018\nSO  - x.\n\nPMID- 2\nTI  - A title.\nDP  - 2019\nAU  - Doe JA\nSO  - y.\n\n"
            "PMID- 3\nBTI - A book\nDP  - 2017\nSO  - z.\n")
    records, problems = parse_medline(text, "p.nbib")
    assert [(r.pmid, r.title, r.authors) for r in records] == [("2", "A title", ["Doe, JA"]), ("3", "A book", [])]
    assert problems == ["p.nbib:1: MEDLINE record lacks TI: cut short?"]


@pytest.mark.parametrize(("name", "data", "titles"), [
    ("refs.ris", b"@article{k, title = {BibTeX in a .ris}, year = 2020}\n", ["BibTeX in a .ris"]),
    ("refs.bib", b"PMID- 1\nTI  - MEDLINE in a .bib\nDP  - 2020\nSO  - x.\n", ["MEDLINE in a .bib"]),
    ("win.ris", b"TY  - JOUR\r\nTI  - Don\x92t stop\r\nPY  - 2020\r\nER  - \r\n", ["Don\u2019t stop"]),
    ("u16.ris", "\ufeffTY  - JOUR\r\nTI  - Sm\u00f8rrebr\u00f8d\r\nER  - \r\n".encode("utf-16-le"),
     ["Sm\u00f8rrebr\u00f8d"]),
])
def test_what_the_file_holds_decides_its_reading(tmp_path: Path, name: str, data: bytes, titles: list[str]) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    merged = read_bibliographies([path])
    assert [r.title for r in merged.records] == titles and merged.problems == []


# -- CLI: bad usage is exit 2 with nothing written ------------------------------------------------------------


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("qa") / "store"
    store = EvidenceStore(path)
    load_schema(store)
    store.flush()
    del store
    gc.collect()
    yield str(path)


def test_export_to_a_missing_folder_or_a_folder_is_usage(store_dir: str, tmp_path: Path) -> None:
    assert cli.main(["export", "--store", store_dir, "-o", str(tmp_path / "nope" / "x.nq")]) == 2
    assert cli.main(["export", "--store", store_dir, "-o", str(tmp_path)]) == 2
    assert cli.main(["export", "--store", store_dir, "--format", "ttl", "--graph", "not an iri"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_export_failing_midway_leaves_no_file(store_dir: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: EvidenceStore, out: IO[bytes], *args: object) -> None:
        out.write(b"<a:b> <a:b> <a:b> .\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(EvidenceStore, "dump", broken)
    target = tmp_path / "dump.nq"
    assert cli.main(["export", "--store", store_dir, "-o", str(target)]) == 2
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"old\n")
    assert cli.main(["export", "--store", store_dir, "-o", str(target)]) == 2
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == b"old\n"


def test_export_writes_the_whole_dump(store_dir: str, tmp_path: Path,
                                      capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli.main(["export", "--store", store_dir]) == 0
    to_stdout = capsysbinary.readouterr().out
    assert cli.main(["export", "--store", store_dir, "-o", str(tmp_path / "x.nq")]) == 0
    assert (tmp_path / "x.nq").read_bytes() == to_stdout and len(to_stdout) > 0


def test_map_to_a_folder_named_like_a_file_is_usage(store_dir: str, tmp_path: Path) -> None:
    (tmp_path / "m.svg").mkdir()
    assert cli.main(["map", "matrix", "--store", store_dir, "--out", str(tmp_path / "m.svg")]) == 2
    assert cli.main(["map", "matrix", "--store", store_dir, "--out", str(tmp_path / "ok.svg")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.svg", "ok.svg"]


def test_query_file_not_utf8_and_repeated_param_are_usage(store_dir: str, tmp_path: Path) -> None:
    rq = tmp_path / "q.rq"
    rq.write_bytes(b'SELECT ?x WHERE { BIND("\xff" AS ?x) }')
    assert cli.main(["query", "--store", store_dir, str(rq)]) == 2
    assert cli.main(["query", "--store", store_dir, "documents", "--param", "since=2020",
                     "--param", "since=2021"]) == 2


CONSTRUCT = "CONSTRUCT { ?c a <urn:x:Class> ; <urn:x:label> ?l } WHERE { GRAPH ?g { ?c a owl:Class ; rdfs:label ?l } }"


@pytest.mark.parametrize(("fmt", "rdf_format"), [("table", ox.RdfFormat.TURTLE), ("json", ox.RdfFormat.JSON_LD),
                                                  ("xml", ox.RdfFormat.RDF_XML)])
def test_query_construct_prints_triples_in_the_format_asked(store_dir: str, tmp_path: Path, fmt: str,
                                                            rdf_format: ox.RdfFormat,
                                                            capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """--format json or xml on a CONSTRUCT printed Turtle."""
    rq = tmp_path / "q.rq"
    rq.write_text("PREFIX owl: <http://www.w3.org/2002/07/owl#>\n"
                  "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n" + CONSTRUCT, encoding="utf-8")
    store = EvidenceStore(Path(store_dir), read_only=True)
    expected = set(store.ox.query(rq.read_text(encoding="utf-8")))  # type: ignore[arg-type]
    del store
    gc.collect()
    assert len(expected) > 10
    assert cli.main(["query", "--store", store_dir, str(rq), "--format", fmt]) == 0
    printed = {q.triple for q in ox.parse(capsysbinary.readouterr().out, format=rdf_format)}
    assert printed == expected


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_query_construct_as_csv_is_usage(store_dir: str, tmp_path: Path, fmt: str,
                                         capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """--format csv on a CONSTRUCT printed Turtle, exit 0."""
    rq = tmp_path / "q.rq"
    rq.write_text("CONSTRUCT WHERE { ?s a ?o }", encoding="utf-8")
    assert cli.main(["query", "--store", store_dir, str(rq), "--format", fmt]) == 2
    assert capsysbinary.readouterr().out == b""


def test_reason_without_java_is_usage(store_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cli.main(["reason", "--store", store_dir]) == 2


BIBS = Path(__file__).parent / "fixtures" / "bibliographies"


def test_bib_output_to_a_missing_folder_or_a_folder_is_usage(tmp_path: Path) -> None:
    """cmokg bib -o /missing/s.csv (or a folder) was a traceback, exit 1."""
    (tmp_path / "out").mkdir()
    for target in (tmp_path / "nope" / "s.csv", tmp_path / "out"):
        assert cli.main(["bib", str(BIBS / "zotero.ris"), "-o", str(target)]) == 2
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("threshold", ["nan", "-5", "7", "x"])
def test_compare_threshold_outside_0_to_1_is_usage(tmp_path: Path, threshold: str) -> None:
    """--threshold nan paired every CMOC of a source with every other."""
    good = Path(__file__).parent / "fixtures" / "workbooks" / "good"
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", str(good), str(good), "--threshold", threshold])
    assert exc.value.code == 2


def _copy_without(source: Path, target: Path, sheet: str | None = None, column: str | None = None) -> Path:
    target.mkdir()
    for f in source.glob("*.csv"):
        if f.stem == sheet and column is None:
            continue
        lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
        if f.stem == sheet and column is not None:
            header = lines[0].rstrip("\n").split(",")
            lines[0] = ",".join("renamed" if name == column else name for name in header) + "\n"
        (target / f.name).write_text("".join(lines), encoding="utf-8")
    return target


@pytest.mark.parametrize(("sheet", "column"), [("cmocs", None), ("evidence", None), ("cmocs", "cmoc_id"),
                                               ("cmocs", "source_id"), ("evidence", "quote")])
def test_compare_a_workbook_without_what_it_compares_is_bad_input(tmp_path: Path, sheet: str,
                                                                  column: str | None) -> None:
    """A folder without cmocs.csv (or one of other CSVs only) compared as a workbook with no CMOCs: a table of
    zero pairs and exit 0."""
    good = Path(__file__).parent / "fixtures" / "workbooks" / "good"
    broken = _copy_without(good, tmp_path / "broken", sheet, column)
    assert cli.main(["compare", str(good), str(broken)]) == 2
    assert cli.main(["compare", str(broken), str(good)]) == 2


def test_compare_a_workbook_without_an_optional_column_still_compares(tmp_path: Path) -> None:
    good = Path(__file__).parent / "fixtures" / "workbooks" / "good"
    other = _copy_without(good, tmp_path / "other", "cmocs", "label")
    assert cli.main(["compare", str(good), str(other), "--format", "json"]) == 0


def test_a_refused_bibliography_import_names_the_records_lines(tmp_path: Path) -> None:
    """The refusal named rows 2, 3, 4 of a sources sheet that exists only inside `cmokg bib`."""
    from graph.bibliography import to_workbook
    from graph.cli_review import _at_bibliography_lines
    from graph.pipeline import import_read

    ris = tmp_path / "refs.ris"
    ris.write_text("TY  - JOUR\nAU  - Smith, John\nTI  - Fine\nPY  - 2019\nDO  - 10.1000/ok\nER  - \n\n"
                   "TY  - JOUR\nAU  - Doe, Jane\nTI  - No identifier\nPY  - 2019\nER  - \n\n"
                   "TY  - JOUR\nAU  - ---\nTI  - Nobody\nPY  - 2020\nUR  - https://example.org/x\nER  - \n",
                   encoding="utf-8")
    merged = read_bibliographies([ris])
    assert merged.problems == []
    store = EvidenceStore(tmp_path / "store")
    load_schema(store)
    result = import_read(store, to_workbook(merged.records, name="refs"), "qa", workbook_id="refs")
    assert not result.imported
    located = {(f.sheet, f.row, f.column) for f in _at_bibliography_lines(result.report, merged.records).findings}
    assert located == {("refs.ris", 8, "doi"), ("refs.ris", 14, "authors")}


def test_map_png_reports_the_size_of_the_image_it_wrote(store_dir: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """cmokg map matrix --out x.png said 790x452 (scene units) of a 1580x904 image."""
    import re

    target = tmp_path / "m.png"
    assert cli.main(["map", "matrix", "--store", store_dir, "--out", str(target)]) == 0
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    said = re.search(r"\((\w+), (\d+)x(\d+) pixels\)", capsys.readouterr().out)
    assert said is not None
    assert (int(said[2]), int(said[3])) == (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
