"""Streaming a serializer's output as an HTTP body.

pyoxigraph serializers write into a file-like object and return when done; a response body is an iterator.
`stream_writer` runs the serializer in a thread that writes into a small bounded queue, and the response
iterates it: memory stays at a few chunks however large the dump, and when the client goes away the writer's
next `write` fails and the thread ends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_DONE = object()
CHUNK = 64 * 1024


class _Cancelled(Exception):
    pass


class _QueueWriter:
    def __init__(self, q: queue.Queue[Any], cancelled: threading.Event) -> None:
        self.q, self.cancelled, self.buf = q, cancelled, bytearray()

    def write(self, data: bytes) -> int:
        self.buf += data
        if len(self.buf) >= CHUNK:
            self._push()
        return len(data)

    def _push(self) -> None:
        while not self.cancelled.is_set():
            try:
                self.q.put(bytes(self.buf), timeout=0.5)
                self.buf.clear()
                return
            except queue.Full:
                continue
        raise _Cancelled

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.buf:
            self._push()


def stream_writer(write: Callable[[Any], None]) -> Iterator[bytes]:
    q: queue.Queue[Any] = queue.Queue(maxsize=8)
    cancelled = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        w = _QueueWriter(q, cancelled)
        try:
            write(w)
            w.close()
        except _Cancelled:
            return
        except BaseException as exc:  # reported to the reader
            failure.append(exc)
        while not cancelled.is_set():
            try:
                q.put(_DONE, timeout=0.5)
                return
            except queue.Full:
                continue

    def body() -> Iterator[bytes]:
        thread = threading.Thread(target=run, daemon=True, name="cmokg-stream")
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    break
                yield item
            if failure:
                raise failure[0]
        finally:
            cancelled.set()
            thread.join(timeout=5)

    return body()
