"""Checking quotes against the full text of their source, and recording where they were found.

The full text of a source is a plain-text UTF-8 file `{source_id}.txt` in a folder (given with the workbook
or as `fulltext/` beside it). A source id is never used as a path: it is looked up among the `.txt` files
the folder itself holds, by their names (exactly, else as the graph matches ids: by slug), and a file that
resolves outside the folder (a symbolic link) is not read. An id that names no file there (`../x`,
`/etc/x`) simply has no full text. A quote and the text are compared after normalising what typesetting changes:
Unicode compatibility forms (ligatures such as "ﬁ"), curly quotes, dashes, non-breaking and other spaces,
soft hyphens, and runs of whitespace; case is kept. A quote found is recorded as an `oa:TextPositionSelector`
beside its `oa:TextQuoteSelector`, with the character offsets (`oa:start`, `oa:end`) of the passage in the
file as read. A quote not found is a warning naming the evidence row and the closest passage; it is never
attached to that passage.
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, XSD

from .importer import Extraction
from .namespaces import OA, slug
from .report import Finding
from .workbook import Workbook

_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u00ad": "",  # soft hyphen
    "\u2026": "...",
}
MAX_TEXT_CHARS = 20_000_000


@dataclass(frozen=True)
class Normalised:
    """A normalised text and, for each of its characters, the offset of the original character."""

    text: str
    offsets: list[int]
    length: int  # of the original


def normalise(text: str) -> Normalised:
    out: list[str] = []
    offsets: list[int] = []
    space = True  # drop leading whitespace
    for i, ch in enumerate(text):
        mapped = _MAP.get(ch)
        if mapped is None:
            mapped = unicodedata.normalize("NFKC", ch)
        for c in mapped:
            if c.isspace() or unicodedata.category(c) == "Cc":
                if space:
                    continue
                c, space = " ", True
            else:
                space = False
            out.append(c)
            offsets.append(i)
    while out and out[-1] == " ":
        out.pop()
        offsets.pop()
    return Normalised("".join(out), offsets, len(text))


def locate(quote: str, text: Normalised) -> tuple[int, int] | None:
    """Offsets [start, end) in the original text of the first passage equal to the quote once normalised."""
    q = normalise(quote).text
    if not q:
        return None
    i = text.text.find(q)
    if i < 0:
        return None
    return text.offsets[i], text.offsets[i + len(q) - 1] + 1


def closest_passage(quote: str, text: Normalised, original: str, width: int = 0) -> tuple[str, float]:
    """The passage of the text most like the quote (word windows, then refined), and its similarity 0..1."""
    q = normalise(quote).text
    if not q or not text.text:
        return "", 0.0
    words = text.text.split(" ")
    qwords = q.split(" ")
    n = max(1, len(qwords))
    qset = set(w.lower() for w in qwords)
    best, best_score = 0, -1.0
    step = max(1, n // 4)
    for start in range(0, max(1, len(words) - n + 1), step):
        window = words[start:start + n]
        score = sum(1 for w in window if w.lower() in qset) / n
        if score > best_score:
            best, best_score = start, score
    lo, hi = max(0, best - step), min(len(words), best + n + step)
    candidate = " ".join(words[lo:hi])
    ratio = difflib.SequenceMatcher(None, q, candidate, autojunk=False).ratio() if len(candidate) < 20000 else 0.0
    passage = " ".join(words[best:best + n])
    limit = width or 300
    return (passage[:limit] + ("…" if len(passage) > limit else "")), ratio


def check_quotes(ext: Extraction, wb: Workbook, folder: Path) -> list[Finding]:
    """Check each evidence row's quote against `{source_id}.txt` in `folder`; record positions found."""
    findings: list[Finding] = []
    files = FullTexts(folder)
    texts: dict[Path, tuple[str, Normalised] | None] = {}
    for row in wb.rows("evidence"):
        source_id, quote, key = row.get("source_id"), row.get("quote"), row.get("evidence_id")
        evidence = ext.rows.get(("evidence", row.number))  # None: a row not converted (a duplicate key)
        if not source_id or not quote or not key or evidence is None:
            continue
        path = files.find(source_id)
        if path is None:
            continue  # no full text supplied for this source: nothing to check
        if path not in texts:
            texts[path] = _read_text(path, source_id, findings, row.number)
        loaded = texts[path]
        if loaded is None:
            continue
        original, norm = loaded
        found = locate(quote, norm)
        if found is None:
            passage, ratio = closest_passage(quote, norm, original)
            findings.append(Finding(
                "Warning",
                f"the quote of evidence '{key}' does not occur in the full text of {source_id} "
                f"({path.name}), even after normalising spaces, ligatures, dashes and quotes; the closest "
                f"passage ({ratio:.0%} similar) reads: \"{passage}\"",
                sheet="evidence", row=row.number, column="quote", value=quote[:200], origin="quotes"))
            continue
        start, end = found
        target = URIRef(f"{evidence}/target")
        position = URIRef(f"{evidence}/position")
        ext.add((target, OA.hasSelector, position))
        ext.add((position, RDF.type, OA.TextPositionSelector))
        ext.add((position, OA.start, Literal(start, datatype=XSD.nonNegativeInteger)))
        ext.add((position, OA.end, Literal(end, datatype=XSD.nonNegativeInteger)))
        ext.origins.setdefault(str(position), ("evidence", row.number))
        ext.cells.setdefault((str(position), str(OA.start)), "quote")
        ext.cells.setdefault((str(position), str(OA.end)), "quote")
    return findings


class FullTexts:
    """The `.txt` files directly inside a folder, found by the source id their name gives."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.by_name: dict[str, Path] = {}
        self.by_slug: dict[str, list[Path]] = {}
        try:
            entries = sorted(self.folder.iterdir())
        except OSError:
            entries = []
        for p in entries:
            if p.suffix != ".txt" or not p.stem:
                continue
            self.by_name[p.stem] = p
            key = slug(p.stem)
            if key:
                self.by_slug.setdefault(key, []).append(p)

    def find(self, source_id: str) -> Path | None:
        """The file of this source: named `{source_id}.txt`, else the one file whose name has the same slug;
        None if there is none (or several), or if it is not a regular file inside the folder."""
        path = self.by_name.get(source_id)
        if path is None:
            same = self.by_slug.get(slug(source_id), [])
            path = same[0] if len(same) == 1 else None
        if path is None:
            return None
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return path if resolved.is_relative_to(self.folder) and resolved.is_file() else None


def _read_text(path: Path, source_id: str, findings: list[Finding], row: int) -> tuple[str, Normalised] | None:
    data = path.read_bytes()[: MAX_TEXT_CHARS * 4]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        findings.append(Finding("Warning", f"{path.name} is not UTF-8 text: quotes of {source_id} were not "
                                "checked", sheet="evidence", row=row, column="source_id", origin="quotes"))
        return None
    return text, normalise(text)
