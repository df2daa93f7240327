"""Verifying a token: the signature with a key configured for the token's algorithm,
then `exp`/`nbf`/`iat`, issuer and audience (PyJWT), then the claims that name the
subject and its groups."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import attrs
import jwt

from subguard.engine import Subject
from subguard.identity._config import IdentityConfig
from subguard.identity._errors import TokenError
from subguard.identity._keys import KeyRing

__all__ = ["Identity", "TokenVerifier", "verify_token"]

#: A token longer than this is refused before any parsing.
MAX_TOKEN_BYTES = 16 * 1024


@attrs.frozen
class Identity:
    """A verified token: who it names, and until when (`exp`, seconds since the epoch;
    None when the token has no expiry and none was required)."""

    subject: Subject
    expires_at: float | None
    claims: Mapping[str, Any] = attrs.field(eq=False, repr=False)


_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "bad_audience"),
    (jwt.InvalidIssuerError, "bad_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidIssuedAtError, "bad_claim"),
    (jwt.exceptions.InvalidSubjectError, "bad_claim"),
    (jwt.exceptions.InvalidJTIError, "bad_claim"),
    (jwt.exceptions.InvalidAlgorithmError, "unsupported_algorithm"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.DecodeError, "malformed"),
)

_MESSAGES = {
    "expired": "the token has expired",
    "not_yet_valid": "the token is not valid yet",
    "bad_audience": "the token is not for this audience",
    "bad_issuer": "the token is not from the configured issuer",
    "bad_claim": "a registered claim of the token (`iat`, `sub`, `jti`) has the wrong type",
    "unsupported_algorithm": "the token's algorithm is not allowed",
    "bad_signature": "the token's signature does not verify",
    "malformed": "the token is not a well-formed JWT",
}


class TokenVerifier:
    """Verifies tokens against one configuration's keys (loaded once). Thread-safe."""

    def __init__(self, config: IdentityConfig) -> None:
        self.config = config
        self.keys = KeyRing(config)
        required = ["exp"] if config.require_exp else []
        self._options: dict[str, Any] = {"require": required, "verify_signature": True}

    def verify(self, token: str | bytes) -> Identity:
        """The identity `token` establishes, or `TokenError` with a code."""
        text = _text(token)
        try:
            header = jwt.get_unverified_header(text)
        except jwt.DecodeError:
            raise TokenError("malformed", _MESSAGES["malformed"]) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise TokenError("unsupported_algorithm", "the token names no signature algorithm")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("malformed", "the token's `kid` is not a string")
        candidates = self.keys.candidates(alg, kid)
        if not candidates:
            raise TokenError(
                "unknown_key",
                f"no configured key verifies `{alg}` tokens" + (" with this `kid`" if kid else ""),
            )
        payload: dict[str, Any] | None = None
        for candidate in candidates:
            try:
                payload = jwt.decode(
                    text,
                    candidate.key,
                    algorithms=[alg],
                    audience=self.config.audience,
                    issuer=self.config.issuer,
                    leeway=self.config.leeway,
                    options=self._options,  # type: ignore[arg-type]
                )
                break
            except jwt.InvalidSignatureError:
                continue  # another key of the same algorithm may verify it
            except jwt.InvalidKeyError:
                continue
            except jwt.PyJWTError as exc:
                raise _token_error(exc) from None
        if payload is None:
            raise TokenError("bad_signature", _MESSAGES["bad_signature"])
        return self._identity(payload)

    def _identity(self, payload: dict[str, Any]) -> Identity:
        sub_claim = self.config.subject_claim
        subject = payload.get(sub_claim)
        if subject is None:
            raise TokenError("missing_claim", f"the token has no `{sub_claim}` claim")
        if not isinstance(subject, str) or not subject.strip():
            raise TokenError(
                "bad_claim", f"the token's `{sub_claim}` claim is not a non-empty string"
            )
        groups_claim = self.config.groups_claim
        groups = payload.get(groups_claim, [])
        # A string is never a list of groups (its characters would become groups).
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise TokenError(
                "bad_claim", f"the token's `{groups_claim}` claim is not a list of strings"
            )
        exp = payload.get("exp")
        expires = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
        if exp is not None and expires is None:
            raise TokenError("bad_claim", "the token's `exp` is not a number")
        return Identity(Subject(subject, frozenset(groups), payload), expires, payload)


def _text(token: str | bytes) -> str:
    if isinstance(token, bytes | bytearray):
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError("malformed", "the token is too long")
        try:
            return bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise TokenError("malformed", _MESSAGES["malformed"]) from None
    if not isinstance(token, str):
        raise TokenError("malformed", _MESSAGES["malformed"])
    if len(token) > MAX_TOKEN_BYTES or not token.isascii():
        raise TokenError(
            "malformed",
            "the token is too long" if len(token) > MAX_TOKEN_BYTES else _MESSAGES["malformed"],
        )
    return token.strip()


def _token_error(exc: Exception) -> TokenError:
    for cls, code in _ERRORS:
        if isinstance(exc, cls):
            if code == "missing_claim":
                claim = getattr(exc, "claim", "")
                return TokenError(code, f"the token has no `{claim}` claim")
            return TokenError(code, _MESSAGES[code])
    return TokenError("malformed", _MESSAGES["malformed"])


_VERIFIERS: dict[IdentityConfig, TokenVerifier] = {}
_VERIFIERS_LOCK = threading.Lock()


def verify_token(token: str | bytes, config: IdentityConfig) -> Identity:
    """The identity `token` establishes under `config`, or `TokenError` (with `code`).
    Keys are loaded once per configuration and kept."""
    with _VERIFIERS_LOCK:
        verifier = _VERIFIERS.get(config)
        if verifier is None:
            if len(_VERIFIERS) >= 64:
                _VERIFIERS.clear()
            verifier = _VERIFIERS[config] = TokenVerifier(config)
    return verifier.verify(token)
