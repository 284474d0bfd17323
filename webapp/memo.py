"""Answers kept until the store's next write, for pages that read the whole store to say the same to everyone.

The home page's counts, the framework, the evidence matrix and a search's matching CMOCs each read every CMOC,
quote or quad: 1 to 8 s on the benchmark's 100k-CMOC store, however well their queries are planned, and a search is read
again for each of its pages. The app's own store changes only by writes under the app's write lock, which
counts them (`executor.WriteLock.state`, whose version also keys the pages' ETags in webapp.httpcache), so an
answer computed at one version stays right until the next: it is kept, in the web process, and every answer is
dropped at once when the version moves. A remote store can change behind the app's back: nothing is kept.

What is kept is bounded by `BUDGET` units (an answer's `size`: the number of IRIs of a search, 1 for the rest),
least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import pyoxigraph as ox
from flask import current_app

from . import get_store

T = TypeVar("T")
KEY = "cmokg_memo"
"""app.extensions key of the app's `Memo`."""
BUDGET = 400_000
"""Units kept at most: four searches matching every CMOC of a 100k store (~10 MB of IRIs each)."""


class Memo:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.version: object = None
        self.entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self.used = 0
        self.lock = threading.Lock()

    def get(self, version: object, key: Hashable) -> tuple[bool, object]:
        with self.lock:
            if version != self.version or key not in self.entries:
                return False, None
            self.entries.move_to_end(key)
            return True, self.entries[key][0]

    def put(self, version: object, key: Hashable, value: object, size: int) -> None:
        with self.lock:
            if version != self.version:
                self.version, self.entries, self.used = version, OrderedDict(), 0
            if size > self.budget or key in self.entries:
                return
            self.entries[key] = (value, size)
            self.used += size
            while self.used > self.budget:
                _, (_, dropped) = self.entries.popitem(last=False)
                self.used -= dropped


def local_store() -> bool:
    """Whether the served store is the app's own (embedded or handed over), which changes only by its writes
    (under the app's write lock); webapp.httpcache gives validators only then."""
    return isinstance(get_store().ox, ox.Store)


def _memo() -> Memo:
    ext = current_app.extensions
    memo = ext.get(KEY)
    if memo is None:
        memo = ext.setdefault(KEY, Memo(BUDGET))
    assert isinstance(memo, Memo)
    return memo


def kept(key: Hashable, compute: Callable[[], T], size: Callable[[T], int] = lambda _: 1) -> T:
    """`compute()`, or what it gave at this version of the app's store; always computed for a remote store."""
    if not local_store():
        return compute()
    lock = current_app.extensions["cmokg_write_lock"]
    version = lock.state[0]
    memo = _memo()
    found, value = memo.get(version, key)
    if found:
        return value  # type: ignore[return-value]
    computed = compute()
    if lock.state[0] == version:  # no write ended while computing: the answer is this version's
        memo.put(version, key, computed, size(computed))
    return computed
