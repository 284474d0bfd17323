"""A remote store: any SPARQL 1.1 endpoint (Oxigraph server, Virtuoso, ...) behind the Backend interface.

Queries go through SPARQLWrapper (SPARQL Protocol, POST, results as SPARQL XML) and come back as the same
pyoxigraph objects the embedded store returns (QuerySolutions, QueryBoolean, QueryTriples), so the CLI and
the web app serialize them the same way. Writes go as SPARQL Update (or, on an Oxigraph server, N-Quads to
the Graph Store Protocol endpoint), in chunks.

A graph is replaced in one update request when it fits in one chunk (one request is one transaction on the
Oxigraph server; on Virtuoso a request it refuses to compile changes nothing, but one whose later operation
fails as it runs keeps what the earlier operations did); a larger graph is written chunk by chunk into a
staging graph and moved into place by one final `MOVE` request, so the target graph switches from old to new
in one step. An import batch (`write_batch`) also drops the batches it supersedes: the same staging, then one
request that moves the batch into place first and drops the superseded graphs after, so that no failure
loses a graph (see there).

Dialects: `oxigraph` (the union of the named graphs is asked for with the `union-default-graph` parameter),
`virtuoso` (the union is native; Virtuoso's own system graphs are kept out of counts, dumps and clearing by
`graph_prefix`; blank nodes cannot be written with INSERT DATA, so chunks holding them use INSERT ... WHERE {};
its `nodeID://` blank-node labels are rewritten), `generic` (default-graph-uri lists the named graphs).
"""

from __future__ import annotations

import ast
import re
import urllib.error
import urllib.request
import uuid
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

import pyoxigraph as ox
import requests
from requests.auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth
from SPARQLWrapper import BASIC, DIGEST, POST, URLENCODED, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import QueryBadFormed, SPARQLWrapperException

from .backend import STAGING_PREFIX, Backend, QueryResult, StoreError
from .namespaces import BASE

DIALECTS = ("oxigraph", "virtuoso", "generic")
DEFAULT_CHUNK = 5000
# Virtuoso 7.2 compiles INSERT DATA into SQL of about 7 lines per triple and refuses a request past 10000 lines
# ("SP031: The length of generated SQL text has exceeded 10000 lines of code"): 1426 triples at most, whatever
# the terms (measured on 07.20.3229). Its chunks are capped below that.
VIRTUOSO_CHUNK = 1000
EMPTY_GRAPH = "urn:cmokg:empty-default-graph"
XML_RESULTS = "application/sparql-results+xml"

# An IRIREF token (SPARQL grammar [139]); anything else starting with '<' is an operator.
_IRIREF = re.compile(r'<[^<>"{}|^`\\\x00-\x20]*>')
_STRING = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^\'\\]|\\.|\'(?!\'\'))*\'\'\'|"(?:[^"\\\n]|\\.)*"'
                     r"|'(?:[^'\\\n]|\\.)*'", re.S)
_KEYWORD_BEFORE = re.compile(r"([A-Za-z]+)\s*$")


# One SPARQL token that may hold a '#' that is not a comment (strings, IRIs), a comment, or plain text.
_SPARQL_TOKEN = re.compile(
    "|".join((
        r'"""(?:[^"\\]|\\.|"(?!""))*"""',  # long strings
        r"'''(?:[^'\\]|\\.|'(?!''))*'''",
        r'"(?:[^"\\\n]|\\.)*"',  # short strings
        r"'(?:[^'\\\n]|\\.)*'",
        r'<[^<>"{}|^`\\\x00-\x20]*>',  # IRIs
        r"#[^\n]*",  # a comment
        r"[^\"'<#]+",
        r".",
    )),
    re.S,
)


def strip_comments(sparql: str) -> str:
    """The query without its comments (strings and IRIs kept whole, line breaks kept).

    SPARQLWrapper picks SELECT/ASK/CONSTRUCT/DESCRIBE or an update from the first keyword it finds after its own
    comment cleaning, which misses some comment lines: a header saying "what was added" made it send a SELECT
    as an update. Without comments the first keyword is the query form.
    """
    return "".join(t for t in _SPARQL_TOKEN.findall(sparql) if not t.startswith("#"))


def _ascii_escape(text: str) -> str:
    """Non-ASCII characters as SPARQL \\u / \\U escapes: safe whatever charset a server assumes."""
    return "".join(c if ord(c) < 128 else (f"\\u{ord(c):04X}" if ord(c) < 0x10000 else f"\\U{ord(c):08X}")
                   for c in text)


def _groups(sparql: str) -> Iterator[tuple[int, int]]:
    """(position, depth) of every '{' and '}' outside comments, strings and IRIs; depth after the brace."""
    i, depth, n = 0, 0, len(sparql)
    while i < n:
        c = sparql[i]
        if c == "#":
            j = sparql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c in "\"'":
            m = _STRING.match(sparql, i)
            if m:
                i = m.end()
                continue
        if c == "<":
            m = _IRIREF.match(sparql, i)
            if m:
                i = m.end()
                continue
        if c == "{":
            depth += 1
            yield i, depth
        elif c == "}":
            depth -= 1
            yield i, depth
        i += 1


def inject_values(sparql: str, substitutions: Mapping[ox.Variable, object]) -> str:
    """Bind variables as the embedded store's `substitutions` do, for an endpoint: a VALUES block at the top
    of the query's outermost WHERE group, so FILTERs and the projection see the bound values."""
    if not substitutions:
        return sparql
    names = " ".join(f"?{v.value}" for v in substitutions)
    terms = " ".join(str(t) for t in substitutions.values())
    block = f" VALUES ({names}) {{ ({terms}) }} "
    braces = list(_groups(sparql))
    opening = [pos for pos, depth in braces if depth == 1 and sparql[pos] == "{"]
    if not opening:
        raise SyntaxError("no WHERE group to bind parameters in")
    target = opening[0]
    keyword = _KEYWORD_BEFORE.search(sparql[:target])
    if keyword and keyword.group(1).upper() == "CONSTRUCT" and len(opening) > 1:
        target = opening[1]  # skip the template
    return sparql[: target + 1] + block + sparql[target + 1:]


def _server_message(exc: SPARQLWrapperException) -> str:
    """The endpoint's own words from a SPARQLWrapper exception (its text is boilerplate, then `Response:` and
    the body's bytes as a Python literal)."""
    text = str(exc)
    _, found, body = text.partition("\n\nResponse:\n")
    if not found:
        return text
    try:
        raw = ast.literal_eval(body.strip())
    except (ValueError, SyntaxError):
        return body.strip()
    return raw.decode("utf-8", "replace").strip() if isinstance(raw, bytes) else str(raw).strip()


_CALLS_OUT = re.compile(r"\b(?:SERVICE|LOAD)\b", re.IGNORECASE)


def local_syntax_error(text: str, *, update: bool = False, base_iri: str | None = None) -> SyntaxError | None:
    """pyoxigraph's SyntaxError for `text` (`error at L:C: ...`, the embedded store's words and positions), or
    None when it parses. Run on an empty in-memory store, so nothing is read or written; text that could call
    out (SERVICE, LOAD) is not tried. Used once an endpoint has refused a request as malformed: its own message
    counts lines and columns in the text as sent (with a BASE line added, non-ASCII escaped)."""
    if _CALLS_OUT.search(strip_comments(text)):
        return None
    scratch = ox.Store()
    try:
        if update:
            scratch.update(text, base_iri=base_iri)
        else:
            result = scratch.query(text, base_iri=base_iri)
            del result
    except SyntaxError as exc:
        return exc
    except Exception:  # parsed, then failed on the empty store: not a syntax error
        return None
    return None


_PROLOGUE = re.compile(r"\s*(?:(?:PREFIX\s*[^\s:]*:\s*<[^<>]*>|BASE\s*<[^<>]*>)\s*)*", re.IGNORECASE)


def with_base(text: str, base_iri: str | None) -> str:
    """`text` resolving relative IRIs against `base_iri`, as the embedded store's `base_iri` argument does:
    a BASE declaration on its first line (the endpoint's line numbers stay those of the text), unless its
    prologue declares its own (Virtuoso refuses a second BASE)."""
    if not base_iri:
        return text
    prologue = _PROLOGUE.match(strip_comments(text))
    if prologue and re.search(r"\bBASE\s*<", prologue.group(0), re.IGNORECASE):
        return text
    return f"BASE <{base_iri}> {text}"


def _nt_term(term: object) -> str:
    return str(term)


def _triple_line(s: object, p: object, o: object) -> str:
    return f"{_nt_term(s)} {_nt_term(p)} {_nt_term(o)} ."


def _has_bnode(q: ox.Quad | ox.Triple) -> bool:
    return isinstance(q.subject, ox.BlankNode) or isinstance(q.object, ox.BlankNode)


def detect_dialect(query_url: str, timeout: float = 10) -> str:
    """Which server answers: from the `Server` header of an ASK request."""
    try:
        with urllib.request.urlopen(f"{query_url}?query=ASK%7B%7D", timeout=timeout) as response:
            server = (response.headers.get("Server") or "").lower()
    except (urllib.error.URLError, OSError) as exc:
        raise StoreError(f"cannot reach the SPARQL endpoint {query_url}: {exc}") from None
    if "oxigraph" in server:
        return "oxigraph"
    if "virtuoso" in server:
        return "virtuoso"
    return "generic"


def default_update_url(query_url: str, dialect: str) -> str:
    if dialect == "oxigraph" and query_url.endswith("/query"):
        return query_url[: -len("query")] + "update"
    if dialect == "virtuoso" and query_url.endswith("/sparql"):
        return query_url + "-auth"
    return query_url


class MalformedRequest(SyntaxError):
    """The endpoint answered 400: the request is malformed in its eyes. `message` is its own text."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message[:500]}")
        self.message = message.strip()


class EndpointFailure(StoreError):
    """The endpoint answered, with an error status other than 400 (`status`); `message` is its own text."""

    def __init__(self, url: str, status: int, message: str) -> None:
        super().__init__(f"{url}: HTTP {status}: {message[:500]}")
        self.status = status
        self.message = message.strip()


class RemoteStore(Backend):
    """A SPARQL 1.1 endpoint as a cmokg store."""

    def __init__(self, query_url: str, update_url: str | None = None, *, dialect: str | None = None,
                 store_url: str | None = None, user: str | None = None, password: str | None = None,
                 auth: str = "digest", graph_prefix: str | None = None, chunk: int = DEFAULT_CHUNK,
                 timeout: float = 120) -> None:
        self.query_url = query_url
        self.dialect = dialect or detect_dialect(query_url)
        if self.dialect not in DIALECTS:
            raise StoreError(f"unknown dialect {self.dialect!r}: one of {', '.join(DIALECTS)}")
        self.update_url = update_url or default_update_url(query_url, self.dialect)
        if store_url is None and self.dialect == "oxigraph" and query_url.endswith("/query"):
            store_url = query_url[: -len("query")] + "store"
        self.store_url = store_url
        self.graph_prefix = graph_prefix if graph_prefix is not None else (BASE if self.dialect == "virtuoso" else "")
        self.takes_default_graph = self.dialect != "virtuoso"
        self.chunk = chunk
        self.timeout = timeout
        self.user, self.password, self.auth_kind = user, password, auth
        self._auth: AuthBase | None = None
        if user is not None:
            self._auth = HTTPDigestAuth(user, password or "") if auth == "digest" else HTTPBasicAuth(
                user, password or "")
        self._session = requests.Session()
        self.path = None  # no local files: the web app runs queries in the request thread, not a worker pool
        self.ox = OxigraphFacade(self)

    def __repr__(self) -> str:
        return f"RemoteStore({self.query_url!r}, dialect={self.dialect!r})"

    # -- reading ------------------------------------------------------------------------------------
    def _wrapper(self, sparql: str) -> SPARQLWrapper:
        sparql = strip_comments(sparql)  # SPARQLWrapper guesses the query form from the text, comments included
        sw = SPARQLWrapper(self.query_url)
        sw.setOnlyConneg(True)
        sw.setMethod(POST)
        sw.setRequestMethod(URLENCODED)
        sw.setTimeout(int(self.timeout))
        with warnings.catch_warnings():  # an unrecognised query form: the endpoint's 400 says why
            warnings.simplefilter("ignore")
            try:
                sw.setQuery(sparql)
            except AttributeError:
                raise SyntaxError("not a SPARQL query") from None
        if self.user is not None and self.auth_kind in ("basic", "digest"):
            sw.setHTTPAuth(DIGEST if self.auth_kind == "digest" else BASIC)
            sw.setCredentials(self.user, self.password or "")
        return sw

    def query(self, sparql: str, *, substitutions: dict[ox.Variable, object] | None = None, union: bool = True,
              default_graph: list[str] | None = None, named_graphs: list[str] | None = None,
              ) -> QueryResult:
        if substitutions:
            sparql = inject_values(sparql, substitutions)
        if self.dialect == "virtuoso":
            sparql = _ascii_escape(sparql)
        sw = self._wrapper(sparql)
        if default_graph is not None:
            for g in default_graph or [EMPTY_GRAPH]:
                sw.addParameter("default-graph-uri", g)
        elif union and self.dialect == "oxigraph" and not named_graphs:
            sw.addParameter("union-default-graph", "true")
        elif union and self.dialect == "virtuoso":
            # Virtuoso's default graph is the union of all its graphs, its system graphs (virtrdf#, ldp#, its
            # service description) included. Neither way of leaving them out works on Virtuoso 7.2: with
            # `define input:default-graph-exclude <...>`, `GRAPH <iri> {...}` patterns match nothing and some
            # catalog queries fail with "SQ200: Stack Overflow"; with the store's graphs as default-graph-uri,
            # `GRAPH <iri>` sees only the listed graphs and `ASK { GRAPH <absent> {...} }` is true. So the union
            # stays Virtuoso's; counts, dumps and clearing use `graph_prefix` instead.
            pass
        elif union:
            for g in self.named_graphs():
                sw.addParameter("default-graph-uri", g)
        elif self.dialect == "virtuoso":
            sw.addParameter("default-graph-uri", EMPTY_GRAPH)
        for g in named_graphs or []:
            sw.addParameter("named-graph-uri", g)
        kind = sw.queryType
        graph_result = kind in ("CONSTRUCT", "DESCRIBE")
        sw.addCustomHttpHeader("Accept", "application/n-triples" if graph_result else XML_RESULTS)
        try:
            response = sw.query().response
            body: bytes = response.read()
            content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        except QueryBadFormed as exc:
            raise SyntaxError(_server_message(exc)) from None
        except (SPARQLWrapperException, urllib.error.URLError, OSError) as exc:
            raise StoreError(f"{self.query_url}: {exc}") from None
        if b"nodeID://" in body:
            body = body.replace(b"<bnode>nodeID://", b"<bnode>").replace(b"_:nodeID://", b"_:")
        if graph_result:
            fmt = ox.RdfFormat.from_media_type(content_type) or ox.RdfFormat.N_TRIPLES
            return _as_query_triples(ox.parse(body, fmt))
        fmt_r = ox.QueryResultsFormat.from_media_type(content_type) or ox.QueryResultsFormat.XML
        return ox.parse_query_results(body, fmt_r)

    def _graph_filter(self, var: str = "?g") -> str:
        if not self.graph_prefix:
            return ""
        return f'FILTER(STRSTARTS(STR({var}), "{self.graph_prefix}"))'

    def _count(self, sparql: str, union: bool = True) -> int:
        result = self.query(sparql, union=union)
        assert isinstance(result, ox.QuerySolutions)
        for row in result:
            n = row[0]
            return int(n.value) if isinstance(n, ox.Literal) else 0
        return 0

    def quad_count(self) -> int:
        named = self._count(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} {self._graph_filter()} }}")
        if self.dialect == "oxigraph":
            named += self._count("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", union=False)
        return named

    def quads(self) -> set[ox.Quad]:
        return set(self._quads())

    def _quads(self, graph: str | None = None) -> Iterator[ox.Quad]:
        graphs = [graph] if graph is not None else self.named_graphs()
        if graph is None and self.dialect == "oxigraph":
            result = self.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", union=False)
            assert isinstance(result, ox.QueryTriples)
            for t in result:
                yield ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph())
        for g in graphs:
            result = self.query(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} }}")
            assert isinstance(result, ox.QueryTriples)
            name = ox.NamedNode(g)
            for t in result:
                yield ox.Quad(t.subject, t.predicate, t.object, name)

    def named_graphs(self) -> list[str]:
        result = self.query(f"SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ ?s ?p ?o }} {self._graph_filter()} }}",
                            union=False)
        assert isinstance(result, ox.QuerySolutions)
        return sorted(g.value for row in result if isinstance(g := row[0], ox.NamedNode)
                      and not g.value.startswith(STAGING_PREFIX))

    def union_graphs(self) -> list[str] | None:
        """The graphs whose union is the store's default graph, where the endpoint's own union holds more
        (Virtuoso's system graphs: virtrdf#, ldp#, its service description); None where the endpoint's union
        is the store's. For answers that describe the dataset as a whole (/store?default, /void): passed as
        the dataset, they leave the server's own graphs out."""
        return self.named_graphs() if self.graph_prefix else None

    def has_graph(self, iri: str) -> bool:
        result = self.query(f"ASK {{ GRAPH <{iri}> {{ ?s ?p ?o }} }}")
        return bool(result)

    def graph_quad_count(self, graph_iri: str) -> int:
        return self._count(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph_iri}> {{ ?s ?p ?o }} }}")

    def dump(self, out: IO[bytes], fmt: ox.RdfFormat = ox.RdfFormat.N_QUADS, graph: str | None = None) -> None:
        """Write the store (or one graph) to `out` as it arrives: the Graph Store Protocol's GET of the whole
        dataset on an Oxigraph server, otherwise one CONSTRUCT per graph, serialized graph by graph."""
        if graph is not None:
            ox.serialize((ox.Triple(q.subject, q.predicate, q.object) for q in self._quads(graph)), out, format=fmt)
            return
        if self.store_url is not None and fmt in (ox.RdfFormat.N_QUADS, ox.RdfFormat.TRIG):
            try:
                response = self._session.get(self.store_url, headers={"Accept": fmt.media_type},
                                             auth=self._auth, timeout=self.timeout, stream=True)
                self._check(response, self.store_url)
                for block in response.iter_content(1 << 20):
                    out.write(block)
            except requests.RequestException as exc:
                raise StoreError(f"{self.store_url}: {exc}") from None
            return
        ox.serialize(self._quads(), out, format=fmt)

    # -- writing ------------------------------------------------------------------------------------
    def _check(self, response: requests.Response, url: str) -> None:
        if response.status_code == 400:
            raise MalformedRequest(url, response.text[:2000])
        if response.status_code >= 300:
            raise EndpointFailure(url, response.status_code, response.text[:2000])

    def update(self, sparql: str) -> None:
        if self.dialect == "virtuoso":
            sparql = _ascii_escape(sparql)
        try:
            response = self._session.post(
                self.update_url, data=sparql.encode("utf-8"), auth=self._auth, timeout=self.timeout,
                headers={"Content-Type": "application/sparql-update; charset=utf-8"})
        except requests.RequestException as exc:
            raise StoreError(f"{self.update_url}: {exc}") from None
        self._check(response, self.update_url)

    def _insert(self, graph_iri: str, lines: list[str], bnodes: bool) -> str:
        body = "\n".join(lines)
        if bnodes and self.dialect == "virtuoso":
            return f"INSERT {{ GRAPH <{graph_iri}> {{\n{body}\n}} }} WHERE {{}}"
        return f"INSERT DATA {{ GRAPH <{graph_iri}> {{\n{body}\n}} }}"

    def _chunks(self, triples: Iterable[ox.Triple | ox.Quad]) -> Iterator[tuple[list[str], bool]]:
        """N-Triples lines in chunks of `chunk` triples (at most VIRTUOSO_CHUNK on Virtuoso); every triple
        holding a blank node goes into the first chunk, since a blank-node label only names the same node
        within one request."""
        size = min(self.chunk, VIRTUOSO_CHUNK) if self.dialect == "virtuoso" else self.chunk
        with_bnodes: list[str] = []
        plain: list[str] = []
        for t in triples:
            (with_bnodes if _has_bnode(t) else plain).append(_triple_line(t.subject, t.predicate, t.object))
        first = with_bnodes + plain[: max(0, size - len(with_bnodes))]
        yield first, bool(with_bnodes)
        for i in range(len(first) - len(with_bnodes), len(plain), size):
            yield plain[i: i + size], False

    def replace_graph(self, graph_iri: str, data: bytes, fmt: ox.RdfFormat = ox.RdfFormat.N_TRIPLES) -> None:
        chunks = list(self._chunks(ox.parse(data, fmt)))
        if len(chunks) == 1:
            lines, bnodes = chunks[0]
            ops = [f"DROP SILENT GRAPH <{graph_iri}>"]
            if lines:
                ops.append(self._insert(graph_iri, lines, bnodes))
            self.update(" ;\n".join(ops))
            return
        staging = STAGING_PREFIX + uuid.uuid4().hex
        try:
            for lines, bnodes in chunks:
                self.update(self._insert(staging, lines, bnodes))
            self.update(f"MOVE SILENT GRAPH <{staging}> TO GRAPH <{graph_iri}>")
        except BaseException as exc:
            self._abandon(staging, graph_iri, exc)
            raise

    def write_batch(self, graph_iri: str, data: bytes, drop: Sequence[str] = ()) -> None:
        """Write `data` (N-Triples) as the named graph `graph_iri`, dropping the graphs `drop` and what the
        graph held (`EvidenceStore.write_batch` on an endpoint): a failure leaves the store as it was or as it
        will be, and loses no graph on any endpoint.

        On an Oxigraph server a batch that fits in one chunk goes as one update (one request is one
        transaction there). Otherwise the batch is written chunk by chunk into a staging graph (the triples
        holding blank nodes together, see `_chunks`), then one final request moves it into place and only then
        drops the superseded graphs: on Virtuoso, where an operation failing as it runs keeps what the earlier
        operations of its request did, a failing `MOVE` drops nothing, and failing drops leave the superseded
        graphs beside the new batch (nothing lost; they are graphs the batch records it revises). A failure
        while staging drops the staging graph and leaves the store as it was.
        """
        superseded = [g for g in dict.fromkeys(drop) if g != graph_iri]
        chunks = [c for c in self._chunks(ox.parse(data, ox.RdfFormat.N_TRIPLES)) if c[0]]
        if not chunks or (len(chunks) == 1 and self.dialect == "oxigraph"):
            ops = [f"DROP SILENT GRAPH <{g}>" for g in [*superseded, graph_iri]]
            ops += [self._insert(graph_iri, lines, bnodes) for lines, bnodes in chunks]
            self.update(" ;\n".join(ops))
            return
        staging = STAGING_PREFIX + "batch-" + uuid.uuid4().hex
        try:
            for lines, bnodes in chunks:
                self.update(self._insert(staging, lines, bnodes))
        except BaseException as exc:
            self._abandon(staging, graph_iri, exc)
            raise
        switch = [f"MOVE SILENT GRAPH <{staging}> TO GRAPH <{graph_iri}>"]
        switch += [f"DROP SILENT GRAPH <{g}>" for g in superseded]
        try:
            self.update(" ;\n".join(switch))
        except BaseException as exc:
            # Refused before running (400), or answered with an error by the Oxigraph server (whose request is
            # one transaction): nothing changed, and the staging graph goes. Otherwise (connection lost, or
            # Virtuoso failing as it runs) the move may have happened or not: the staging graph, perhaps the
            # only whole copy of the batch, stays for the next push or restore to remove.
            if isinstance(exc, MalformedRequest) or (isinstance(exc, EndpointFailure) and self.dialect == "oxigraph"):
                self._abandon(staging, graph_iri, exc)
                raise
            if isinstance(exc, StoreError):
                raise StoreError(f"{exc}; writing <{graph_iri}> failed at its final switch (one request: move the "
                                 "batch into place, then drop the batches it supersedes): the store holds the "
                                 "previous batches, or the new one (perhaps with superseded ones still there), and "
                                 f"the staging graph <{staging}> may be left on the endpoint: the next `cmokg push` "
                                 "(or restore) removes it") from None
            raise

    def _abandon(self, staging: str, graph_iri: str, exc: BaseException) -> None:
        """After a failed write that left `graph_iri` as it was: drop the staging graph, or, where the endpoint
        cannot be reached, raise a StoreError saying that it may be left (for a StoreError `exc`)."""
        try:
            self.update(f"DROP SILENT GRAPH <{staging}>")
        except Exception:
            if isinstance(exc, StoreError):
                raise StoreError(f"{exc}; <{graph_iri}> was left as it was, but the staging graph <{staging}> may "
                                 "be left on the endpoint: the next `cmokg push` (or restore) removes it") from None

    def add_quads(self, data: bytes, fmt: ox.RdfFormat = ox.RdfFormat.N_QUADS) -> None:
        by_graph: dict[str, list[ox.Quad]] = defaultdict(list)
        default: list[ox.Quad] = []
        for q in ox.parse(data, fmt):
            if isinstance(q.graph_name, ox.NamedNode):
                by_graph[q.graph_name.value].append(q)
            else:
                default.append(q)
        if self.store_url is not None:
            self._post_nquads(default + [q for qs in by_graph.values() for q in qs])
            return
        for g, quads in by_graph.items():
            for lines, bnodes in self._chunks(quads):
                if lines:
                    self.update(self._insert(g, lines, bnodes))
        if default:
            raise StoreError(f"{len(default)} quad(s) in the default graph: a {self.dialect} store takes named "
                             "graphs only")

    def _post_nquads(self, quads: list[ox.Quad]) -> None:
        """Graph Store Protocol: N-Quads POSTed to the store endpoint, blank nodes all in the first request."""
        with_bnodes = [q for q in quads if _has_bnode(q)]
        plain = [q for q in quads if not _has_bnode(q)]
        head = max(0, self.chunk - len(with_bnodes))
        requests_ = [with_bnodes + plain[:head]] + [plain[i: i + self.chunk] for i in range(head, len(plain),
                                                                                             self.chunk)]
        for part in requests_:
            if not part:
                continue
            body = ox.serialize(part, format=ox.RdfFormat.N_QUADS) or b""
            try:
                response = self._session.post(self.store_url or "", data=body, auth=self._auth,
                                              timeout=self.timeout, headers={"Content-Type": "application/n-quads"})
            except requests.RequestException as exc:
                raise StoreError(f"{self.store_url}: {exc}") from None
            self._check(response, self.store_url or "")

    def drop_graph(self, graph_iri: str) -> None:
        self.update(f"DROP SILENT GRAPH <{graph_iri}>")

    def _clear_default_ops(self) -> list[str]:
        return [] if self.dialect == "virtuoso" else ["DROP SILENT DEFAULT"]

    def check_query_endpoint(self) -> None:
        """Refuse a URL that does not answer SPARQL queries (an update endpoint given as --endpoint, say)."""
        try:
            self.query("ASK { }", union=False)
        except SyntaxError as exc:
            raise StoreError(f"{self.query_url} rejected the query `ASK {{ }}`: is it a SPARQL query endpoint "
                             f"(e.g. http://host:7878/query, http://host:8890/sparql)? {str(exc)[:200]}") from None

    def clear(self) -> None:
        if self.dialect == "virtuoso" or self.graph_prefix:
            for g in self.named_graphs():
                self.drop_graph(g)
        else:
            self.update("DROP ALL")

    def close(self) -> None:
        self._session.close()


class OxigraphFacade:
    """The subset of `pyoxigraph.Store` that callers reach through `store.ox` (the web app's query path),
    answered by the remote store, so code written against the embedded store runs on an endpoint."""

    def __init__(self, remote: RemoteStore) -> None:
        self._remote = remote

    def query(self, query: str, *, use_default_graph_as_union: bool = False, default_graph: Any = None,
              named_graphs: Any = None, substitutions: dict[ox.Variable, object] | None = None,
              base_iri: str | None = None, **_: Any) -> QueryResult:
        sent = with_base(query, base_iri)

        def names(nodes: Any) -> list[str] | None:
            if nodes is None:
                return None
            return [n.value for n in ([nodes] if isinstance(nodes, ox.NamedNode) else nodes)]
        try:
            return self._remote.query(sent, substitutions=substitutions, union=use_default_graph_as_union,
                                      default_graph=names(default_graph), named_graphs=names(named_graphs))
        except SyntaxError as exc:
            # the embedded store's message (`error at L:C: ...`, positions in the text as given), else the endpoint's
            raise local_syntax_error(query, base_iri=base_iri) or exc from None

    def update(self, update: str, *, base_iri: str | None = None, **_: Any) -> None:
        """`Store.update`: relative IRIs resolved against `base_iri` as the embedded store does (the endpoint
        would resolve them against its own URL); a malformed update is a SyntaxError with the embedded
        store's message (or the endpoint's, without its URL); an update the endpoint ran and failed (HTTP 500:
        a graph that does not exist, ...) is a RuntimeError with its message, as pyoxigraph raises."""
        sent = with_base(update, base_iri)
        try:
            self._remote.update(sent)
        except MalformedRequest as exc:
            raise local_syntax_error(update, update=True, base_iri=base_iri) or SyntaxError(exc.message) from None
        except EndpointFailure as exc:
            if exc.status == 500:
                raise RuntimeError(exc.message) from None
            raise

    def named_graphs(self) -> Iterator[ox.NamedNode]:
        return iter([ox.NamedNode(g) for g in self._remote.named_graphs()])

    def contains_named_graph(self, graph: ox.NamedNode) -> bool:
        return self._remote.has_graph(graph.value)

    def quads_for_pattern(self, subject: Any, predicate: Any, object: Any, graph_name: Any = None,
                          ) -> Iterator[ox.Quad]:
        """The quads matching the pattern (None matches anything; `graph_name` None: every graph, the default
        graph included; an `ox.DefaultGraph()`: that one only), from one SELECT with the bound terms in place."""
        remote = self._remote
        terms: list[tuple[str, Any]] = []
        for var, term in (("s", subject), ("p", predicate), ("o", object)):
            # a blank node cannot be named in a query: it matches anything there and is compared here
            bound = term is not None and not isinstance(term, ox.BlankNode)
            terms.append((str(term) if bound else f"?{var}", term))
        pattern = " ".join(t for t, _ in terms) + " ."
        projected = " ".join(t for t, _ in terms if t.startswith("?"))
        named = isinstance(graph_name, ox.NamedNode)
        default_only = isinstance(graph_name, ox.DefaultGraph)
        parts = []
        if named:
            parts.append(f"{{ BIND({graph_name} AS ?g) GRAPH {graph_name} {{ {pattern} }} }}")
        elif not default_only:
            excluded = f'FILTER(!STRSTARTS(STR(?g), "{STAGING_PREFIX}"))'
            parts.append(f"{{ GRAPH ?g {{ {pattern} }} {excluded} {remote._graph_filter()} }}")
        if (default_only or graph_name is None) and remote.dialect != "virtuoso":
            parts.append(f"{{ {pattern} }}")  # the default graph itself, not the union
        if not parts:
            return
        # no dataset parameters on Virtuoso: with default-graph-uri, its `GRAPH <iri>` sees only the listed graphs
        result = remote.query(f"SELECT ?g {projected} WHERE {{ {' UNION '.join(parts)} }}",
                              union=remote.dialect == "virtuoso")
        assert isinstance(result, ox.QuerySolutions)
        for row in result:
            values = [term if not text.startswith("?") else row[text[1:]] for text, term in terms]
            g = row["g"]
            q = ox.Quad(values[0], values[1], values[2], g if isinstance(g, ox.NamedNode) else ox.DefaultGraph())
            if all(term is None or not isinstance(term, ox.BlankNode) or value == term
                   for (_, term), value in zip(terms, values, strict=True)):
                yield q

    def dump(self, output: IO[bytes], format: ox.RdfFormat = ox.RdfFormat.N_QUADS, *,
             from_graph: Any = None, **_: Any) -> None:
        """`Store.dump(output, format, from_graph=...)`, streamed from the endpoint."""
        graph = from_graph.value if isinstance(from_graph, ox.NamedNode) else None
        self._remote.dump(output, format, graph)

    def __len__(self) -> int:
        return self._remote.quad_count()

    def flush(self) -> None:
        return None


def _as_query_triples(triples: Iterable[Any]) -> ox.QueryTriples:
    """pyoxigraph has no public QueryTriples constructor: evaluate a CONSTRUCT over a scratch store."""
    scratch = ox.Store()
    scratch.extend(ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in triples)
    result = scratch.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
    assert isinstance(result, ox.QueryTriples)
    return result


def store_from_config(config: Mapping[str, Any]) -> RemoteStore | None:
    """The web app's remote store: `CMOKG_ENDPOINT` (query URL) with optional `CMOKG_UPDATE_ENDPOINT`,
    `CMOKG_DIALECT`, `CMOKG_ENDPOINT_USER`, `CMOKG_ENDPOINT_PASSWORD`; None when no endpoint is configured."""
    endpoint = config.get("CMOKG_ENDPOINT")
    if not endpoint:
        return None
    return RemoteStore(endpoint, config.get("CMOKG_UPDATE_ENDPOINT"), dialect=config.get("CMOKG_DIALECT"),
                       user=config.get("CMOKG_ENDPOINT_USER"), password=config.get("CMOKG_ENDPOINT_PASSWORD"))
