"""The follower thread: tails the notification log so this process sees other writers.

It wakes on LISTEN/NOTIFY on PostgreSQL and polls elsewhere, catches the folded state
up, and once a second records the expiry of approvals past their TTL. When the store is
unreachable it logs the failure (once per outage, then once when it recovers) and
retries; checks meanwhile see the staleness and read the log themselves, so a failing
follower never lets a check pass on old state silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from subguard.log._store import Store

__all__ = ["Follower"]

logger = logging.getLogger("subguard.log.follower")


class Follower:
    """`catch_up` after every wake-up, `sweep` once a second, until `stop`."""

    def __init__(
        self,
        store: Store,
        *,
        catch_up: Callable[[], object],
        sweep: Callable[[], object],
        poll_interval: float,
        retry_interval: float = 0.1,
    ) -> None:
        self.store = store
        self._catch_up = catch_up
        self._sweep = sweep
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self._stop = threading.Event()
        #: failures since the last successful round (0 while healthy)
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="subguard-log-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                with self.store.listen() as conn:
                    while not self._stop.is_set():
                        self._catch_up()
                        if time.monotonic() >= next_sweep:
                            next_sweep = time.monotonic() + 1.0
                            self._sweep()
                        self._recovered()
                        if conn is not None:
                            for _ in conn.notifies(
                                timeout=max(self.poll_interval, 0.1), stop_after=1
                            ):
                                pass
                        else:
                            self._stop.wait(self.poll_interval)
            except Exception:
                self._failed()
                self._stop.wait(self.retry_interval)

    def _failed(self) -> None:
        self.failures += 1
        if self.failures == 1:
            logger.warning(
                "decision log follower cannot read %s; retrying (checks read the log "
                "themselves meanwhile)",
                self.store.url,
                exc_info=True,
            )
        else:
            logger.debug("decision log follower still failing on %s", self.store.url, exc_info=True)

    def _recovered(self) -> None:
        if self.failures:
            logger.warning(
                "decision log follower reads %s again after %d failures",
                self.store.url,
                self.failures,
            )
            self.failures = 0
