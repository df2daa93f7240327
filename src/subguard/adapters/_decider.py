"""Decisions for asyncio adapters, made in the event loop and recorded in batches.

Handing each request to a worker thread costs more than deciding it: a thread switch
there and a wake-up of the loop back, per request, all under one interpreter lock. The
`AsyncDecider` instead decides requests in the loop itself (the analysis is cached by
text and by shape, the rules are compiled), staging their decisions in one open engine
batch, and commits that batch in one transaction on a single writer thread. While a
commit runs, what arrives is decided and staged into the next batch, which is committed
as soon as the writer is free: the disk's flush and the deciding overlap, and a batch
holds whatever arrived during the previous commit (group commit, with no timer).

Write-ahead as `Engine.check`: no decision is returned before the commit that holds it.
A request sees the state its session's earlier requests left (`input.session`): within
the open batch the engine batch counts them; a request whose session has a decision in
the commit still running waits for that commit before it is decided.

Long texts are not decided in the loop (a cold analysis of one would stall every
session): an adapter sends them to `Engine.check` on a worker thread instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from subguard.engine import CheckBatch, Decision, Engine, Request, Resource, Subject

__all__ = ["INLINE_TEXT_CHARS", "AsyncDecider"]

#: Texts up to this long are decided in the event loop; longer ones on a worker thread.
INLINE_TEXT_CHARS = 8192

_Args = tuple[Request, Subject, Resource, str | None]


class AsyncDecider:
    """Decides requests in the event loop, commits them in batches (see the module).

    `inline_commit`: commit in the loop too (a memory log, where a commit is a few
    dictionary updates and a thread switch would cost more than it)."""

    def __init__(self, engine: Engine, *, inline_commit: bool = False) -> None:
        self.engine = engine
        self.inline_commit = inline_commit
        self._waiting: list[tuple[_Args, asyncio.Future[Decision]]] = []
        self._scheduled = False
        #: the batch being filled, its waiters and sessions
        self._open: CheckBatch | None = None
        self._open_futures: list[asyncio.Future[Decision]] = []
        self._open_sessions: set[str] = set()
        #: sessions with a decision in the commit running now (None: no commit running)
        self._committing: set[str] | None = None
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
        self._schedule(loop)
        return await future

    def close(self) -> None:
        self._writer.shutdown(wait=False, cancel_futures=True)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:
            self._scheduled = True
            # after the callbacks already ready: their requests join this round
            loop.call_soon(self._decide_waiting)

    def _decide_waiting(self) -> None:
        """Decide what waits into the open batch; commit it if the writer is free."""
        self._scheduled = False
        waiting, self._waiting = self._waiting, []
        later: list[tuple[_Args, asyncio.Future[Decision]]] = []
        committing = self._committing or ()
        for args, future in waiting:
            if future.done():  # the session went away meanwhile
                continue
            session = args[3]
            if session is not None and session in committing:
                later.append((args, future))  # after the commit holding its last decision
                continue
            if self._open is None:
                self._open = self.engine.batch()
            try:
                staged = self._open.add(*args)
            except BaseException as exc:  # add never raises; if it did, this request fails
                future.set_exception(exc)
                continue
            if not staged:  # a new session's second request: after this batch's commit
                later.append((args, future))
                continue
            self._open_futures.append(future)
            if session is not None:
                self._open_sessions.add(session)
        self._waiting[:0] = later
        if self._committing is None:
            self._commit_open()

    def _commit_open(self) -> None:
        batch, futures, sessions = self._open, self._open_futures, self._open_sessions
        self._open, self._open_futures, self._open_sessions = None, [], set()
        if batch is None or not futures:
            if self._waiting:  # deferred to a commit that is over: decide them now
                self._schedule(asyncio.get_running_loop())
            return
        self._committing = sessions
        self.batches += 1
        self.decisions += len(futures)
        if self.inline_commit:
            try:
                decisions = batch.commit()
            except BaseException as exc:  # commit never raises; if it did, fail closed
                self._settle(futures, None, exc)
            else:
                self._settle(futures, decisions, None)
            return
        loop = asyncio.get_running_loop()
        try:
            committing = loop.run_in_executor(self._writer, batch.commit)
        except RuntimeError as exc:  # the writer is shut down: the adapter is closing
            self._settle(futures, None, exc)
            return
        committing.add_done_callback(lambda done: self._settled(futures, done))

    def _settled(
        self, futures: list[asyncio.Future[Decision]], done: asyncio.Future[list[Decision]]
    ) -> None:
        try:
            decisions = done.result()
        except BaseException as exc:  # cancelled, or a commit that raised: fail closed
            self._settle(futures, None, exc)
        else:
            self._settle(futures, decisions, None)

    def _settle(
        self,
        futures: list[asyncio.Future[Decision]],
        decisions: list[Decision] | None,
        error: BaseException | None,
    ) -> None:
        for i, future in enumerate(futures):
            if future.done():
                continue
            if decisions is not None:
                future.set_result(decisions[i])
            else:
                assert error is not None
                future.set_exception(error)
        self._committing = None
        if self._waiting:
            self._schedule(asyncio.get_running_loop())
        else:
            self._commit_open()
