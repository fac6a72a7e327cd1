"""Bounded hand-offs between pipeline threads.

Each stage runs in its own thread and talks through a bounded queue, so a slow
stage holds back the ones before it instead of letting frames pile up: memory
is flat in the video's length. Errors cross threads and are raised where the
main thread next touches the stage. Every blocking call wakes up regularly to
look at the shared stop event, so Ctrl-C ends all threads promptly.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.1
_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(items: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Puts `item` unless asked to stop first; returns False when stopped."""
    while not stop.is_set():
        try:
            items.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


class Producer(Generic[T]):
    """Runs `source` in a thread; iterate the Producer to receive its items."""

    def __init__(
        self, source: Iterable[T], *, maxsize: int, stop: threading.Event, name: str
    ) -> None:
        self._items: queue.Queue[object] = queue.Queue(maxsize)
        self._stop = stop
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _run(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if not _put(self._items, item, self._stop):
                    return
            _put(self._items, _DONE, self._stop)
        except BaseException as error:  # handed to the main thread, raised there
            _put(self._items, _Failed(error), self._stop)

    def __iter__(self) -> Iterator[T]:
        """Items in order; ends early when a stage downstream failed and set `stop`."""
        while True:
            try:
                item = self._items.get(timeout=_POLL_S)
            except queue.Empty:
                if self._stop.is_set() and not self._thread.is_alive():
                    return  # the failed stage raises its own error next
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]

    def join(self) -> None:
        self._thread.join()


class Consumer(Generic[T]):
    """Calls `sink(item)` in a thread for every item `put()`; `close()` waits for the rest."""

    def __init__(
        self, sink: Callable[[T], None], *, maxsize: int, stop: threading.Event, name: str
    ) -> None:
        self._items: queue.Queue[object] = queue.Queue(maxsize)
        self._stop = stop
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(sink,), name=name, daemon=True)
        self._thread.start()

    def _run(self, sink: Callable[[T], None]) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._items.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is _DONE:
                    return
                sink(item)  # type: ignore[arg-type]
        except BaseException as error:
            self._error = error
            self._stop.set()  # the producer side stops feeding a dead sink

    def put(self, item: T) -> None:
        self._raise_if_failed()
        if not _put(self._items, item, self._stop):
            self._raise_if_failed()

    def close(self) -> None:
        """Waits until every item is consumed; raises the sink's error if it failed."""
        _put(self._items, _DONE, self._stop)
        self._thread.join()
        self._raise_if_failed()

    def join(self) -> None:
        self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error


__all__ = ["Consumer", "Producer"]
