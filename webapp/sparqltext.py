"""Just enough lexical analysis of SPARQL text for the endpoint's safety and dataset rules.

pyoxigraph parses queries only when it runs them, and the endpoint must decide some things before: which
SERVICE endpoints a query would call (refused unless allow-listed), which URLs a LOAD would fetch, whether a
query names its own dataset (FROM / FROM NAMED), whether an update has USING / WITH, and where to add the
USING clauses of the protocol's `using-graph-uri`. A tokenizer that skips comments, strings and IRIs is enough
for that: keywords are only keywords outside them. IRIs are read in document order and resolved by Oxigraph's
own IRI resolution, as the query's parser will resolve them (pyoxigraph offers no parse-only API).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyoxigraph as ox

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


@functools.lru_cache(maxsize=256)
def resolve_iri(ref: str, base: str | None) -> str | None:
    """`ref` resolved against `base` exactly as Oxigraph resolves the IRIs of a query (RFC 3986, by Oxigraph's
    own IRI parser, reached through its Turtle parser: Python's urljoin differs from RFC 3986 in corner
    cases); None when it cannot be resolved (relative without a base, or not an IRI)."""
    data = f"<{ref}> <urn:x:p> <urn:x:o> .".encode()
    try:
        subject = next(iter(ox.parse(data, ox.RdfFormat.TURTLE, base_iri=base or None))).subject
    except (SyntaxError, ValueError, StopIteration):
        return None
    return subject.value if isinstance(subject, ox.NamedNode) else None


_PN_LOCAL_ESCAPE = re.compile(r"\\(.)")


def _expand(tok: Token, prefixes: dict[str, str | None], base: str | None) -> str | None:
    """The IRI of an IRI or prefixed-name token, with the prefixes and base in force where it stands."""
    if tok.kind == "iri":
        return resolve_iri(tok.text[1:-1], base)
    if tok.kind == "pname":
        prefix, _, local = tok.text.rstrip(".").partition(":")
        namespace = prefixes.get(prefix)
        if namespace is not None:
            return resolve_iri(namespace + _PN_LOCAL_ESCAPE.sub(r"\1", local), base)
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
    """Read in document order, as the SPARQL parser reads: each BASE is resolved against the BASE before it,
    each PREFIX IRI against the BASE in force where it is declared (and a later PREFIX of the same name
    replaces it, as between the operations of an update), each SERVICE / LOAD target with the prefixes and
    BASE in force where it stands."""
    toks = list(tokens(text))
    prefixes: dict[str, str | None] = {}
    out: list[tuple[str, str | None]] = []
    for i, t in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if t.is_word("BASE") and nxt is not None and nxt.kind == "iri":
            base = resolve_iri(nxt.text[1:-1], base)
        elif (t.is_word("PREFIX") and nxt is not None and nxt.kind == "pname" and i + 2 < len(toks)
              and toks[i + 2].kind == "iri"):
            prefixes[nxt.text.partition(":")[0]] = resolve_iri(toks[i + 2].text[1:-1], base)
        elif t.is_word("SERVICE", "LOAD"):
            j = i + 1
            if j < len(toks) and toks[j].is_word("SILENT"):
                j += 1
            target = _expand(toks[j], prefixes, base) if j < len(toks) else None
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
