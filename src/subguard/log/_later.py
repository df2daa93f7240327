"""Events recorded after the fact: a queue and one writer thread, so whoever records them
never waits for a commit.

What an adapter saw happen (a connection opened, a statement completed, a connection
closed) is not a decision: nothing waits for it, and nothing is refused when it cannot
be written. `submit` queues an event and returns at once; the thread takes everything
queued (after a short linger, so a burst becomes one transaction) and hands it to the
write function. A full queue, a closed writer or a failed write drops events and counts
them (`dropped`); a failed write is logged under `subguard.log`. `flush` waits until
everything queued so far was written or dropped.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from subguard.log._builders import PendingEvent

__all__ = ["LaterWriter"]

logger = logging.getLogger("subguard.log")


class LaterWriter:
    """See the module docstring. `limit`: events queued at most (more are dropped);
    `linger`: seconds the thread waits after the first event of a burst (a write takes
    the log's write lock, which decisions' commits also take: fewer, larger writes keep
    that cost small); `batch`: events per write at most."""

    def __init__(
        self,
        write: Callable[[list[PendingEvent]], None],
        *,
        limit: int = 100_000,
        linger: float = 0.02,
        batch: int = 1000,
    ) -> None:
        self._write = write
        self.limit = limit
        self.linger = linger
        self.batch = batch
        lock = threading.Lock()
        self._ready = threading.Condition(lock)  # the thread waits here for events
        self._idle = threading.Condition(lock)  # `flush` waits here for an empty queue
        self._queue: collections.deque[PendingEvent] = collections.deque()
        self._busy = 0  # events taken by the thread and not yet written or dropped
        self._thread: threading.Thread | None = None
        self._closed = False
        self.written = 0
        self.dropped = 0

    def submit(self, event: PendingEvent) -> bool:
        """Queue `event`; False when it was dropped instead (full or closed). Never blocks
        on a write."""
        with self._ready:
            if self._closed or len(self._queue) >= self.limit:
                self.dropped += 1
                return False
            self._queue.append(event)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="subguard-log-later", daemon=True
                )
                self._thread.start()
            self._ready.notify()
            return True

    def take(self) -> list[PendingEvent]:
        """Events for a write about to happen anyway (a decisions' commit): they go in
        that transaction instead of one of their own. `settle` must follow."""
        if not self._queue:  # the common case, without the lock (a stale answer is harmless)
            return []
        with self._ready:
            return self._take_locked()

    def _take_locked(self) -> list[PendingEvent]:
        """Up to `batch` queued events, counted busy until settled; with the lock held."""
        taken = [self._queue.popleft() for _ in range(min(len(self._queue), self.batch))]
        self._busy += len(taken)
        return taken

    def settle(self, taken: list[PendingEvent], *, written: bool) -> None:
        """After the write `take` was for: counted as written, or queued again (first)."""
        if not taken:
            return
        with self._ready:
            self._busy -= len(taken)
            if written:
                self.written += len(taken)
            elif self._closed:
                self.dropped += len(taken)
            else:
                self._queue.extendleft(reversed(taken))
                self._ready.notify()
            if not self._queue and not self._busy:
                self._idle.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then stop the thread."""
        self.flush(timeout)
        with self._ready:
            self._closed = True
            self.dropped += len(self._queue)
            self._queue.clear()
            self._ready.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
            if self.linger > 0:
                time.sleep(self.linger)
            with self._ready:
                taken = self._take_locked()
            if not taken:  # a decisions' commit took them meanwhile
                continue
            try:
                self._write(taken)
                written, dropped = len(taken), 0
            except Exception as exc:  # best effort: never let a failure reach the caller
                written, dropped = 0, len(taken)
                logger.warning(
                    "decision log could not record %d connection event(s); they are lost: %s",
                    len(taken),
                    exc,
                )
            with self._ready:
                self.written += written
                self.dropped += dropped
                self._busy -= len(taken)
                if not self._queue and not self._busy:
                    self._idle.notify_all()
