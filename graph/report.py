"""Validation findings, from the workbook reader and from SHACL, in one shape reviewers can act on."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["Violation", "Warning", "Info"]
SEVERITY_ORDER = {"Violation": 0, "Warning": 1, "Info": 2}


@dataclass(frozen=True)
class Finding:
    """One problem, located where a reviewer can find it: sheet, row (as the spreadsheet numbers it), column."""

    severity: Severity
    message: str
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    value: str | None = None
    focus_node: str | None = None
    path: str | None = None
    source_shape: str | None = None
    origin: str = "reader"  # "reader" (reading the workbook) or "shacl" (validating its triples)

    def location(self) -> str:
        parts = []
        if self.sheet:
            parts.append(f"sheet {self.sheet}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def sort_key(self) -> tuple[int, str, int, str, str]:
        return (
            SEVERITY_ORDER[self.severity],
            self.sheet or "",
            self.row if self.row is not None else 0,
            self.column or "",
            self.message,
        )


@dataclass
class Report:
    """All findings for one input; `conforms` is False as soon as one finding is a violation."""

    input_name: str
    findings: list[Finding] = field(default_factory=list)
    unreadable: bool = False
    checked_triples: int = 0
    # What importing it would change (`cmokg validate` and /review set them; graph.validate.Validated):
    # the batches it supersedes, and one dict per change. None: not told, and left out of to_dict.
    supersedes: list[str] | None = None
    changes: list[dict[str, object]] | None = None

    def extend(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "Violation"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "Warning"]

    @property
    def conforms(self) -> bool:
        return not self.unreadable and not self.violations

    def sorted(self) -> list[Finding]:
        return sorted(set(self.findings), key=Finding.sort_key)

    def exit_code(self) -> int:
        """0 ok (warnings allowed), 1 violations, 2 unreadable input."""
        if self.unreadable:
            return 2
        return 1 if self.violations else 0

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "input": self.input_name,
            "conforms": self.conforms,
            "unreadable": self.unreadable,
            "violations": len(self.violations),
            "warnings": len(self.warnings),
            "results": [asdict(f) for f in self.sorted()],
        }
        if self.changes is not None:
            out["supersedes"] = list(self.supersedes or [])
            out["changes"] = self.changes
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        cols = ["severity", "sheet", "row", "column", "message", "value", "focus_node", "path"]
        writer.writerow(cols)
        for f in self.sorted():
            d = asdict(f)
            writer.writerow([csv_safe("" if d[c] is None else str(d[c])) for c in cols])
        return out.getvalue()


CHANGE_TEXT_CHARS = 60


def change_text(row: dict[str, object], width: int = CHANGE_TEXT_CHARS) -> str:
    """A change's (`Report.changes`) label, title or quote on one line, each shortened to `width`: for a node
    whose text changed, before → after."""
    def joined(key: str) -> str:
        texts = row.get(key) or []
        return " | ".join(str(t) for t in texts) if isinstance(texts, list) else str(texts)

    def cut(text: str) -> str:
        return text if len(text) <= width else text[:width - 1] + "…"

    now, former = joined("texts"), joined("former_texts")
    if row.get("change") == "changed" and former and former != now:
        return f"{cut(former)} → {cut(now)}"
    return cut(now or former)


def change_counts(rows: Iterable[dict[str, object]]) -> list[tuple[str, str, int]]:
    """(change, kind, how many) of `Report.changes`, in their order (changed, gone, new; by kind)."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (str(row["change"]), str(row["kind"]))
        counts[key] = counts.get(key, 0) + 1
    return [(change, kind, n) for (change, kind), n in counts.items()]


def csv_safe(text: str) -> str:
    """Neutralise spreadsheet formula injection: a cell starting with = + - @ (or tab/CR) is prefixed by '."""
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text
