"""Group commit: many callers' decisions written in one transaction.

Whichever caller finds no commit in flight becomes the leader, takes everything queued
(its own unit included), hands it to the commit function and releases each caller only
after that commit returned; there is no timer, so a lone caller pays one commit and no
wait. The commit function records a result or an error on every unit it is given.

Each waiting caller sleeps on a lock of its own: a commit wakes exactly the callers it
committed, and hands leadership to the first caller still queued (if any) by waking it
alone, so no caller wakes only to find its decisions still waiting.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from subguard.engine.recorder import CheckContext
from subguard.engine.types import Decision

__all__ = ["GroupCommitter", "Unit"]

_allocate_lock = threading.Lock


@attrs.define
class Unit:
    """One caller's decisions, and what became of them."""

    items: Sequence[tuple[CheckContext, Decision]]
    result: list[Decision] | None = None
    error: BaseException | None = None
    done: bool = False
    #: held while the caller waits; released when its unit is done or it is to lead
    wake: Any = None


class GroupCommitter:
    """Queues units and elects a leader to commit them in batches.

    `gather_wait`: the shortest bound on a leader's wait for callers it expects (the
    bound grows to a quarter of a recent commit, at most 1 ms; 0 turns gathering off).
    """

    def __init__(self, commit: Callable[[list[Unit]], None], *, gather_wait: float) -> None:
        self._commit = commit
        self.gather_wait = gather_wait
        lock = threading.Lock()
        self._queue_cv = threading.Condition(lock)
        self._gather_cv = threading.Condition(lock)  # the leader waits here for company
        self._queue: list[Unit] = []
        self._committing = False
        self._gathering = False
        #: sizes of the last few group commits, and a running mean of a commit's seconds
        self._recent: collections.deque[int] = collections.deque([1], maxlen=8)
        self._commit_time = 0.0

    def submit(self, unit: Unit) -> None:
        """Queue `unit` and return once it is done (committed by this or another caller)."""
        cv = self._queue_cv
        with cv:
            self._queue.append(unit)
            if self._gathering:
                self._gather_cv.notify()
            if self._committing:
                wake = unit.wake = _allocate_lock()
                wake.acquire()
            else:
                self._committing = True
                batch = self._take_batch()
                wake = None
        if wake is not None:
            wake.acquire()  # released by the commit that did our unit, or to lead
            if unit.done:
                return
            with cv:  # promoted: the previous leader handed the commit over to us
                batch = self._take_batch()
        started = time.monotonic()
        try:
            self._commit(batch)
        finally:
            elapsed = time.monotonic() - started
            with cv:
                self._commit_time += (elapsed - self._commit_time) / 8
                for done in batch:
                    if done.wake is not None:
                        done.wake.release()
                if self._queue:
                    # hand over: the first caller still queued leads the next commit
                    self._queue[0].wake.release()
                else:
                    self._committing = False

    def _take_batch(self) -> list[Unit]:
        """The leader's batch; called with the queue lock held.

        Callers released by the last commit are still on their way back: wait for as
        many as recent batches held, but never longer than a quarter of a recent commit
        (at least `gather_wait`, at most 1 ms), so waiting costs little next to the
        commit it fills. A lone caller never waits, and a wait that brings nobody
        forgets the crowd.
        """
        want = min(max(self._recent), 64)
        if want > 1 and self.gather_wait > 0 and len(self._queue) < want:
            bound = min(max(self.gather_wait, self._commit_time / 4), 0.001)
            deadline = time.monotonic() + bound
            arrived = len(self._queue)
            self._gathering = True
            while len(self._queue) < want:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._gather_cv.wait(remaining)
            self._gathering = False
            if len(self._queue) == arrived:
                self._recent.clear()
        batch, self._queue = self._queue, []
        self._recent.append(len(batch))
        return batch
