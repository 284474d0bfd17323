"""cmokg: a knowledge graph of realist-review evidence (CMO configurations and the quotes behind them).

The package turns extraction workbooks into triples, validates them with SHACL, stores them in Oxigraph
and answers named SPARQL queries. `graph.cli` is the `cmokg` command.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cmokg")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
