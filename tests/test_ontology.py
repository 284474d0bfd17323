"""The ontology and SKOS vocabularies: they parse, every term is documented, the vocabularies match the
contract in docs/model.md, and HermiT finds them consistent (and finds contradictions when there are some)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rdflib import Dataset, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS, XSD

from graph.namespaces import CITO, CMO, FABIO, ID, OA, PRISM, slug
from graph.reason import ONTOLOGY_FILE, ReasoningReport, check_consistency, ontology_paths

ROOT = Path(__file__).resolve().parent.parent
MODEL_DOC = ROOT / "docs" / "model.md"
ONTOLOGY = URIRef("https://w3id.org/cmokg/ontology")
VANN = "http://purl.org/vocab/vann/"
REVIEW_DOI = URIRef("https://doi.org/10.3399/BJGPO.2021.0017")
DECLARATION_TYPES = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty)
PROPERTY_KINDS = (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty)

# docs/model.md, "Framework resources": dimension -> [(prefLabel, [altLabels])], in the review's order.
FRAMEWORK: dict[str, list[tuple[str, list[str]]]] = {
    "individual characteristics": [("buy-in", ["stakeholder's buy-in"]), ("vocation", []), ("knowledge", [])],
    "interpersonal relations": [
        ("trustful interactions", ["trustful"]),
        ("bidirectional interactions", ["bidirectional"]),
        ("informed interactions", ["informed"]),
        ("supportive interactions", ["supportive"]),
        (
            "transparent and convenient interactions",
            ["transparent and convenient interactions within and across sectors"],
        ),
    ],
    "organisational contingencies": [
        ("predisposed practice culture", ["a predisposed practice culture"]),
        ("leadership", []),
        ("training opportunities", []),
        ("supervision", []),
        ("information governance", []),
        ("resource adequacy", []),
        ("accessibility", []),
        ("continuity of care", ["continuity of care within organisations"]),
    ],
    "policy structures": [
        ("bottom-up and coherent policymaking", []),
        ("stable funding", []),
        ("suitable monitoring strategies", []),
    ],
}

# docs/model.md, "Vocabulary concepts": scheme -> (file, class of its concepts, prefLabels).
FLAT_SCHEMES: dict[str, tuple[str, URIRef, list[str]]] = {
    "setting": ("settings.ttl", CMO.Setting, ["general practice", "link workers", "community sector"]),
    "archetype": ("archetypes.ttl", CMO.Archetype, ["best practice", "worst practice"]),
    "level": ("levels.ttl", CMO.InterpretiveLevel, ["participant", "author", "reviewer"]),
    "appraisal": ("appraisal.ttl", CMO.AppraisalLevel, ["high", "moderate", "low"]),
    "stakeholder": (
        "stakeholders.ttl",
        CMO.Stakeholder,
        ["patient", "general practitioner", "link worker", "VCS organisation", "commissioner"],
    ),
}

# Ranks required on ordered scales.
RANKS: dict[str, dict[str, int]] = {
    "framework": {dimension: n for n, dimension in enumerate(FRAMEWORK, start=1)},
    "appraisal": {"high": 1, "moderate": 2, "low": 3},
    "archetype": {"best practice": 1, "worst practice": 2},
}

# The kind each reused external property must be declared as, from how docs/model.md uses it.
EXTERNAL_PROPERTY_KINDS: dict[URIRef, URIRef] = {
    **{
        p: OWL.DatatypeProperty
        for p in (
            DCTERMS.identifier,
            DCTERMS.title,
            DCTERMS.created,
            PRISM.doi,
            PRISM.publicationName,
            FABIO.hasPubMedId,
            FABIO.hasPublicationYear,
            FABIO.hasURL,
            OA.exact,
            PROV.generatedAtTime,
            PROV.startedAtTime,
            PROV.endedAtTime,
        )
    },
    **{
        p: OWL.ObjectProperty
        for p in (
            DCTERMS.creator,
            CITO.cites,
            OA.hasTarget,
            OA.hasSource,
            OA.hasSelector,
            PROV.wasAttributedTo,
            PROV.wasGeneratedBy,
            PROV.wasAssociatedWith,
        )
    },
    **{p: OWL.AnnotationProperty for p in (SKOS.prefLabel, SKOS.altLabel, SKOS.definition, SKOS.scopeNote)},
}
EXTERNAL_CLASSES = (
    FABIO.Expression,
    OA.Annotation,
    OA.SpecificResource,
    OA.TextQuoteSelector,
    PROV.Entity,
    PROV.Activity,
    PROV.Agent,
    PROV.Person,
    SKOS.Concept,
    SKOS.ConceptScheme,
)


def concept(scheme: str, label: str) -> URIRef:
    return ID[f"concept/{scheme}/{slug(label)}"]


@pytest.fixture(scope="module")
def ontology() -> Graph:
    return Graph().parse(ONTOLOGY_FILE, format="turtle")


@pytest.fixture(scope="module")
def vocab() -> Graph:
    graph = Graph()
    for path in ontology_paths()[1:]:
        graph.parse(path, format="turtle")
    return graph


def cmo_declared(graph: Graph) -> set[URIRef]:
    return {
        s
        for t in DECLARATION_TYPES
        for s in graph.subjects(RDF.type, t)
        if isinstance(s, URIRef) and str(s).startswith(str(CMO))
    }


def en(graph: Graph, subject: URIRef, predicate: URIRef) -> list[Literal]:
    return [o for o in graph.objects(subject, predicate) if isinstance(o, Literal) and o.language == "en"]


# ---------------------------------------------------------------------------------------------------------
# Files


def test_ontology_paths_lists_the_ontology_and_every_vocabulary() -> None:
    names = [p.name for p in ontology_paths()]
    assert names[0] == "cmokg.ttl"
    assert sorted(names[1:]) == sorted(
        ["framework.ttl", "settings.ttl", "archetypes.ttl", "levels.ttl", "appraisal.ttl", "stakeholders.ttl"]
    )
    assert all(p.is_file() for p in ontology_paths())


@pytest.mark.parametrize("path", ontology_paths(), ids=lambda p: p.name)
def test_file_parses(path: Path) -> None:
    assert len(Graph().parse(path, format="turtle")) > 10


# ---------------------------------------------------------------------------------------------------------
# Ontology


def test_ontology_header(ontology: Graph) -> None:
    assert (ONTOLOGY, RDF.type, OWL.Ontology) in ontology
    assert (ONTOLOGY, OWL.versionIRI, URIRef("https://w3id.org/cmokg/ontology/0.1.0")) in ontology
    assert (ONTOLOGY, OWL.versionInfo, Literal("0.1.0")) in ontology
    assert en(ontology, ONTOLOGY, DCTERMS.title) and en(ontology, ONTOLOGY, DCTERMS.description)
    assert (ONTOLOGY, DCTERMS.license, URIRef("https://creativecommons.org/licenses/by/4.0/")) in ontology
    creators = list(ontology.objects(ONTOLOGY, DCTERMS.creator))
    assert [ontology.value(c, RDFS.label) for c in creators] == [Literal("cmokg developers")]
    assert (ONTOLOGY, URIRef(VANN + "preferredNamespacePrefix"), Literal("cmo")) in ontology
    assert (ONTOLOGY, URIRef(VANN + "preferredNamespaceUri"), Literal(str(CMO))) in ontology


def test_every_own_term_is_documented(ontology: Graph) -> None:
    terms = cmo_declared(ontology)
    assert len(terms) > 40
    undocumented = [
        t
        for t in sorted(terms)
        if len(en(ontology, t, RDFS.label)) != 1
        or len(en(ontology, t, SKOS.definition)) != 1
        or (t, RDFS.isDefinedBy, ONTOLOGY) not in ontology
    ]
    assert undocumented == []


def test_every_cmo_term_in_the_model_is_declared(ontology: Graph) -> None:
    """docs/model.md is the contract: each cmo: term it names must exist in the ontology."""
    named = {CMO[name] for name in re.findall(r"\bcmo:([A-Za-z][A-Za-z0-9]*)", MODEL_DOC.read_text(encoding="utf-8"))}
    extra = {CMO.archetype, CMO.concernsStakeholder, CMO.rank, CMO.bearsOn, CMO.ProgrammeTheory}
    assert CMO.CMOConfiguration in named
    assert sorted((named | extra) - cmo_declared(ontology)) == []


@pytest.mark.parametrize(
    ("term", "kind"),
    [
        *((c, OWL.Class) for c in ("Document", "Review", "Study", "GreyLiterature", "CMOConfiguration")),
        *((c, OWL.Class) for c in ("Context", "Mechanism", "MechanismResource", "MechanismReasoning", "Outcome")),
        *((c, OWL.Class) for c in ("ProgrammeTheory", "EvidenceFragment", "ImportBatch", "FrameworkDimension")),
        *((c, OWL.Class) for c in ("FrameworkResource", "Setting", "Archetype", "Stakeholder")),
        *((c, OWL.Class) for c in ("InterpretiveLevel", "AppraisalLevel")),
        *(
            (p, OWL.ObjectProperty)
            for p in (
                "hasContext",
                "hasMechanism",
                "hasOutcome",
                "hasResource",
                "hasReasoning",
                "statedIn",
                "inSetting",
                "drawsOn",
                "leadsTo",
                "refines",
                "theoryOf",
                "extractedBy",
                "bearsOn",
                "supports",
                "refutes",
                "interpretiveLevel",
                "relevance",
                "rigour",
                "archetype",
                "concernsStakeholder",
            )
        ),
        *(
            (p, OWL.DatatypeProperty)
            for p in (
                "authorList",
                "description",
                "statement",
                "authorLabel",
                "page",
                "section",
                "sha256",
                "shapesVersion",
                "softwareVersion",
                "sourceFileName",
                "tripleCount",
                "rank",
            )
        ),
    ],
)
def test_own_term_kind(ontology: Graph, term: str, kind: URIRef) -> None:
    assert (CMO[term], RDF.type, kind) in ontology


def test_external_terms_are_declared_with_the_kind_the_model_uses(ontology: Graph) -> None:
    wrong = {p: kind for p, kind in EXTERNAL_PROPERTY_KINDS.items() if (p, RDF.type, kind) not in ontology}
    assert wrong == {}
    assert [c for c in EXTERNAL_CLASSES if (c, RDF.type, OWL.Class) not in ontology] == []


def test_no_property_is_punned(ontology: Graph) -> None:
    """OWL 2 DL: an IRI is at most one of object, data and annotation property."""
    properties = {s for kind in PROPERTY_KINDS for s in ontology.subjects(RDF.type, kind)}
    punned = [p for p in properties if sum((p, RDF.type, kind) in ontology for kind in PROPERTY_KINDS) > 1]
    assert punned == []


def test_every_property_used_on_an_external_term_or_in_the_vocabularies_is_declared(
    ontology: Graph, vocab: Graph
) -> None:
    """Without imports, OWL 2 DL needs a declaration for every property the files use."""
    builtin = {str(RDF), str(RDFS), str(OWL)}
    declared = {s for kind in PROPERTY_KINDS for s in ontology.subjects(RDF.type, kind)}
    used = {
        p for p in set(ontology.predicates()) | set(vocab.predicates()) if not any(p.startswith(b) for b in builtin)
    }
    assert sorted(used - declared) == []


@pytest.mark.parametrize(
    ("sub", "sup"),
    [
        (CMO.Document, FABIO.Expression),
        (CMO.Review, CMO.Document),
        (CMO.Study, CMO.Document),
        (CMO.GreyLiterature, CMO.Document),
        (CMO.EvidenceFragment, OA.Annotation),
        (CMO.ImportBatch, PROV.Entity),
        *((CMO[c], SKOS.Concept) for c in ("FrameworkDimension", "FrameworkResource", "Setting", "Archetype")),
        *((CMO[c], SKOS.Concept) for c in ("Stakeholder", "InterpretiveLevel", "AppraisalLevel")),
    ],
)
def test_subclass_axiom(ontology: Graph, sub: URIRef, sup: URIRef) -> None:
    assert (sub, RDFS.subClassOf, sup) in ontology


def test_document_types_are_pairwise_disjoint(ontology: Graph) -> None:
    member_sets = [
        set(ontology.items(ontology.value(axiom, OWL.members)))
        for axiom in ontology.subjects(RDF.type, OWL.AllDisjointClasses)
    ]
    assert {CMO.Review, CMO.Study, CMO.GreyLiterature} in member_sets


def test_evidence_relations(ontology: Graph) -> None:
    for relation in (CMO.supports, CMO.refutes):
        assert (relation, RDFS.subPropertyOf, CMO.bearsOn) in ontology
    assert (CMO.bearsOn, RDFS.range, CMO.CMOConfiguration) in ontology
    assert (CMO.leadsTo, RDFS.domain, CMO.CMOConfiguration) in ontology
    assert (CMO.leadsTo, RDFS.range, CMO.CMOConfiguration) in ontology
    assert (CMO.rank, RDFS.range, XSD.integer) in ontology


# ---------------------------------------------------------------------------------------------------------
# Vocabularies


def test_every_concept_is_documented_and_minted_from_its_label(vocab: Graph) -> None:
    concepts = set(vocab.subjects(RDF.type, SKOS.Concept))
    assert len(concepts) == 4 + 19 + sum(len(labels) for _, _, labels in FLAT_SCHEMES.values())
    for c in concepts:
        labels = en(vocab, c, SKOS.prefLabel)
        assert len(labels) == 1, c
        assert len(en(vocab, c, SKOS.definition)) == 1, c
        schemes = list(vocab.objects(c, SKOS.inScheme))
        assert len(schemes) == 1, c
        scheme = str(schemes[0]).removeprefix(str(ID) + "scheme/")
        assert c == concept(scheme, str(labels[0])), c


def test_every_scheme_is_described(vocab: Graph) -> None:
    schemes = set(vocab.subjects(RDF.type, SKOS.ConceptScheme))
    assert schemes == {ID[f"scheme/{s}"] for s in ["framework", *FLAT_SCHEMES]}
    for scheme in schemes:
        assert en(vocab, scheme, DCTERMS.title), scheme
        assert (scheme, RDFS.isDefinedBy, ONTOLOGY) in vocab, scheme
    for from_review in ("framework", "setting", "archetype"):
        assert (ID[f"scheme/{from_review}"], DCTERMS.source, REVIEW_DOI) in vocab


def test_framework_has_four_dimensions_and_nineteen_resources(vocab: Graph) -> None:
    scheme = ID["scheme/framework"]
    dimensions = set(vocab.subjects(RDF.type, CMO.FrameworkDimension))
    assert dimensions == {concept("framework", d) for d in FRAMEWORK}
    assert set(vocab.objects(scheme, SKOS.hasTopConcept)) == dimensions
    assert set(vocab.subjects(SKOS.topConceptOf, scheme)) == dimensions
    resources = set(vocab.subjects(RDF.type, CMO.FrameworkResource))
    assert len(resources) == 19
    for dimension, listed in FRAMEWORK.items():
        d = concept("framework", dimension)
        expected = {concept("framework", label) for label, _ in listed}
        assert set(vocab.objects(d, SKOS.narrower)) == expected, dimension
        for label, alt_labels in listed:
            r = concept("framework", label)
            assert r in resources
            assert list(vocab.objects(r, SKOS.broader)) == [d], label
            assert (r, SKOS.inScheme, scheme) in vocab
            assert {str(a) for a in en(vocab, r, SKOS.altLabel)} == set(alt_labels), label
            assert en(vocab, r, SKOS.scopeNote), label


def test_framework_list_matches_docs_model() -> None:
    """The framework above is read off docs/model.md; if the contract changes, this says so."""
    text = MODEL_DOC.read_text(encoding="utf-8")
    block = text.split("Framework resources", 1)[1].split("\n\n", 1)[0]
    entries = re.split(r"\n- ", "\n" + block.split("\n", 1)[1])[1:]
    parsed = {}
    for entry in entries:
        dimension, items = entry.split(":", 1)
        parsed[dimension.strip()] = [
            (label, [alt] if alt else []) for label, alt in re.findall(r"`([^`]+)`(?:\s*\[([^\]]+)\])?", items)
        ]
    assert parsed == FRAMEWORK


@pytest.mark.parametrize("scheme", FLAT_SCHEMES)
def test_flat_scheme_matches_the_model(vocab: Graph, scheme: str) -> None:
    _, cls, labels = FLAT_SCHEMES[scheme]
    iri = ID[f"scheme/{scheme}"]
    expected = {concept(scheme, label) for label in labels}
    assert set(vocab.subjects(RDF.type, cls)) == expected
    assert set(vocab.subjects(SKOS.inScheme, iri)) == expected
    assert set(vocab.objects(iri, SKOS.hasTopConcept)) == expected
    assert set(vocab.subjects(SKOS.topConceptOf, iri)) == expected
    assert {str(vocab.value(c, SKOS.prefLabel)) for c in expected} == set(labels)
    table_row = re.search(rf"^\| `{scheme}` \|[^\n]*$", MODEL_DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert table_row is not None
    assert re.findall(r"`([^`]+)`", table_row.group(0).split("|")[3].split("(")[0]) == labels


def test_each_scheme_lives_in_its_own_file() -> None:
    for scheme, (filename, _, labels) in FLAT_SCHEMES.items():
        graph = Graph().parse(ROOT / "ontology" / "vocab" / filename, format="turtle")
        assert set(graph.subjects(RDF.type, SKOS.ConceptScheme)) == {ID[f"scheme/{scheme}"]}
        assert len(set(graph.subjects(RDF.type, SKOS.Concept))) == len(labels)


@pytest.mark.parametrize("scheme", RANKS)
def test_ordered_scales_carry_rank_and_notation(vocab: Graph, scheme: str) -> None:
    for label, rank in RANKS[scheme].items():
        c = concept(scheme, label)
        assert vocab.value(c, CMO.rank) == Literal(rank), label
        assert vocab.value(c, SKOS.notation) == Literal(str(rank)), label


def test_archetype_scheme_says_only_the_ends_are_encoded(vocab: Graph) -> None:
    comment = str(vocab.value(ID["scheme/archetype"], RDFS.comment))
    assert "not retrievable" in comment


# ---------------------------------------------------------------------------------------------------------
# Reasoning (each check runs HermiT, about a second each: keep them few)

MODEL_SHAPED_DATA = """
@prefix cmo: <https://w3id.org/cmokg/ontology#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix fabio: <http://purl.org/spar/fabio/> .
@prefix prism: <http://prismstandard.org/namespaces/basic/2.0/> .
@prefix cito: <http://purl.org/spar/cito/> .
@prefix oa: <http://www.w3.org/ns/oa#> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix src: <https://w3id.org/cmokg/id/source/> .
@prefix cmoc: <https://w3id.org/cmokg/id/cmoc/> .
@prefix ev: <https://w3id.org/cmokg/id/evidence/> .
@prefix fw: <https://w3id.org/cmokg/id/concept/framework/> .
@prefix setting: <https://w3id.org/cmokg/id/concept/setting/> .
@prefix level: <https://w3id.org/cmokg/id/concept/level/> .
@prefix appraisal: <https://w3id.org/cmokg/id/concept/appraisal/> .
@prefix archetype: <https://w3id.org/cmokg/id/concept/archetype/> .
@prefix stakeholder: <https://w3id.org/cmokg/id/concept/stakeholder/> .

src:calderon-2021 a cmo:Review ;
  dcterms:identifier "calderon-2021" ;
  dcterms:title "Tensions and opportunities in social prescribing" ;
  cmo:authorList "Calderón-Larrañaga, Sara; Milner, Yasmin" ;
  dcterms:creator <https://w3id.org/cmokg/id/person/calderon-larranaga-sara> ;
  fabio:hasPublicationYear "2021"^^xsd:gYear ;
  prism:publicationName "BJGP Open" ;
  prism:doi "10.3399/BJGPO.2021.0017" ;
  fabio:hasPubMedId "33849895" ;
  fabio:hasURL "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC8278514/"^^xsd:anyURI ;
  cito:cites src:tierney-2020 .
src:tierney-2020 a cmo:Review ; dcterms:identifier "tierney-2020" ; dcterms:title "Supporting social prescribing" .
src:grey-1 a cmo:GreyLiterature ; dcterms:identifier "grey-1" ; dcterms:title "A local evaluation" .
<https://w3id.org/cmokg/id/person/calderon-larranaga-sara> a prov:Person ; rdfs:label "Calderón-Larrañaga, Sara" .

cmoc:c1 a cmo:CMOConfiguration ;
  dcterms:identifier "c1" ; cmo:statedIn src:calderon-2021 ; cmo:authorLabel "CMOC1" ;
  cmo:statement "Where practices value non-medical needs, GPs refer, so patients reach VCS services." ;
  cmo:hasContext cmoc:c1\\/context ; cmo:hasMechanism cmoc:c1\\/mechanism ; cmo:hasOutcome cmoc:c1\\/outcome ;
  cmo:inSetting setting:general-practice , setting:link-workers ;
  cmo:drawsOn fw:predisposed-practice-culture , fw:buy-in ;
  cmo:archetype archetype:best-practice ; cmo:concernsStakeholder stakeholder:general-practitioner ;
  cmo:leadsTo cmoc:c2 ;
  cmo:refines <https://w3id.org/cmokg/id/theory/calderon-2021/good-practice> ;
  cmo:extractedBy <https://orcid.org/0000-0002-1825-0097> ;
  dcterms:created "2024-01-31"^^xsd:date .
cmoc:c1\\/context a cmo:Context ; cmo:description "A predisposed practice culture" .
cmoc:c1\\/mechanism a cmo:Mechanism ;
  cmo:hasResource cmoc:c1\\/resource ; cmo:hasReasoning cmoc:c1\\/reasoning .
cmoc:c1\\/resource a cmo:MechanismResource ; cmo:description "A link worker in the practice" .
cmoc:c1\\/reasoning a cmo:MechanismReasoning ; cmo:description "GPs trust the referral route" .
cmoc:c1\\/outcome a cmo:Outcome ; cmo:description "More referrals" .
cmoc:c2 a cmo:CMOConfiguration ; dcterms:identifier "c2" ; cmo:statedIn src:tierney-2020 ;
  cmo:hasContext cmoc:c2\\/context ; cmo:hasMechanism cmoc:c2\\/mechanism ; cmo:hasOutcome cmoc:c2\\/outcome .
cmoc:c2\\/context a cmo:Context ; cmo:description "More referrals" .
cmoc:c2\\/mechanism a cmo:Mechanism .
cmoc:c2\\/outcome a cmo:Outcome ; cmo:description "Less loneliness" .
<https://w3id.org/cmokg/id/theory/calderon-2021/good-practice> a cmo:ProgrammeTheory ;
  rdfs:label "good practice" ; cmo:theoryOf src:calderon-2021 .
<https://orcid.org/0000-0002-1825-0097> a prov:Agent ; rdfs:label "0000-0002-1825-0097" .

ev:e1 a cmo:EvidenceFragment ; dcterms:identifier "e1" ; cmo:supports cmoc:c1 ;
  oa:hasTarget ev:e1\\/target ; cmo:page "12-13" ; cmo:section "Results" ;
  cmo:interpretiveLevel level:participant ; cmo:relevance appraisal:high ; cmo:rigour appraisal:moderate .
ev:e1\\/target a oa:SpecificResource ; oa:hasSource src:grey-1 ; oa:hasSelector ev:e1\\/quote .
ev:e1\\/quote a oa:TextQuoteSelector ; oa:exact "the GP just gets it" .
ev:e2 a cmo:EvidenceFragment ; dcterms:identifier "e2" ; cmo:refutes cmoc:c2 ;
  oa:hasTarget ev:e2\\/target ; cmo:interpretiveLevel level:reviewer .
ev:e2\\/target a oa:SpecificResource ; oa:hasSource src:tierney-2020 ; oa:hasSelector ev:e2\\/quote .
ev:e2\\/quote a oa:TextQuoteSelector ; oa:exact "referrals did not reduce isolation" .
"""

BATCH_DATA = """
@prefix cmo: <https://w3id.org/cmokg/ontology#> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<https://w3id.org/cmokg/id/batch/0123456789abcdef> a cmo:ImportBatch , prov:Entity ;
  rdfs:label "seed.xlsx" ; cmo:sourceFileName "seed.xlsx" ; cmo:sha256 "0123456789abcdef" ;
  cmo:shapesVersion "0.1.0" ; cmo:softwareVersion "0.1.0" ; cmo:tripleCount 123 ;
  prov:wasAttributedTo <https://w3id.org/cmokg/id/agent/importer> ;
  prov:generatedAtTime "2024-02-01T10:00:00.123456+00:00"^^xsd:dateTime ;
  prov:wasGeneratedBy <https://w3id.org/cmokg/id/batch/0123456789abcdef/activity> .
<https://w3id.org/cmokg/id/batch/0123456789abcdef/activity> a prov:Activity ;
  prov:startedAtTime "2024-02-01T09:59:58Z"^^xsd:dateTime ;
  prov:endedAtTime "2024-02-01T10:00:00.123456+00:00"^^xsd:dateTime ;
  prov:wasAssociatedWith <https://w3id.org/cmokg/id/agent/importer> .
<https://w3id.org/cmokg/id/agent/importer> a prov:Agent ; rdfs:label "importer" .
"""


def assert_ok(report: ReasoningReport) -> None:
    assert report.consistent, report.message
    assert report.unsatisfiable_classes == (), report.message
    assert report.ok
    assert report.warnings == ()


def test_ontology_and_vocabularies_are_consistent(capfd: pytest.CaptureFixture[str]) -> None:
    report = check_consistency()
    assert_ok(report)
    assert report.triples > 500
    out, _ = capfd.readouterr()
    assert out == "", "the reasoning check must not print to stdout"


def test_model_shaped_data_is_consistent() -> None:
    """Every instance shape in docs/model.md, in a named batch graph as the importer stores it.

    Regression: the importer's timestamps (Python isoformat(), microseconds) made HermiT abort with
    MalformedLiteralException, as HermiT reads at most three fractional-second digits.
    """
    dataset = Dataset()
    batch = URIRef("https://w3id.org/cmokg/id/batch/0123456789abcdef")
    dataset.graph(batch).parse(data=MODEL_SHAPED_DATA, format="turtle")
    dataset.graph(batch).parse(data=BATCH_DATA, format="turtle")
    assert len(list(dataset.quads((None, None, None, None)))) > 100
    assert_ok(check_consistency(dataset))


def test_contradictory_data_is_reported_inconsistent() -> None:
    """One document typed both review and study; given as N-Triples bytes, as `cmokg reason` dumps it."""
    data = Graph()
    doc = ID["source/both"]
    data.add((doc, RDF.type, CMO.Review))
    data.add((doc, RDF.type, CMO.Study))
    report = check_consistency(data.serialize(format="nt", encoding="utf-8"))
    assert not report.consistent
    assert not report.ok
    assert "inconsistent" in report.message


def test_ill_typed_literal_is_reported_inconsistent() -> None:
    """HermiT throws on a literal outside its datatype's lexical space; OWL calls that inconsistent."""
    data = Graph()
    data.add((ID["batch/x"], CMO.tripleCount, Literal("many", datatype=XSD.integer)))
    report = check_consistency(data)
    assert not report.consistent
    assert "ill-typed literal" in report.message and "many" in report.message


def test_unsatisfiable_class_is_reported(tmp_path: Path) -> None:
    extension = tmp_path / "bad.ttl"
    extension.write_text(
        "@prefix cmo: <https://w3id.org/cmokg/ontology#> .\n"
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .\n"
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        "cmo:ReviewedStudy a owl:Class ; rdfs:subClassOf cmo:Review , cmo:Study .\n",
        encoding="utf-8",
    )
    report = check_consistency(extension)
    assert report.consistent
    assert report.unsatisfiable_classes == (str(CMO.ReviewedStudy),)
    assert not report.ok
