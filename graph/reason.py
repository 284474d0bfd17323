"""OWL reasoning check: is the ontology, with its vocabularies and (optionally) instance data, consistent?

The SHACL shapes say what a well-formed extraction looks like; this check asks a different question — whether
the axioms of `ontology/cmokg.ttl` (disjoint document types, cardinalities on CMO configurations, domains and
ranges, disjoint concept classes) contradict each other or the data. HermiT, run through owlready2, answers.
owlready2 cannot read Turtle, so everything is merged with rdflib and handed over as N-Triples.
"""

from __future__ import annotations

import io
import re
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Dataset, Graph, Literal
from rdflib.namespace import OWL, RDF, XSD
from rdflib.util import guess_format

from .vocab import ONTOLOGY_FILE, VOCAB_DIR

ONTOLOGY_IRI = "https://w3id.org/cmokg/ontology"

#: Instance data for `check_consistency`: an rdflib graph (a Dataset contributes all its named graphs),
#: N-Triples or N-Quads bytes (graph names are dropped), or the path of any RDF file rdflib can parse.
InstanceData = Graph | bytes | Path

_OWL_NOTHING = "http://www.w3.org/2002/07/owl#Nothing"
# HermiT parses at most three fractional-second digits (Python's isoformat() writes six).
_SUB_MILLISECOND = re.compile(r"^(.*T\d\d:\d\d:\d\d\.\d{3})\d+(.*)$")
_MALFORMED_LITERAL = re.compile(r"MalformedLiteralException: (.*)")


class ReasonerError(RuntimeError):
    """The reasoner could not run (no Java, HermiT crashed); says nothing about consistency."""


@dataclass(frozen=True)
class ReasoningReport:
    """What HermiT concluded about the ontology, the vocabularies and any instance data given."""

    consistent: bool
    unsatisfiable_classes: tuple[str, ...]
    message: str
    triples: int = 0
    seconds: float = 0.0
    warnings: tuple[str, ...] = field(default=())
    #: Triples outside OWL 2 DL that the reasoner would silently drop (a literal as the value of an object
    #: property, an IRI or blank node as the value of a datatype property): HermiT never sees them, so the
    #: verdict does not cover them, and the check fails.
    not_dl: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Consistent, every named class satisfiable, and every triple reasoned over: the condition `cmokg reason`
        checks."""
        return self.consistent and not self.unsatisfiable_classes and not self.not_dl


def ontology_paths() -> list[Path]:
    """The ontology file followed by every SKOS vocabulary file, in a stable order."""
    return [ONTOLOGY_FILE, *sorted(VOCAB_DIR.glob("*.ttl"))]


def check_consistency(*data: InstanceData, paths: Iterable[Path] | None = None) -> ReasoningReport:
    """Run HermiT over the ontology, the vocabularies and `data`; report consistency and unsatisfiable classes.

    `paths` replaces the default TBox files (`ontology_paths()`), e.g. to check a draft ontology. Raises
    `ReasonerError` when the reasoner cannot run, and rdflib's parser errors on unreadable input; an
    inconsistent graph is a report, not an exception. Warnings raised on the way are returned in the report.
    """
    started = time.monotonic()
    unsatisfiable: tuple[str, ...] = ()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        merged = _merge(list(ontology_paths() if paths is None else paths), data)
        _truncate_sub_millisecond_times(merged)
        ill_typed = sorted({o.n3() for o in merged.objects() if isinstance(o, Literal) and o.ill_typed})
        not_dl = _outside_dl(merged)
        if ill_typed:  # inconsistent in OWL; owlready2 and HermiT would stop with a parse error instead
            consistent = False
            reason = f"{len(ill_typed)} ill-typed literal(s): " + ", ".join(ill_typed[:5])
        else:
            consistent, unsatisfiable, reason = _run_hermit(merged.serialize(format="nt", encoding="utf-8"))
    seconds = time.monotonic() - started
    if not consistent:
        message = f"inconsistent: {reason}"
    elif unsatisfiable:
        message = f"consistent, but {len(unsatisfiable)} unsatisfiable class(es): " + ", ".join(unsatisfiable)
    else:
        message = "consistent; no unsatisfiable classes"
    if not_dl:
        message += (f"; but {len(not_dl)} triple(s) are outside OWL 2 DL and were not reasoned over: "
                    + "; ".join(not_dl[:5]))
    return ReasoningReport(
        consistent=consistent,
        unsatisfiable_classes=unsatisfiable,
        message=f"{message} ({len(merged)} triples, {seconds:.1f} s)",
        triples=len(merged),
        seconds=seconds,
        warnings=tuple(str(w.message) for w in caught),
        not_dl=tuple(not_dl),
    )


def _outside_dl(graph: Graph) -> list[str]:
    """Triples whose value is of the wrong kind for the property the ontology declares: owlready2 drops them
    without a word (a literal for an object property, an IRI or blank node for a datatype property)."""
    out: set[str] = set()
    for kind, wrong, what in ((OWL.ObjectProperty, lambda o: isinstance(o, Literal), "a literal"),
                              (OWL.DatatypeProperty, lambda o: not isinstance(o, Literal), "a resource")):
        for prop in set(graph.subjects(RDF.type, kind)):
            for s, o in graph.subject_objects(prop):
                if wrong(o):
                    out.add(f"{s.n3()} {prop.n3()} {o.n3()} ({what} as the value of "
                            f"{'an object' if kind == OWL.ObjectProperty else 'a datatype'} property)")
    return sorted(out)


def _merge(tbox: list[Path], data: tuple[InstanceData, ...]) -> Graph:
    merged = Graph()
    for path in tbox:
        merged.parse(path, format="turtle")
    for item in data:
        if isinstance(item, Dataset):
            merged += _triples_of(item)
        elif isinstance(item, Graph):
            merged += item
        elif isinstance(item, bytes):
            merged += _triples_of(_parse_dataset(data=item, format="nquads"))
        else:
            merged += _triples_of(_parse_dataset(source=item, format=guess_format(str(item)) or "turtle"))
    return merged


def _parse_dataset(**parse_args: object) -> Dataset:
    """Parse into a Dataset, so quad formats keep every named graph (N-Triples is valid N-Quads)."""
    dataset = Dataset()
    with warnings.catch_warnings():
        # rdflib 7's own Dataset.parse touches its deprecated default_context; nothing for callers to fix.
        warnings.filterwarnings("ignore", "Dataset.default_context is deprecated", DeprecationWarning)
        dataset.parse(**parse_args)  # type: ignore[arg-type]
    return dataset


def _triples_of(dataset: Dataset) -> Graph:
    """Every triple of every graph in `dataset`, graph names dropped: OWL has no named graphs."""
    union = Graph()
    for s, p, o, _ in dataset.quads((None, None, None, None)):
        union.add((s, p, o))
    return union


def _truncate_sub_millisecond_times(graph: Graph) -> None:
    """Cut xsd:dateTime literals to milliseconds, which HermiT can read; no axiom depends on the rest."""
    for s, p, o in list(graph):
        if isinstance(o, Literal) and o.datatype in (XSD.dateTime, XSD.dateTimeStamp):
            match = _SUB_MILLISECOND.match(str(o))
            if match:
                graph.remove((s, p, o))
                lexical = match.group(1) + match.group(2)
                graph.add((s, p, Literal(lexical, datatype=o.datatype, normalize=False)))


def _run_hermit(ntriples: bytes) -> tuple[bool, tuple[str, ...], str]:
    """Load N-Triples into a fresh owlready2 World and classify it with HermiT.

    Returns (consistent, unsatisfiable class IRIs, why inconsistent). `debug=0` keeps owlready2 silent;
    HermiT's own output is captured by owlready2's subprocess call. xsd:date and xsd:gYear (used by the
    data) are outside the OWL 2 datatype map, so HermiT is told to ignore unsupported datatypes rather than
    refuse the literals. A literal outside its datatype's lexical space makes an OWL ontology inconsistent;
    HermiT reports that as an error, which is turned back into an inconsistency here.
    """
    import owlready2  # imported here: slow to import, and only this check needs it

    world = owlready2.World()
    try:
        try:
            world.get_ontology(ONTOLOGY_IRI).load(fileobj=io.BytesIO(ntriples), format="ntriples")
            owlready2.sync_reasoner_hermit(
                world, infer_property_values=False, debug=0, ignore_unsupported_datatypes=True
            )
        except owlready2.OwlReadyInconsistentOntologyError:
            return False, (), "the ontology, vocabularies and data contradict each other"
        except owlready2.OwlReadyJavaError as error:
            malformed = _MALFORMED_LITERAL.search(str(error))
            if malformed:
                return False, (), f"ill-typed literal: {malformed.group(1).strip()}"
            raise ReasonerError(f"HermiT could not run: {error}") from error
        except (owlready2.OwlReadyOntologyParsingError, OSError) as error:
            raise ReasonerError(f"HermiT could not run: {error}") from error
        unsatisfiable = sorted(str(cls.iri) for cls in world.inconsistent_classes() if str(cls.iri) != _OWL_NOTHING)
        return True, tuple(unsatisfiable), ""
    finally:
        world.close()
