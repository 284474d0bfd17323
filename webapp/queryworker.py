"""Entry point of a query worker process: `python -m webapp.queryworker FD [SNAPSHOT MEMORY_QUADS
SPOOL_PREFIX GROWTH_KIB]` (see webapp.executor)."""

from __future__ import annotations

import sys

from webapp.executor import worker_main

if __name__ == "__main__":
    worker_main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None,
                int(sys.argv[3]) if len(sys.argv) > 3 else 0, sys.argv[4] if len(sys.argv) > 4 else None,
                int(sys.argv[5]) if len(sys.argv) > 5 else 0)
