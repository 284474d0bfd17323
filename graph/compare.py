"""Two reviewers' extractions of the same sources: paired CMOCs, unpaired ones, agreement and Cohen's kappa.

CMOCs pair only within the same `source_id`, by the similarity of their context, mechanism and outcome text
(the mean of difflib ratios over C, M resource + reasoning, O, after folding case and whitespace), greedily
from the most similar pair down to `threshold`. Evidence rows pair within paired CMOCs by quote similarity.

Agreement per field is the share of pairs whose (normalised) values are equal. Cohen's kappa is computed for
each controlled column: on the pairs' values for single-valued columns (relation, interpretive level,
relevance, rigour; a blank is a category of its own); for the multi-valued columns (setting, framework
resource) on the present/absent decisions of every pair for every concept either reviewer used.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from .workbook import Row, Workbook

TEXT_FIELDS = ("context", "mechanism_resource", "mechanism_reasoning", "outcome", "label", "statement")
SET_FIELDS = ("setting", "framework_resource")
EVIDENCE_FIELDS = ("relation", "interpretive_level", "relevance", "rigour")


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


def similarity(a: str, b: str) -> float:
    a, b = _norm(a), _norm(b)
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def cmo_similarity(a: Row, b: Row) -> float:
    parts = [
        similarity(a.get("context"), b.get("context")),
        similarity(a.get("mechanism_resource") + " " + a.get("mechanism_reasoning"),
                   b.get("mechanism_resource") + " " + b.get("mechanism_reasoning")),
        similarity(a.get("outcome"), b.get("outcome")),
    ]
    return sum(parts) / len(parts)


def _set(text: str) -> frozenset[str]:
    return frozenset(_norm(p) for p in text.split(";") if p.strip())


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters over items; None without items; 1.0 when both always agree on one value."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    ca, cb = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1 - expected)


@dataclass
class Pair:
    source_id: str
    a: str
    b: str
    similarity: float


@dataclass
class FieldAgreement:
    field: str
    n: int
    agreement: float | None
    kappa: float | None = None


@dataclass
class Comparison:
    pairs: list[Pair] = field(default_factory=list)
    unpaired_a: list[str] = field(default_factory=list)
    unpaired_b: list[str] = field(default_factory=list)
    evidence_pairs: list[Pair] = field(default_factory=list)
    fields: list[FieldAgreement] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        """One table: a row per field (agreement, kappa), then a row per pair and per unpaired CMOC."""
        from .report import csv_safe

        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["kind", "field_or_source", "a", "b", "n_or_similarity", "agreement", "kappa"])
        for f in self.fields:
            w.writerow(["field", f.field, "", "", f.n, _fmt(f.agreement), _fmt(f.kappa)])
        for p in self.pairs:
            w.writerow(["pair", csv_safe(p.source_id), csv_safe(p.a), csv_safe(p.b), f"{p.similarity:.3f}", "", ""])
        for c in self.unpaired_a:
            w.writerow(["only_a", "", csv_safe(c), "", "", "", ""])
        for c in self.unpaired_b:
            w.writerow(["only_b", "", "", csv_safe(c), "", "", ""])
        return out.getvalue()


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def _greedy(candidates: list[tuple[float, Row, Row]], threshold: float) -> list[tuple[float, Row, Row]]:
    used_a: set[int] = set()
    used_b: set[int] = set()
    chosen = []
    for score, a, b in sorted(candidates, key=lambda t: (-t[0], t[1].number, t[2].number)):
        if score < threshold or a.number in used_a or b.number in used_b:
            continue
        used_a.add(a.number)
        used_b.add(b.number)
        chosen.append((score, a, b))
    return sorted(chosen, key=lambda t: t[1].number)


def compare_workbooks(wa: Workbook, wb: Workbook, threshold: float = 0.5) -> Comparison:
    result = Comparison()
    cand = [(cmo_similarity(a, b), a, b) for a in wa.rows("cmocs") for b in wb.rows("cmocs")
            if _norm(a.get("source_id")) == _norm(b.get("source_id"))]
    chosen = _greedy(cand, threshold)
    paired_a = {a.number for _, a, _ in chosen}
    paired_b = {b.number for _, _, b in chosen}
    result.pairs = [Pair(a.get("source_id"), a.get("cmoc_id"), b.get("cmoc_id"), round(s, 3)) for s, a, b in chosen]
    result.unpaired_a = [r.get("cmoc_id") for r in wa.rows("cmocs") if r.number not in paired_a]
    result.unpaired_b = [r.get("cmoc_id") for r in wb.rows("cmocs") if r.number not in paired_b]
    n = len(chosen)
    for f in TEXT_FIELDS:
        agree = sum(_norm(a.get(f)) == _norm(b.get(f)) for _, a, b in chosen)
        result.fields.append(FieldAgreement(f, n, agree / n if n else None))
    for f in SET_FIELDS:
        sets = [(_set(a.get(f)), _set(b.get(f))) for _, a, b in chosen]
        concepts = sorted(set().union(*(x | y for x, y in sets))) if sets else []
        decisions = [(str(c in x), str(c in y)) for x, y in sets for c in concepts]
        agree = sum(x == y for x, y in sets)
        result.fields.append(FieldAgreement(f, n, agree / n if n else None, cohen_kappa(decisions)))
    # evidence: pair quotes within paired CMOCs
    ev_a: dict[str, list[Row]] = {}
    ev_b: dict[str, list[Row]] = {}
    for r in wa.rows("evidence"):
        ev_a.setdefault(_norm(r.get("cmoc_id")), []).append(r)
    for r in wb.rows("evidence"):
        ev_b.setdefault(_norm(r.get("cmoc_id")), []).append(r)
    ev_pairs: list[tuple[float, Row, Row]] = []
    for _, a, b in chosen:
        cand_e = [(similarity(x.get("quote"), y.get("quote")), x, y) for x in ev_a.get(_norm(a.get("cmoc_id")), [])
                  for y in ev_b.get(_norm(b.get("cmoc_id")), [])]
        ev_pairs += _greedy(cand_e, threshold)
    result.evidence_pairs = [Pair(x.get("source_id"), x.get("evidence_id"), y.get("evidence_id"), round(s, 3))
                             for s, x, y in ev_pairs]
    m = len(ev_pairs)
    for f in EVIDENCE_FIELDS:
        values = [(_norm(x.get(f)), _norm(y.get(f))) for _, x, y in ev_pairs]
        agree = sum(x == y for x, y in values)
        result.fields.append(FieldAgreement(f, m, agree / m if m else None, cohen_kappa(values)))
    return result
