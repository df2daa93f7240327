"""Decisions for asyncio adapters, made in the event loop and recorded in batches.

Handing each request to a worker thread costs more than deciding it: a thread switch
there and a wake-up of the loop back, per request, all under one interpreter lock. The
`AsyncDecider` instead decides the requests that are waiting in the loop itself (the
analysis is cached by text and by shape, the rules are compiled) as one engine batch,
and records that batch in one transaction on a single writer thread, while the loop
goes on relaying traffic and queueing what arrives meanwhile for the next batch. No
decision is returned before the commit that holds it (write-ahead), exactly as
`Engine.check`; a session's requests see the state its earlier ones left, because a
batch is decided only after the previous one committed.

Long texts are not decided in the loop (a cold analysis of one would stall every
session): an adapter sends them to `Engine.check` on a worker thread instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from subguard.engine import Decision, Engine, Request, Resource, Subject

__all__ = ["INLINE_TEXT_CHARS", "AsyncDecider"]

#: Texts up to this long are decided in the event loop; longer ones on a worker thread.
INLINE_TEXT_CHARS = 8192


class AsyncDecider:
    """Decides requests in the event loop, commits them in batches (see the module).

    `inline_commit`: commit in the loop too (a memory log, where a commit is a few
    dictionary updates and a thread switch would cost more than it)."""

    def __init__(self, engine: Engine, *, inline_commit: bool = False) -> None:
        self.engine = engine
        self.inline_commit = inline_commit
        self._waiting: list[
            tuple[tuple[Request, Subject, Resource, str | None], asyncio.Future[Decision]]
        ] = []
        self._busy = False
        self._writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="subguard-log-writer"
        )
        #: batches committed and decisions in them (for the benchmark's report)
        self.batches = 0
        self.decisions = 0

    async def check(
        self, request: Request, *, subject: Subject, resource: Resource, session: str | None
    ) -> Decision:
        """`Engine.check` for the event loop: the recorded decision."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        self._waiting.append(((request, subject, resource, session), future))
        if not self._busy:
            self._busy = True
            loop.call_soon(
                self._decide_waiting
            )  # after the callbacks already ready: a fuller batch
        return await future

    def close(self) -> None:
        self._writer.shutdown(wait=False, cancel_futures=True)

    def _decide_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        batch = self.engine.batch()
        taken: list[asyncio.Future[Decision]] = []
        for index, (args, future) in enumerate(waiting):
            if future.done():  # the session went away meanwhile
                continue
            try:
                staged = batch.add(*args)
            except BaseException as exc:  # add never raises; if it did, this request fails
                future.set_exception(exc)
                continue
            if not staged:  # must wait for this batch's commit: first in the next one
                self._waiting[:0] = waiting[index:]
                break
            taken.append(future)
        if not taken:
            self._next()
            return
        self.batches += 1
        self.decisions += len(taken)
        if self.inline_commit:
            self._settle(taken, batch.commit, None)
            return
        loop = asyncio.get_running_loop()
        try:
            committing = loop.run_in_executor(self._writer, batch.commit)
        except RuntimeError as exc:  # the writer is shut down: the proxy is closing
            self._settle(taken, None, exc)
            return
        committing.add_done_callback(lambda done: self._settled(taken, done))

    def _settled(
        self, taken: list[asyncio.Future[Decision]], done: asyncio.Future[list[Decision]]
    ) -> None:
        if done.cancelled():
            self._settle(taken, None, asyncio.CancelledError())
        else:
            error = done.exception()
            self._settle(taken, (lambda: done.result()) if error is None else None, error)

    def _settle(
        self, taken: list[asyncio.Future[Decision]], result: Any, error: BaseException | None
    ) -> None:
        decisions: list[Decision] | None = None
        if error is None:
            try:
                decisions = result()
            except BaseException as exc:  # commit never raises; if it did, fail closed
                error = exc
        for i, future in enumerate(taken):
            if future.done():
                continue
            if decisions is not None:
                future.set_result(decisions[i])
            else:
                assert error is not None
                future.set_exception(error)
        self._next()

    def _next(self) -> None:
        if self._waiting:
            asyncio.get_running_loop().call_soon(self._decide_waiting)
        else:
            self._busy = False
