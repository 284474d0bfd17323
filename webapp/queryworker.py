"""Entry point of a query worker process: `python -m webapp.queryworker FD` (see webapp.executor)."""

from __future__ import annotations

import sys

from webapp.executor import worker_main

if __name__ == "__main__":
    worker_main(int(sys.argv[1]))
