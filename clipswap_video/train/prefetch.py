"""The next training batches, drawn in a thread while the step runs.

Drawn between steps on the main thread, a batch's file reads and colour jitter
did not overlap the step, and its copy to the GPU came from pageable memory,
which the GPU cannot read while it computes. Here a thread draws up to `depth`
batches ahead, pinned when they go to a GPU so that the trainer's copy is
asynchronous. The draws are the sampler's own, one after another on its
generator: the batches, and their order, are those of a run without the thread.

The thread runs ahead of the steps, so the sampler's generator is ahead too: a
checkpoint keeps `consumed_state`, the state after the last batch handed out,
and `close()` winds the generator back to it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import torch

from clipswap_video._threads import Producer
from clipswap_video.train.data import Batch, PairSampler


class Prefetcher:
    """`count` batches of `sampler`, drawn `depth` ahead in a thread; pinned with `pin`.

    Use as a context manager: leaving it (the run ended, failed or was
    interrupted) stops the thread.
    """

    def __init__(self, sampler: PairSampler, count: int, *, pin: bool, depth: int = 2) -> None:
        self._sampler = sampler
        self.consumed_state = sampler.generator.get_state()
        self._stop = threading.Event()
        self._producer = Producer(
            self._draw(count, pin), maxsize=depth, stop=self._stop, name="train-batches"
        )
        self._batches = iter(self._producer)

    def _draw(self, count: int, pin: bool) -> Iterator[tuple[Batch, torch.Tensor]]:
        for _ in range(count):
            batch = self._sampler.draw()
            state = self._sampler.generator.get_state()
            yield (batch.pin_memory() if pin else batch), state

    def next(self) -> Batch:
        """The next batch; raises what the drawing thread raised."""
        batch, self.consumed_state = next(self._batches)
        return batch

    def close(self) -> None:
        """Stops the thread (after the draw it is in) and sets the sampler's
        generator to the batches handed out, as if none had been drawn ahead."""
        self._stop.set()
        self._producer.join()
        self._sampler.generator.set_state(self.consumed_state)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Prefetcher"]
