"""Why a token was refused: one error class with a stable code (codes are API)."""

from __future__ import annotations

from subguard.errors import SubguardError

__all__ = ["TOKEN_ERROR_CODES", "TokenError"]

#: Every code `TokenError.code` takes.
TOKEN_ERROR_CODES = frozenset(
    {
        "malformed",  # not a JWT (three base64url parts, JSON header and claims)
        "unsupported_algorithm",  # `none`, or an algorithm no configured key is for
        "unknown_key",  # no configured key matches the token's `kid` or algorithm
        "bad_signature",
        "expired",  # `exp` is past
        "not_yet_valid",  # `nbf` or `iat` is in the future
        "missing_claim",  # a required claim (`exp`, the subject claim, …) is absent
        "bad_claim",  # a claim of the wrong type or shape
        "bad_issuer",
        "bad_audience",
        "no_keys",  # the configuration holds no key at all
        "key_error",  # a configured key file cannot be read or parsed
    }
)


class TokenError(SubguardError):
    """A token that does not establish an identity. `code` is one of
    `TOKEN_ERROR_CODES`; the message never repeats the token or a claim's value."""

    def __init__(self, code: str, message: str) -> None:
        if code not in TOKEN_ERROR_CODES:
            raise ValueError(f"unknown token error code `{code}`")
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.code, self.message))
