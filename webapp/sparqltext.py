"""Just enough lexical analysis of SPARQL text for the endpoint's safety and dataset rules.

pyoxigraph parses queries only when it runs them, and the endpoint must decide some things before: which
SERVICE endpoints a query would call (refused unless allow-listed), which URLs a LOAD would fetch, whether a
query names its own dataset (FROM / FROM NAMED), whether an update has USING / WITH, and where to add the
USING clauses of the protocol's `using-graph-uri`. A tokenizer that skips comments, strings and IRIs is enough
for that: keywords are only keywords outside them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

_TOKEN = re.compile(
    r"""
     (?P<ws>\s+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*'''
               |"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
    |(?P<var>[?$]\w+)
    |(?P<pname>(?:[A-Za-z][\w.-]*)?:(?:[\w:%.-]|\\.)*)
    |(?P<word>[A-Za-z_]\w*)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # comment, string, iri, var, pname, word, other
    text: str
    start: int
    depth: int  # brace depth before the token

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def tokens(text: str) -> Iterator[Token]:
    depth = 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        value = m.group()
        yield Token(kind, value, m.start(), depth)
        if value == "{":
            depth += 1
        elif value == "}":
            depth = max(0, depth - 1)


def _prefixes(toks: list[Token]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, t in enumerate(toks[:-2]):
        if t.is_word("PREFIX") and toks[i + 1].kind == "pname" and toks[i + 2].kind == "iri":
            out[toks[i + 1].text.rstrip(":")] = toks[i + 2].text[1:-1]
    return out


def _base(toks: list[Token], base: str | None) -> str | None:
    for i, t in enumerate(toks[:-1]):
        if t.is_word("BASE") and toks[i + 1].kind == "iri":
            base = urljoin(base or "", toks[i + 1].text[1:-1])
    return base


def _resolve(tok: Token, prefixes: dict[str, str], base: str | None) -> str | None:
    if tok.kind == "iri":
        return urljoin(base or "", tok.text[1:-1])
    if tok.kind == "pname":
        prefix, _, local = tok.text.rstrip(".").partition(":")
        if prefix in prefixes:
            return urljoin(base or "", prefixes[prefix] + local)
    return None


def remote_targets(text: str, base: str | None = None) -> list[tuple[str, str | None]]:
    """Every place the text would make the server send a request: (keyword, IRI or None if not constant).

    `SERVICE [SILENT] <iri>` in queries and updates, `LOAD [SILENT] <iri>` in updates.
    """
    lowered = text.lower()
    if "service" not in lowered and "load" not in lowered:  # no such keyword possible: skip tokenizing
        return []
    if len(text) <= _MEMO_TEXT:
        return list(_remote_targets_memo(text, base))
    return _remote_targets(text, base)


# Tokenizing is pure Python (up to ~9 ms for a 4 KB catalog query, holding the GIL in the web process): the
# answers for short texts, which clients repeat, are kept (at most 128 texts of 8 KB).
_MEMO_TEXT = 8192


@functools.lru_cache(maxsize=128)
def _remote_targets_memo(text: str, base: str | None) -> tuple[tuple[str, str | None], ...]:
    return tuple(_remote_targets(text, base))


@functools.lru_cache(maxsize=128)
def _has_from_memo(text: str) -> bool:
    return any(t.is_word("FROM") for t in tokens(text))


def _remote_targets(text: str, base: str | None) -> list[tuple[str, str | None]]:
    toks = list(tokens(text))
    prefixes, base = _prefixes(toks), _base(toks, base)
    out: list[tuple[str, str | None]] = []
    for i, t in enumerate(toks):
        if t.is_word("SERVICE", "LOAD"):
            j = i + 1
            if j < len(toks) and toks[j].is_word("SILENT"):
                j += 1
            target = _resolve(toks[j], prefixes, base) if j < len(toks) else None
            out.append((t.text.upper(), target))
    return out


def has_dataset_clause(text: str) -> bool:
    """The query names its dataset itself (FROM / FROM NAMED)."""
    if "from" not in text.lower():
        return False
    if len(text) <= _MEMO_TEXT:
        return _has_from_memo(text)
    return any(t.is_word("FROM") for t in tokens(text))


def has_using_or_with(text: str) -> bool:
    return any(t.is_word("USING", "WITH") for t in tokens(text))


def add_using(text: str, default_graphs: list[str], named_graphs: list[str]) -> str:
    """Put the protocol's `using-graph-uri` / `using-named-graph-uri` as USING clauses into every
    DELETE/INSERT … WHERE operation (SPARQL 1.1 Protocol §2.2.3: they act as if given by USING)."""
    clauses = "".join(f"USING <{g}> " for g in default_graphs) + "".join(
        f"USING NAMED <{g}> " for g in named_graphs
    )
    toks = list(tokens(text))
    inserts: list[int] = []
    for i, t in enumerate(toks):
        if t.is_word("WHERE") and t.depth == 0 and not (i > 0 and toks[i - 1].is_word("DELETE")):
            inserts.append(t.start)
    for pos in reversed(inserts):
        text = text[:pos] + clauses + text[pos:]
    return text
