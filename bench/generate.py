"""Synthetic evidence bases in the real workbook format (sources.csv, cmocs.csv, evidence.csv per workbook).

Each workbook is one synthetic realist review: the review document, a few studies it cites, CMOCs
(context, mechanism resource and reasoning, outcome, framework setting and resource, a chain link to the
previous CMOC, a programme theory) and two verbatim evidence fragments per CMOC, one quoting the study. The
values are drawn from a seeded generator, so a size always yields the same files.

    python bench/generate.py --cmocs 10000 --out var/bench/10k    # 100 workbooks of 100 CMOCs
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

SOURCES = ["source_id", "type", "title", "authors", "year", "venue", "doi", "pmid", "url", "cited_by"]
CMOCS = ["cmoc_id", "source_id", "label", "statement", "context", "mechanism_resource", "mechanism_reasoning",
         "outcome", "setting", "framework_resource", "leads_to", "programme_theory", "extracted_by", "extracted_on"]
EVIDENCE = ["evidence_id", "cmoc_id", "source_id", "quote", "page", "section", "relation", "interpretive_level",
            "relevance", "rigour"]
SETTINGS = ["general practice", "link workers", "community sector"]
RESOURCES = ["leadership", "stable funding", "trustful interactions", "buy-in"]
WORDS = [
    "patients", "link", "workers", "trust", "referral", "community", "groups", "loneliness", "wellbeing",
    "confidence", "funding", "volunteers", "continuity", "training", "supervision", "caseload", "outcomes",
    "engagement", "belonging", "isolation",
]
STUDIES_PER_REVIEW = 4


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize()


def write_workbook(folder: Path, index: int, cmocs: int, rng: random.Random, prefix: str = "syn") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    review = f"{prefix}{index:05d}"
    studies = [f"{review}s{j}" for j in range(STUDIES_PER_REVIEW)]
    with (folder / "sources.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(SOURCES)
        w.writerow([review, "review", f"A synthetic realist review {index}", "Doe, J.; Roe, R.", 2020 + index % 6,
                    "Synthetic Reviews", f"10.5555/{review}", "", "", ""])
        for j, s in enumerate(studies):
            w.writerow([s, "study", f"Study {j} of review {index}: {_text(rng, 6)}", "Poe, P.", 2015 + j,
                        "Synthetic Studies", f"10.5555/{s}", "", "", review])
    quotes: dict[str, str] = {}
    with (folder / "cmocs.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CMOCS)
        for k in range(cmocs):
            cid = f"{review}-c{k}"
            statement = f"When {_text(rng, 8).lower()}, {_text(rng, 10).lower()}."
            quotes[cid] = statement
            w.writerow([cid, review, f"CMOC {k}", statement, _text(rng, 8), _text(rng, 6), _text(rng, 8),
                        _text(rng, 7), rng.choice(SETTINGS), rng.choice(RESOURCES),
                        f"{review}-c{k - 1}" if k and k % 5 else "", f"theory {k % 3}", "bench generator",
                        "2026-01-01"])
    with (folder / "evidence.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(EVIDENCE)
        for k in range(cmocs):
            cid = f"{review}-c{k}"
            w.writerow([f"{cid}-e1", cid, review, quotes[cid], "", "Results", "supports", "reviewer", "high",
                        "moderate"])
            w.writerow([f"{cid}-e2", cid, rng.choice(studies), _text(rng, 14), str(1 + k % 20), "Findings",
                        rng.choice(["supports", "supports", "refutes"]), rng.choice(["participant", "author"]),
                        rng.choice(["high", "moderate", "low"]), rng.choice(["high", "moderate", "low"])])


def generate(out: Path, cmocs: int, per_workbook: int = 100, seed: int = 1) -> list[Path]:
    """`cmocs` CMOCs in workbooks of `per_workbook` under out/workbooks/; returns the workbook folders."""
    rng = random.Random(seed)
    folders = []
    for i in range((cmocs + per_workbook - 1) // per_workbook):
        folder = out / "workbooks" / f"{i:05d}"
        write_workbook(folder, i, min(per_workbook, cmocs - i * per_workbook), rng)
        folders.append(folder)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cmocs", type=int, required=True)
    parser.add_argument("--per-workbook", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    folders = generate(args.out, args.cmocs, args.per_workbook)
    print(f"wrote {len(folders)} workbook(s), {args.cmocs} CMOCs under {args.out}/workbooks")


if __name__ == "__main__":
    main()
