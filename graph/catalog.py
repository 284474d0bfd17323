"""Named SPARQL queries kept as documented ``.rq`` files, and safe binding of their parameters.

The catalog (``queries/catalog/*.rq``) answers research questions; the quality checks
(``queries/qc/*-violation.rq``) must return no rows on a correct graph. Every file starts with a comment
header (format in ``queries/README.md``) that this module parses into a :class:`NamedQuery`, so the CLI,
the web app and the tests all read one source.

Parameters never become query text: :func:`bind` turns each value into an RDF term of the declared type and
:func:`run` hands the terms to ``pyoxigraph.Store.query(substitutions=...)`` (SEP-0007), which is why a
parameter has to appear in the query's SELECT projection.

Listings stay usable on large graphs through paging: :func:`page` validates ``limit`` and ``offset`` as
non-negative integers and :func:`paged_text` appends them as ``LIMIT``/``OFFSET`` clauses built from those
integers (never from the text the caller gave), so catalog queries may not carry their own.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyoxigraph as ox

XSD = "http://www.w3.org/2001/XMLSchema#"
Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple
"""What ``Store.query(substitutions=...)`` accepts as a variable's value."""
QUERIES_ROOT = Path(__file__).resolve().parent.parent / "queries"

PARAM_TYPES = ("string", "integer", "decimal", "boolean", "date", "iri")
"""Declared parameter types and the RDF term each becomes (see :func:`convert`)."""

HEADER_KEYS = ("title", "description", "param", "example")
PAGING = ("limit", "offset")
"""Names reserved for paging: no query parameter may take them."""
MAX_PAGING = 10**9
"""The largest ``limit`` or ``offset`` accepted (the SPARQL engine takes them as machine integers)."""
NO_DEFAULT = "-"
REQUIRED = "(required)"

_KEY_LINE = re.compile(r"^# ([a-z]+):(?:\s(.*))?$")
_CONTINUATION = re.compile(r"^#\s{2,}(\S.*)$")
_VARNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_BOOLEAN = {"true": "true", "false": "false", "1": "true", "0": "false"}
_OWN_PAGING = re.compile(r"\b(?:LIMIT|OFFSET)\s+[0-9]+\s*$", re.IGNORECASE)
# An absolute IRI: a scheme, then no character that RFC 3987 forbids or that could end an IRIREF token.
_IRI = re.compile(r'^[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x20<>"{}|^`\\\x7f]+$')


class CatalogError(ValueError):
    """A query file whose header is malformed; the message names the file and the line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.reason = message
        super().__init__(f"{path}:{line}: {message}")


class ParameterError(ValueError):
    """A parameter value that cannot be bound: unknown name, missing required value or wrong type."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.reason = message
        super().__init__(f"parameter {name!r}: {message}")


@dataclass(frozen=True)
class Parameter:
    """One ``# param:`` line: a SPARQL variable of the same name that :func:`bind` may substitute."""

    name: str
    type: str
    default: str | None
    description: str
    required: bool = False


@dataclass(frozen=True)
class Page:
    """Which rows of a result to return: at most ``limit`` (``None``: all) after skipping ``offset``."""

    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class NamedQuery:
    """One ``.rq`` file: its header (title, description, parameters, example) and its SPARQL text.

    ``kind`` is ``"catalog"`` for research questions and ``"qc"`` for quality checks.
    """

    name: str
    path: Path
    title: str
    description: str
    parameters: tuple[Parameter, ...]
    example: str
    text: str
    kind: str
    example_values: Mapping[str, str] = field(default_factory=dict)
    """The example command's ``--param name=value`` pairs, so tests and UIs can run the example."""

    def parameter(self, name: str) -> Parameter:
        for param in self.parameters:
            if param.name == name:
                return param
        raise ParameterError(name, f"unknown parameter; {self.name} takes {_names(self)}")


def _names(query: NamedQuery) -> str:
    return ", ".join(p.name for p in query.parameters) or "no parameters"


def load_catalog(root: Path | None = None) -> dict[str, NamedQuery]:
    """The research questions in ``{root}/catalog``, by name (the file stem), sorted by name."""
    return _load_folder((root or QUERIES_ROOT) / "catalog", "catalog")


def load_qc(root: Path | None = None) -> dict[str, NamedQuery]:
    """The quality checks ``{root}/qc/*-violation.rq`` by name; each returns no rows on a correct graph."""
    return _load_folder((root or QUERIES_ROOT) / "qc", "qc")


def _load_folder(folder: Path, kind: str) -> dict[str, NamedQuery]:
    pattern = "*-violation.rq" if kind == "qc" else "*.rq"
    return {query.name: query for query in (load_query(p, kind) for p in sorted(folder.glob(pattern)))}


def load_query(path: Path, kind: str = "catalog") -> NamedQuery:
    """Parse one query file; raises :class:`CatalogError` naming the file and line of a malformed header."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    fields: dict[str, list[str]] = {key: [] for key in HEADER_KEYS}
    field_lines: dict[str, list[int]] = {key: [] for key in HEADER_KEYS}
    last: str | None = None
    for number, line in enumerate(lines, start=1):
        if not line.startswith("#"):
            break
        if line.strip() == "#":
            last = None
            continue
        continuation = _CONTINUATION.match(line)
        if continuation:
            if last is None:
                raise CatalogError(path, number, "continuation line with no header field before it")
            fields[last][-1] += " " + continuation.group(1).strip()
            continue
        key_line = _KEY_LINE.match(line)
        if not key_line:
            raise CatalogError(
                path,
                number,
                "expected '# key: value' (keys: " + ", ".join(HEADER_KEYS) + ") or a continuation",
            )
        key, value = key_line.group(1), (key_line.group(2) or "").strip()
        if key not in fields:
            raise CatalogError(path, number, f"unknown header key {key!r} (keys: {', '.join(HEADER_KEYS)})")
        if key != "param" and fields[key]:
            raise CatalogError(path, number, f"header key {key!r} given twice")
        if not value:
            raise CatalogError(path, number, f"header key {key!r} has no value")
        fields[key].append(value)
        field_lines[key].append(number)
        last = key
    required = ("title", "description") if kind == "qc" else ("title", "description", "example")
    for key in required:
        if not fields[key]:
            raise CatalogError(path, 1, f"header has no '# {key}:' line")
    body = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    params: list[Parameter] = []
    for value, number in zip(fields["param"], field_lines["param"], strict=True):
        param = _parse_param(path, number, value, body)
        if any(p.name == param.name for p in params):
            raise CatalogError(path, number, f"parameter {param.name!r} declared twice")
        params.append(param)
    if _OWN_PAGING.search(body.rstrip()):
        raise CatalogError(path, len(lines), "the query ends in LIMIT/OFFSET; leave them out (paging adds them)")
    if kind == "qc" and params:
        raise CatalogError(path, field_lines["param"][0], "quality checks take no parameters")
    example = fields["example"][0] if fields["example"] else ""
    example_line = field_lines["example"][0] if field_lines["example"] else 1
    values = _parse_example(path, example_line, example, params)
    return NamedQuery(
        name=path.stem,
        path=path,
        title=fields["title"][0],
        description=fields["description"][0],
        parameters=tuple(params),
        example=example,
        text=text,
        kind=kind,
        example_values=values,
    )


def _parse_param(path: Path, number: int, value: str, body: str) -> Parameter:
    parts = [part.strip() for part in value.split("|", 3)]
    if len(parts) != 4:
        raise CatalogError(path, number, "a parameter is 'name | type | default | description'")
    name, type_, default, description = parts
    if not _VARNAME.match(name):
        raise CatalogError(path, number, f"parameter name {name!r} is not a SPARQL variable name")
    if name.lower() in PAGING:
        raise CatalogError(path, number, f"parameter name {name!r} is reserved for paging")
    if type_ not in PARAM_TYPES:
        raise CatalogError(path, number, f"parameter type {type_!r} is not one of {', '.join(PARAM_TYPES)}")
    if not description:
        raise CatalogError(path, number, f"parameter {name!r} has no description")
    required = default == REQUIRED
    value_default = None if default in (NO_DEFAULT, REQUIRED, "") else default
    param = Parameter(name, type_, value_default, description, required)
    if param.default is not None:
        try:
            convert(param, param.default)
        except ParameterError as error:
            raise CatalogError(path, number, f"default of {name!r}: {error.reason}") from None
    var = rf"[?$]{name}\b"
    if not re.search(var, body):
        raise CatalogError(path, number, f"parameter {name!r} is not used as ?{name} in the query")
    projection = re.search(r"\bSELECT\b(.*?)(?:\bWHERE\b|\{)", body, re.IGNORECASE | re.DOTALL)
    selected = projection.group(1).strip() if projection else "*"
    if selected not in ("*", "DISTINCT *", "REDUCED *") and not re.search(var, selected):
        raise CatalogError(
            path,
            number,
            f"parameter ?{name} must be in the SELECT projection (Oxigraph substitutes only those)",
        )
    # Oxigraph folds these before substituting, so they would always see the parameter as unbound.
    if re.search(rf"\bBOUND\s*\(\s*{var}\s*\)", body, re.IGNORECASE) or re.search(
        rf"\bBIND\s*\(\s*{var}\s+AS\b", body, re.IGNORECASE
    ):
        raise CatalogError(
            path,
            number,
            f"BOUND(?{name}) and BIND(?{name} AS …) ignore the substituted value; use COALESCE(…, true)",
        )
    return param


def _parse_example(path: Path, number: int, example: str, params: list[Parameter]) -> dict[str, str]:
    try:
        words = shlex.split(example)
    except ValueError as error:
        raise CatalogError(path, number, f"example is not a shell command: {error}") from None
    values: dict[str, str] = {}
    for flag, word in itertools.pairwise(words):
        if flag != "--param":
            continue
        name, sep, value = word.partition("=")
        if not sep:
            raise CatalogError(path, number, f"example '--param {word}' is not name=value")
        param = next((p for p in params if p.name == name), None)
        if param is None:
            raise CatalogError(path, number, f"example sets unknown parameter {name!r}")
        try:
            convert(param, value)
        except ParameterError as error:
            raise CatalogError(path, number, f"example value of {name!r}: {error.reason}") from None
        values[name] = value
    return values


def convert(param: Parameter, value: str) -> ox.NamedNode | ox.Literal:
    """The RDF term for a textual value of ``param``'s type; :class:`ParameterError` if it is not one."""
    kind = param.type
    if kind == "string":
        return ox.Literal(value)
    text = value.strip()
    if kind == "integer":
        if not _INTEGER.match(text):
            raise ParameterError(param.name, f"{value!r} is not an integer")
        return ox.Literal(str(int(text)), datatype=ox.NamedNode(XSD + "integer"))
    if kind == "decimal":
        if not _DECIMAL.match(text):
            raise ParameterError(param.name, f"{value!r} is not a decimal number")
        return ox.Literal(text, datatype=ox.NamedNode(XSD + "decimal"))
    if kind == "boolean":
        if text.lower() not in _BOOLEAN:
            raise ParameterError(param.name, f"{value!r} is not a boolean (true/false)")
        return ox.Literal(_BOOLEAN[text.lower()], datatype=ox.NamedNode(XSD + "boolean"))
    if kind == "date":
        try:
            parsed = date.fromisoformat(text) if _DATE.match(text) else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise ParameterError(param.name, f"{value!r} is not a date (YYYY-MM-DD)")
        return ox.Literal(parsed.isoformat(), datatype=ox.NamedNode(XSD + "date"))
    if kind == "iri":
        if not _IRI.match(value):
            raise ParameterError(param.name, f"{value!r} is not an absolute IRI")
        try:
            return ox.NamedNode(value)
        except ValueError as error:
            raise ParameterError(param.name, f"{value!r} is not an absolute IRI: {error}") from None
    raise ParameterError(param.name, f"unsupported type {kind!r}")


def bind(query: NamedQuery, values: Mapping[str, str]) -> dict[ox.Variable, Term]:
    """Substitutions for ``Store.query``: each value converted by its declared type, defaults filled in.

    An empty value counts as absent. A parameter with neither value nor default stays unbound (the query
    treats it as "any") unless it is declared ``(required)``.
    """
    for name in values:
        query.parameter(name)
    bound: dict[ox.Variable, Term] = {}
    for param in query.parameters:
        value = values.get(param.name)
        if value is None or value == "":
            value = param.default
        if value is None:
            if param.required:
                raise ParameterError(param.name, f"required by {query.name} ({param.description})")
            continue
        bound[ox.Variable(param.name)] = convert(param, value)
    return bound


def page(limit: str | int | None = None, offset: str | int | None = None) -> Page:
    """A validated :class:`Page`; :class:`ParameterError` naming ``limit`` or ``offset`` when either is not a
    whole number from 0 to :data:`MAX_PAGING`. ``None`` or an empty value means no limit / offset 0."""
    return Page(_paging_number("limit", limit), _paging_number("offset", offset) or 0)


def _paging_number(name: str, value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise ParameterError(name, f"{value!r} is not a whole number of rows (0 or more)")
    number = int(text)
    if number > MAX_PAGING:
        raise ParameterError(name, f"{number} is more than {MAX_PAGING}")
    return number


def paged_text(query: NamedQuery, rows: Page | None = None) -> str:
    """The query's text with ``LIMIT``/``OFFSET`` clauses for ``rows`` appended (written from integers)."""
    if rows is None or (rows.limit is None and not rows.offset):
        return query.text
    clauses = ([f"LIMIT {int(rows.limit)}"] if rows.limit is not None else []) + (
        [f"OFFSET {int(rows.offset)}"] if rows.offset else []
    )
    return query.text.rstrip() + "\n" + "\n".join(clauses) + "\n"


def run(
    store: ox.Store, query: NamedQuery, values: Mapping[str, str] | None = None, rows: Page | None = None
) -> ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples:
    """Evaluate a named query over the union of all named graphs with its parameters bound safely, optionally
    one page of its rows."""
    substitutions = bind(query, values or {})
    return store.query(
        paged_text(query, rows), substitutions=substitutions or None, use_default_graph_as_union=True
    )
