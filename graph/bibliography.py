"""Sources from reference-manager exports: RIS (Zotero, EndNote), BibTeX and PubMed/MEDLINE (.nbib).

Small parsers, no dependency. Records are deduplicated by DOI, then PMID, then normalised title + year;
each merge is reported. The records become the `sources` sheet of a workbook (the other sheets empty) and
are validated and imported like any workbook. A record that cannot become a source (no title, cut short)
is reported with its file and line, never guessed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .namespaces import slug
from .workbook import SHEETS, Row, Workbook

MAX_BYTES = 50 * 1024 * 1024


class BibliographyError(Exception):
    """A file that is not a bibliography at all (exit 2)."""


@dataclass
class Record:
    origin: str  # file:line
    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: str = ""
    venue: str = ""
    doi: str = ""
    pmid: str = ""
    url: str = ""
    type: str = "study"
    source_id: str = ""


@dataclass
class Merged:
    records: list[Record]
    merges: list[str]
    problems: list[str]


DOI_RE = re.compile(r"10\.\d{4,9}/\S+")


def clean_doi(text: str) -> str:
    m = DOI_RE.search(text.replace("\u2010", "-"))
    return m.group(0).rstrip(".,;") if m else ""


def _year(text: str) -> str:
    m = re.search(r"\b(1[5-9]\d\d|20\d\d)\b", text)
    return m.group(1) if m else ""


def _family_given(name: str) -> str:
    name = " ".join(name.split())
    if "," in name or not name:
        return name
    parts = name.split(" ")
    return f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else name


GREY_TYPES = {"rprt", "gen", "elec", "web", "blog", "misc", "techreport", "report", "unpub", "unpublished"}


def _kind(record_type: str, title: str = "", publication_types: Sequence[str] = ()) -> str:
    """review if the title or a PubMed publication type says so; grey for reports and web pages; else study
    (a guess the reviewer checks in the sources sheet)."""
    if "review" in title.lower() or any("review" in t.lower() for t in publication_types):
        return "review"
    return "grey" if record_type.strip().lower() in GREY_TYPES else "study"


# -- RIS -----------------------------------------------------------------------------------------------

RIS_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")


def parse_ris(text: str, name: str) -> tuple[list[Record], list[str]]:
    records: list[Record] = []
    problems: list[str] = []
    current: dict[str, list[str]] | None = None
    start = 0
    last = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        m = RIS_LINE.match(line)
        if not m:
            if current is not None and line.strip() and last:
                current[last][-1] += " " + line.strip()  # continuation
            continue
        tag, value = m.group(1), (m.group(2) or "").strip()
        if tag == "TY":
            if current is not None:
                problems.append(f"{name}:{start}: RIS record has no end (ER) before the next TY")
            current, start = {"TY": [value]}, number
        elif tag == "ER":
            if current is None:
                problems.append(f"{name}:{number}: ER without a TY record")
                continue
            _ris_record(current, f"{name}:{start}", records, problems)
            current = None
        elif current is not None:
            current.setdefault(tag, []).append(value)
            last = tag
    if current is not None:
        problems.append(f"{name}:{start}: the file ends inside a RIS record (no ER): cut short?")
    if not records and not problems:
        raise BibliographyError(f"{name}: no RIS records (lines like 'TY  - JOUR' ... 'ER  - ')")
    return records, problems


def _ris_record(tags: dict[str, list[str]], origin: str, records: list[Record], problems: list[str]) -> None:
    def first(*keys: str) -> str:
        return next((v[0] for k in keys if (v := tags.get(k)) and v[0]), "")

    title = first("TI", "T1", "CT", "BT")
    if not title:
        problems.append(f"{origin}: RIS record has no title (TI or T1)")
        return
    r = Record(origin, title=title, authors=[_family_given(a) for k in ("AU", "A1") for a in tags.get(k, [])],
               year=_year(first("PY", "Y1", "DA")), venue=first("T2", "JO", "JF", "JA", "PB"),
               doi=clean_doi(first("DO", "M3") or " ".join(tags.get("UR", []))), url=first("UR", "L2"),
               type=_kind(first("TY"), title))
    an = first("AN", "C7")
    if an.isdigit():
        r.pmid = an
    records.append(r)


# -- BibTeX --------------------------------------------------------------------------------------------


def _latex(text: str) -> str:
    text = re.sub(r"\\[a-zA-Z]+\s*(?=\{)", "", text)
    text = re.sub(r"\\[\"'`^~=.]\s*\{?([a-zA-Z])\}?", r"\1", text)
    return " ".join(text.replace("{", "").replace("}", "").replace("\\&", "&").split())


def parse_bibtex(text: str, name: str) -> tuple[list[Record], list[str]]:
    records: list[Record] = []
    problems: list[str] = []
    i = 0
    found = False
    while True:
        at = text.find("@", i)
        if at < 0:
            break
        m = re.match(r"@\s*([A-Za-z]+)\s*([{(])", text[at:])
        if not m:
            i = at + 1
            continue
        kind = m.group(1).lower()
        line = text.count("\n", 0, at) + 1
        body_start = at + m.end()
        opener = m.group(2)
        closer = "}" if opener == "{" else ")"
        depth, j = 1, body_start
        while j < len(text) and depth:
            depth += (text[j] == opener) - (text[j] == closer)
            j += 1
        if depth:
            problems.append(f"{name}:{line}: the file ends inside @{kind} (unbalanced braces): cut short?")
            break
        i = j
        if kind in ("comment", "preamble", "string"):
            continue
        found = True
        fields = _bib_fields(text[body_start:j - 1])
        title = _latex(fields.get("title", ""))
        if not title:
            problems.append(f"{name}:{line}: @{kind} entry has no title")
            continue
        authors = [_family_given(_latex(a)) for a in re.split(r"\s+and\s+", fields.get("author", "")) if a.strip()]
        records.append(Record(
            f"{name}:{line}", title=title, authors=authors, year=_year(fields.get("year", fields.get("date", ""))),
            venue=_latex(fields.get("journal", fields.get("booktitle", fields.get("publisher", "")))),
            doi=clean_doi(fields.get("doi", "")), pmid=fields.get("pmid", "").strip(),
            url=fields.get("url", "").strip(), type=_kind(kind, title)))
    if not found and not problems:
        raise BibliographyError(f"{name}: no BibTeX entries (@article{{key, ...}})")
    return records, problems


def _bib_fields(body: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    comma = body.find(",")
    rest = body[comma + 1:] if comma >= 0 else ""
    for m in re.finditer(r"([A-Za-z_-]+)\s*=\s*", rest):
        key, k = m.group(1).lower(), m.end()
        if k >= len(rest):
            break
        if rest[k] == "{":
            depth, e = 0, k
            while e < len(rest):
                depth += (rest[e] == "{") - (rest[e] == "}")
                e += 1
                if depth == 0:
                    break
            fields.setdefault(key, rest[k + 1:e - 1])
        elif rest[k] == '"':  # ends at the first '"' outside braces ({\"u} is an umlaut)
            depth, e = 0, k + 1
            while e < len(rest) and not (rest[e] == '"' and depth == 0):
                depth += (rest[e] == "{") - (rest[e] == "}")
                e += 1
            fields.setdefault(key, rest[k + 1:e])
        else:
            fields.setdefault(key, re.match(r"[^,}\s]*", rest[k:]).group(0))  # type: ignore[union-attr]
    return fields


# -- MEDLINE -------------------------------------------------------------------------------------------

NBIB_LINE = re.compile(r"^([A-Z][A-Z0-9 ]{1,3})- (.*)$")


def parse_medline(text: str, name: str) -> tuple[list[Record], list[str]]:
    records: list[Record] = []
    problems: list[str] = []
    blocks: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if blocks and blocks[-1][1]:
                blocks.append((number + 1, []))
            continue
        if not blocks:
            blocks.append((number, []))
        blocks[-1][1].append(line)
    if not any(b for _, b in blocks) or not any(NBIB_LINE.match(b[0]) for _, b in blocks if b):
        raise BibliographyError(f"{name}: no MEDLINE records (lines like 'PMID- 12345678')")
    ended_cleanly = text.endswith("\n")
    for idx, (start, lines) in enumerate(blocks):
        if not lines:
            continue
        tags: dict[str, list[str]] = {}
        last = ""
        for line in lines:
            m = NBIB_LINE.match(line)
            if m:
                last = m.group(1).strip()
                tags.setdefault(last, []).append(m.group(2).strip())
            elif line.startswith("      ") and last:
                tags[last][-1] += " " + line.strip()
        origin = f"{name}:{start}"
        missing = [t for t in ("PMID", "TI", "DP") if t not in tags]
        is_last = idx == len(blocks) - 1 or not any(b for _, b in blocks[idx + 1:])
        if missing or (is_last and not ended_cleanly and "SO" not in tags):
            problems.append(f"{origin}: MEDLINE record lacks {', '.join(missing) or 'its end (SO)'}: cut short?")
            continue
        dois = [clean_doi(v) for k in ("LID", "AID") for v in tags.get(k, []) if v.endswith("[doi]")]
        records.append(Record(
            origin, title=tags["TI"][0].rstrip("."), authors=tags.get("FAU") or tags.get("AU", []),
            year=_year(tags["DP"][0]), venue=(tags.get("JT") or tags.get("TA") or [""])[0],
            doi=next((d for d in dois if d), ""), pmid=tags["PMID"][0],
            type=_kind("", tags["TI"][0], tags.get("PT", []))))
    return records, problems


# -- reading and deduplicating ---------------------------------------------------------------------------


def read_bibliography(path: Path) -> tuple[list[Record], list[str]]:
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise BibliographyError(f"{path.name}: {len(data)} bytes is too large for a bibliography")
    if b"\0" in data[:4096]:
        raise BibliographyError(f"{path.name}: binary data, not a bibliography")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    suffix = path.suffix.lower()
    head = text.lstrip()[:200]
    if suffix == ".ris" or head.startswith("TY  -"):
        return parse_ris(text, path.name)
    if suffix == ".bib" or head.startswith("@"):
        return parse_bibtex(text, path.name)
    if suffix in (".nbib", ".medline", ".txt") or head.startswith("PMID-"):
        return parse_medline(text, path.name)
    raise BibliographyError(f"{path.name}: not a .ris, .bib or .nbib file")


def norm_title(title: str) -> str:
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", folded).strip()


def dedupe(records: Iterable[Record]) -> tuple[list[Record], list[str]]:
    kept: list[Record] = []
    merges: list[str] = []
    by: dict[tuple[str, str], Record] = {}
    for r in records:
        keys = [("doi", r.doi.lower()), ("pmid", r.pmid), ("title+year", f"{norm_title(r.title)}|{r.year}")]
        hit = next(((k, by[k]) for k in keys if k[1] and k[1] != "|" and k in by), None)
        if hit is None:
            kept.append(r)
            target = r
        else:
            (how, value), target = hit
            merges.append(f"{r.origin} merged into {target.origin} (same {how}: {value.split('|')[0]})")
            for attr in ("doi", "pmid", "url", "venue", "year"):
                if not getattr(target, attr) and getattr(r, attr):
                    setattr(target, attr, getattr(r, attr))
            if not target.authors:
                target.authors = r.authors
        for k in [("doi", target.doi.lower()), ("pmid", target.pmid),
                  ("title+year", f"{norm_title(target.title)}|{target.year}")]:
            if k[1] and k[1] != "|":
                by.setdefault(k, target)
    return kept, merges


def assign_ids(records: Sequence[Record], taken: Iterable[str] = ()) -> None:
    used = {t.lower() for t in taken}
    for r in records:
        family = r.authors[0].split(",")[0] if r.authors else r.title.split(" ")[0]
        base = (slug(family).replace("-", "") or "source") + (r.year or "")
        key, n = base, 1
        while key in used:
            n += 1
            key = base + chr(ord("a") + n - 1)
        used.add(key)
        r.source_id = key


def read_bibliographies(paths: Sequence[Path]) -> Merged:
    records: list[Record] = []
    problems: list[str] = []
    for p in paths:
        if not p.is_file():
            raise BibliographyError(f"{p}: no such file")
        recs, probs = read_bibliography(p)
        records += recs
        problems += probs
    kept, merges = dedupe(records)
    assign_ids(kept)
    return Merged(kept, merges, problems)


SOURCE_COLUMNS = SHEETS["sources"]


def _row(r: Record) -> dict[str, str]:
    return {"source_id": r.source_id, "type": r.type, "title": r.title, "authors": "; ".join(r.authors),
            "year": r.year, "venue": r.venue, "doi": r.doi, "pmid": r.pmid,
            "url": r.url if r.url.startswith(("http://", "https://")) else "", "cited_by": ""}


def to_sources_csv(records: Sequence[Record]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(SOURCE_COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow(_row(r))
    return out.getvalue()


def to_workbook(records: Sequence[Record], name: str) -> Workbook:
    """A workbook of these sources (row numbers as in `to_sources_csv`) and empty cmocs and evidence."""
    text = to_sources_csv(records)
    wb = Workbook(name=name, paths=[Path(name)], sha256=hashlib.sha256(text.encode()).hexdigest())
    wb.sheets["sources"] = [Row("sources", i, _row(r)) for i, r in enumerate(records, start=2)]
    wb.sheets["cmocs"], wb.sheets["evidence"] = [], []
    for sheet, columns in SHEETS.items():
        wb.columns[sheet] = list(columns)
        wb.missing_columns[sheet] = set()
    return wb
