"""Random interleavings of check / approve / reject / expire / revoke / restore / kill keep
the log's folded state equal to a simple in-memory model."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from subguard.engine.types import Effect
from subguard.errors import LogError
from subguard.log import open_log, verify_store

from .conftest import make_ctx, make_decision

SUBJECTS = ("alice", "bob", "carol")
SESSIONS = ("s1", "s2", "s3")
TEXTS = ("a", "b")  # exact statements; both share one shape (fingerprint)
TTL = 100.0
WINDOW = 30.0
S = 1_000_000_000


@attrs.define
class ModelApproval:
    subject: str
    session: str
    exact: str
    status: str = "pending"
    mode: str | None = None
    until: int = 0
    expires: int = 0


@attrs.define
class ModelSession:
    subject: str
    requests: int = 0
    denied: int = 0
    terminated: bool = False


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1_800_000_000 * S
        self.log = open_log(
            f"memory://{uuid.uuid4().hex}",
            follow=False,
            approval_ttl=TTL,
            checkpoint_every=7,
            clock=lambda: self.now,
        )
        self.sessions: dict[str, ModelSession] = {}
        self.approvals: dict[uuid.UUID, ModelApproval] = {}
        self.revoked: set[str] = set()

    def teardown(self) -> None:
        self.log.close()

    # -- the model's grant rule ---------------------------------------------------------
    def _grant(self, subject: str, exact: str) -> uuid.UUID | None:
        window = None
        for key, a in self.approvals.items():
            if a.subject != subject or a.status != "granted" or a.until <= self.now:
                continue
            if a.mode == "once" and a.exact == exact:
                return key
            if a.mode == "window":
                window = key
        return window

    @rule(
        subject=st.sampled_from(SUBJECTS),
        session=st.sampled_from(SESSIONS),
        text=st.sampled_from(TEXTS),
        effect=st.sampled_from(
            [Effect.ALLOW, Effect.DENY, Effect.APPROVE, Effect.TERMINATE, Effect.MASK]
        ),
    )
    def check(self, subject: str, session: str, text: str, effect: Effect) -> None:
        owner = self.sessions.get(session)
        if owner is not None and owner.subject != subject:
            subject = owner.subject  # a session belongs to one subject
        ctx = make_ctx(subject=subject, session=session, exact_hash=text, fingerprint="shape")
        preflight = self.log.before(ctx)
        model = self.sessions.setdefault(session, ModelSession(subject))
        expected_terminate = subject in self.revoked or model.terminated
        assert (preflight.terminate is not None) == expected_terminate
        if preflight.terminate is not None:
            effect = Effect.TERMINATE
        decision = self.log.record(ctx, make_decision(effect, "rule"))
        expected = effect
        if effect is Effect.APPROVE:
            grant = self._grant(subject, text)
            if grant is not None:
                expected = Effect.ALLOW
                if self.approvals[grant].mode == "once":
                    self.approvals[grant].status = "used"
            else:
                assert decision.approval_id is not None
                self.approvals[decision.approval_id] = ModelApproval(
                    subject, session, text, expires=self.now + int(TTL * S)
                )
        assert decision.effect is expected
        model.requests += 1
        if expected in (Effect.DENY, Effect.TERMINATE):
            model.denied += 1
        if expected is Effect.TERMINATE:
            model.terminated = True

    def _pending(self) -> list[uuid.UUID]:
        return [k for k, a in self.approvals.items() if a.status == "pending"]

    @precondition(lambda self: bool(self._pending()))
    @rule(data=st.data(), by=st.sampled_from((*SUBJECTS, "oncall")), window=st.booleans())
    def approve(self, data: Any, by: str, window: bool) -> None:
        key = data.draw(st.sampled_from(self._pending()))
        approval = self.approvals[key]
        if by == approval.subject:
            try:
                self.log.approve(key, by=by)
            except LogError as e:
                assert "own request" in str(e)
                return
            raise AssertionError("self-approval was accepted")
        self.log.approve(key, by=by, window=WINDOW if window else None)
        approval.status = "granted"
        approval.mode = "window" if window else "once"
        approval.until = self.now + int((WINDOW if window else TTL) * S)

    @precondition(lambda self: bool(self._pending()))
    @rule(data=st.data())
    def reject(self, data: Any) -> None:
        key = data.draw(st.sampled_from(self._pending()))
        self.log.reject(key, by="oncall", reason="no")
        self.approvals[key].status = "refused"

    @rule(seconds=st.sampled_from([1.0, WINDOW + 1, TTL + 1]))
    def advance_and_expire(self, seconds: float) -> None:
        self.now += int(seconds * S)
        expired = set(self.log.expire_approvals())
        expected = {
            k for k, a in self.approvals.items() if a.status == "pending" and a.expires <= self.now
        }
        assert expired == expected
        for key in expected:
            self.approvals[key].status = "expired"

    @rule(subject=st.sampled_from(SUBJECTS))
    def revoke(self, subject: str) -> None:
        self.log.revoke(subject, reason="incident")
        self.revoked.add(subject)

    @rule(subject=st.sampled_from(SUBJECTS))
    def restore(self, subject: str) -> None:
        if subject not in self.revoked:
            try:
                self.log.restore(subject)
            except LogError:
                return
            raise AssertionError("restoring a subject that is not revoked was accepted")
        self.log.restore(subject)
        self.revoked.discard(subject)

    @rule(session=st.sampled_from(SESSIONS))
    def kill(self, session: str) -> None:
        model = self.sessions.get(session)
        if model is None or model.terminated:
            try:
                self.log.kill(session)
            except LogError:
                return
            raise AssertionError("killing a missing or ended session was accepted")
        self.log.kill(session, reason="responder")
        model.terminated = True

    # -- what must always hold -------------------------------------------------------------
    @invariant()
    def folded_state_matches_the_model(self) -> None:
        assert set(self.log.revoked()) == self.revoked
        for name, model in self.sessions.items():
            state = self.log.session_state(name)
            pending = sum(
                1 for a in self.approvals.values() if a.session == name and a.status == "pending"
            )
            assert (
                state["requests"],
                state["denied"],
                state["terminated"],
                state["approvals_pending"],
            ) == (
                model.requests,
                model.denied,
                model.terminated,
                pending,
            )
        statuses = {a.id: a.status for a in self.log.approvals()}
        assert statuses == {k: a.status for k, a in self.approvals.items()}

    @invariant()
    def log_verifies(self) -> None:
        assert verify_store(self.log.store).ok

    @invariant()
    def a_fresh_reader_folds_the_same_state(self) -> None:
        # Another process opening the store now: same revocations and approvals.
        if not self.sessions:
            return
        other = open_log(self.log.store.url, follow=False, clock=lambda: self.now)
        try:
            assert other.revoked() == self.log.revoked()
            assert {a.id: a.status for a in other.approvals()} == {
                a.id: a.status for a in self.log.approvals()
            }
            for name in self.sessions:
                assert other.session_state(name) == self.log.session_state(name)
        finally:
            other.close()


LogMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLogMachine = LogMachine.TestCase
