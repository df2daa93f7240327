"""Token identity: a JWT an agent presents where a protocol asks for a password, verified
against configured keys (an HS256 secret, PEM public keys, a JWKS file) and turned into
the `Subject` the engine decides for.

    from subguard.identity import IdentityConfig, verify_token
    config = IdentityConfig(jwks_file="keys.json", issuer="https://idp", audience="pg-proxy")
    identity = verify_token(token, config)   # or raises TokenError(code=…)
    identity.subject, identity.expires_at

`TokenVerifier` keeps the keys loaded (a JWKS file is read again when it changes); the
module function keeps one verifier per configuration.
"""

from subguard.identity._config import IdentityConfig
from subguard.identity._errors import TOKEN_ERROR_CODES, TokenError
from subguard.identity._verify import Identity, TokenVerifier, verify_token

__all__ = [
    "TOKEN_ERROR_CODES",
    "Identity",
    "IdentityConfig",
    "TokenError",
    "TokenVerifier",
    "verify_token",
]
