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
    if len(parts) == 1:
        return name
    # "Jan van der Berg": the family name starts at the first lower-case word ("von" part), else is the last word
    von = next((i for i, p in enumerate(parts[:-1]) if i and p[:1].islower()), len(parts) - 1)
    return f"{' '.join(parts[von:])}, {' '.join(parts[:von])}"


def _medline_au(name: str) -> str:
    """MEDLINE's short form 'Doe JA' as 'Doe, JA' (the family name first, the initials last)."""
    m = re.fullmatch(r"(.+?) ([A-Z]{1,4})", name.strip())
    return f"{m.group(1)}, {m.group(2)}" if m and "," not in name else name


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
            if current is not None and line.strip() and last in current:
                current[last][-1] += " " + line.strip()  # continuation
            continue
        tag, value = m.group(1), (m.group(2) or "").strip()
        if tag == "TY":
            if current is not None:
                problems.append(f"{name}:{start}: RIS record has no end (ER) before the next TY")
            current, start, last = {"TY": [value]}, number, ""
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


# LaTeX accent commands as combining characters (composed with NFC), and the letters LaTeX spells as commands.
_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
            "r": "\u030a", "d": "\u0323", "b": "\u0331"}
_LETTERS = {"ss": "ß", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å", "AA": "Å", "o": "ø", "O": "Ø",
            "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ"}
_LETTER = r"(\\[ij](?![A-Za-z])|[A-Za-z])"  # the accented letter: a letter, or a dotless \\i or \\j
_SYMBOL_ACCENT = re.compile(r"\\([\"'`^~=.])\s*(?:\{\s*" + _LETTER + r"\s*\}|" + _LETTER + ")")
_LETTER_ACCENT = re.compile(r"\\([uvHckrdb])(?:\s*\{\s*" + _LETTER + r"\s*\}|\s+" + _LETTER + ")")
_LETTER_COMMAND = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i|j)(?![A-Za-z])(?:\s*\{\s*\}|\s+)?")
_ESCAPED = re.compile(r"\\([&%$#_{}])")


def _accent(m: re.Match[str]) -> str:
    base = m.group(2) or m.group(3)
    base = {"\\i": "i", "\\j": "j"}.get(base, base)
    return base + _ACCENTS[m.group(1)]


def _latex(text: str) -> str:
    """BibTeX field text as plain Unicode: accents composed ({\\"u} -> ü, \\c{c} -> ç), \\ss -> ß, escaped
    characters kept (\\& -> &), formatting commands (\\emph{...}) and grouping braces dropped."""
    text = _SYMBOL_ACCENT.sub(_accent, text)
    text = _LETTER_ACCENT.sub(_accent, text)
    text = _LETTER_COMMAND.sub(lambda m: _LETTERS[m.group(1)], text)
    text = _ESCAPED.sub(lambda m: "\0" + m.group(1), text)  # kept through the brace and command removal
    text = re.sub(r"\\[a-zA-Z]+\*?\s*", "", text)
    text = text.replace("{", "").replace("}", "").replace("~", " ").replace("---", "\u2014").replace("--", "\u2013")
    text = text.replace("\0", "")
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _split_names(text: str) -> list[str]:
    """BibTeX's author list: names separated by 'and' outside braces ({Barnes and Noble} is one name)."""
    names, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        depth += (ch == "{") - (ch == "}")
        if depth == 0 and (m := re.match(r"\s+and\s+", text[i:], re.IGNORECASE)) and i > start:
            names.append(text[start:i])
            start = i = i + m.end()
            continue
        i += 1
    names.append(text[start:])
    return [n.strip() for n in names if n.strip() and n.strip().lower() != "others"]


def _bib_name(raw: str) -> str:
    """A BibTeX name as 'Family, Given'; a name wholly in braces ({World Health Organization}) as it is."""
    raw = raw.strip()
    if raw.startswith("{") and raw.endswith("}") and _balanced(raw[1:-1]):
        return _latex(raw)
    return _family_given(_latex(raw))


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0


MONTHS = {m: str(i) for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


class _FieldError(ValueError):
    pass


def parse_bibtex(text: str, name: str) -> tuple[list[Record], list[str]]:
    records: list[Record] = []
    problems: list[str] = []
    strings: dict[str, str] = dict(MONTHS)
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
            # Go on at the next line that starts an entry, so one stray brace does not swallow the rest.
            nxt = re.compile(r"^[ \t]*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE).search(text, body_start)
            found = found or kind not in ("comment", "preamble", "string")
            problems.append(f"{name}:{line}: @{kind} entry has unbalanced braces" +
                            (" (skipped up to the next entry)" if nxt else ": the file ends inside it, cut short?"))
            if nxt is None:
                break
            i = nxt.start()
            continue
        i = j
        if kind in ("comment", "preamble"):
            continue
        body = text[body_start:j - 1]
        try:
            fields = _bib_fields(body, strings, key=kind != "string")
        except _FieldError as exc:
            problems.append(f"{name}:{line}: @{kind} entry: {exc}")
            found = found or kind != "string"
            continue
        if kind == "string":
            strings.update(fields)
            continue
        found = True
        title = _latex(fields.get("title", ""))
        if not title:
            problems.append(f"{name}:{line}: @{kind} entry has no title")
            continue
        authors = [_bib_name(a) for a in _split_names(fields.get("author", "") or fields.get("editor", ""))]
        records.append(Record(
            f"{name}:{line}", title=title, authors=authors, year=_year(fields.get("year", fields.get("date", ""))),
            venue=_latex(fields.get("journal", fields.get("journaltitle", fields.get(
                "booktitle", fields.get("publisher", fields.get("institution", "")))))),
            doi=clean_doi(_ESCAPED.sub(r"\1", fields.get("doi", ""))), pmid=fields.get("pmid", "").strip(),
            url=_ESCAPED.sub(r"\1", fields.get("url", "")).strip(), type=_kind(kind, title)))
    if not found and not problems:
        raise BibliographyError(f"{name}: no BibTeX entries (@article{{key, ...}})")
    return records, problems


def _bib_fields(body: str, strings: dict[str, str], key: bool = True) -> dict[str, str]:
    """`key, name = value, ...` read left to right (a value's text is never taken for a field); values are
    {braced}, "quoted" (ending at the first '"' outside braces), numbers or @string names, joined by #."""
    fields: dict[str, str] = {}
    k = 0
    if key:
        comma = body.find(",")
        if comma < 0:
            return fields
        k = comma + 1
    n = len(body)
    while True:
        while k < n and (body[k].isspace() or body[k] == ","):
            k += 1
        if k >= n:
            return fields
        m = re.compile(r"([^\s=,{}\"#()]+)\s*=\s*").match(body, k)
        if not m:
            raise _FieldError(f"expected 'name = value' at {body[k:k + 30]!r}")
        field_name, k = m.group(1).lower(), m.end()
        parts: list[str] = []
        while True:
            if k >= n:
                raise _FieldError(f"field {field_name} has no value")
            if body[k] == "{":
                depth, e = 0, k
                while e < n:
                    depth += (body[e] == "{") - (body[e] == "}")
                    e += 1
                    if depth == 0:
                        break
                parts.append(body[k + 1:e - 1])
            elif body[k] == '"':  # ends at the first '"' outside braces ({\"u} is an umlaut)
                depth, e = 0, k + 1
                while e < n and not (body[e] == '"' and depth == 0):
                    depth += (body[e] == "{") - (body[e] == "}")
                    e += 1
                if e >= n:
                    raise _FieldError(f"field {field_name}: a quoted value without its closing '\"'")
                parts.append(body[k + 1:e])
                e += 1
            else:
                word = re.compile(r"[^\s,#{}\"]+").match(body, k)
                if not word:
                    raise _FieldError(f"field {field_name} has no value")
                e = word.end()
                token = word.group(0)
                parts.append(token if token.isdigit() else strings.get(token.lower(), token))
            k = e
            while k < n and body[k].isspace():
                k += 1
            if k < n and body[k] == "#":
                k += 1
                while k < n and body[k].isspace():
                    k += 1
                continue
            break
        if k < n and body[k] != ",":
            raise _FieldError(f"field {field_name}: unexpected text after its value at {body[k:k + 30]!r} "
                              "(a '\"' inside a quoted value must be in braces: {\\\"u})")
        fields.setdefault(field_name, "".join(parts))


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
        title = next((v for k in ("TI", "BTI") for v in tags.get(k, []) if v.strip()), "")
        missing = [t for t in ("PMID", "DP") if not (tags.get(t) or [""])[0].strip()]
        if not title:
            missing.insert(1, "TI")
        is_last = idx == len(blocks) - 1 or not any(b for _, b in blocks[idx + 1:])
        if missing or (is_last and not ended_cleanly and "SO" not in tags):
            problems.append(f"{origin}: MEDLINE record lacks {', '.join(missing) or 'its end (SO)'}: cut short?")
            continue
        dois = [clean_doi(v) for k in ("LID", "AID") for v in tags.get(k, []) if v.endswith("[doi]")]
        records.append(Record(
            origin, title=title.rstrip("."),
            authors=tags.get("FAU") or [_medline_au(a) for a in tags.get("AU", [])] or tags.get("CN", []),
            year=_year(tags["DP"][0]), venue=(tags.get("JT") or tags.get("TA") or [""])[0],
            doi=next((d for d in dois if d), ""), pmid=tags["PMID"][0],
            type=_kind("", title, tags.get("PT", []))))
    return records, problems


# -- reading and deduplicating ---------------------------------------------------------------------------


def read_bibliography(path: Path) -> tuple[list[Record], list[str]]:
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise BibliographyError(f"{path.name}: {len(data)} bytes is too large for a bibliography")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte order mark (EndNote on Windows)
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise BibliographyError(f"{path.name}: damaged UTF-16 text") from None
    if b"\0" in data[:4096]:
        raise BibliographyError(f"{path.name}: binary data, not a bibliography")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):  # Windows exports are cp1252, not Latin-1 (’ is 0x92)
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    suffix = path.suffix.lower()
    head = text.lstrip()[:200]
    # what the file holds decides before its name (a .bib exported as RIS, a .txt of BibTeX)
    if RIS_LINE.match(head.split("\n", 1)[0].rstrip()) and head.startswith("TY"):
        return parse_ris(text, path.name)
    if NBIB_LINE.match(head.split("\n", 1)[0].rstrip("\r")) and head.startswith("PMID"):
        return parse_medline(text, path.name)
    if head.startswith("@"):
        return parse_bibtex(text, path.name)
    if suffix == ".ris":
        return parse_ris(text, path.name)
    if suffix == ".bib":
        return parse_bibtex(text, path.name)
    if suffix in (".nbib", ".medline", ".txt"):
        return parse_medline(text, path.name)
    raise BibliographyError(f"{path.name}: not a .ris, .bib or .nbib file")


def norm_title(title: str) -> str:
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", folded).strip()


def dedupe(records: Iterable[Record]) -> tuple[list[Record], list[str]]:
    kept: list[Record] = []
    merges: list[str] = []
    by: dict[tuple[str, str], Record] = {}
    ambiguous: set[tuple[str, str]] = set()  # title+year keys of several works: no merge by title there
    for r in records:
        keys = [("doi", r.doi.lower()), ("pmid", r.pmid), _title_key(r)]
        hit = next(((k, by[k]) for k in keys
                    if k[1] and k in by and k not in ambiguous and not _conflict(r, by[k])), None)
        if hit is None:
            if keys[2][1] and keys[2] in by:
                ambiguous.add(keys[2])
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
        for k in [("doi", target.doi.lower()), ("pmid", target.pmid), _title_key(target)]:
            if k[1]:
                by.setdefault(k, target)
    return kept, merges


def _title_key(r: Record) -> tuple[str, str]:
    """Title and year; none without a year or a title (two 'Annual report's of unknown years are not assumed
    to be one)."""
    title = norm_title(r.title)
    return ("title+year", f"{title}|{r.year}" if title and r.year else "")


def _conflict(a: Record, b: Record) -> bool:
    """Two records that name different works: different DOIs or different PMIDs (a correction and the paper it
    corrects, two reports with one title), whatever their titles."""
    return bool(a.doi and b.doi and a.doi.lower() != b.doi.lower()) or bool(a.pmid and b.pmid and a.pmid != b.pmid)


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
