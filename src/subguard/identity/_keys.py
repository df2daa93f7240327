"""The verification keys a configuration names, loaded once and kept: each key with the
algorithms it may verify (so a token cannot choose how its own signature is checked).
A JWKS file is read again when it changes on disk, and at once for an unknown `kid`."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import attrs
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from subguard.identity._config import IdentityConfig
from subguard.identity._errors import TokenError

__all__ = ["KeyRing", "VerificationKey"]

_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_BY_CURVE = {
    "secp256r1": "ES256",
    "secp384r1": "ES384",
    "secp521r1": "ES512",
    "secp256k1": "ES256K",
}
#: The algorithms a JWK of each key type may verify when it names none itself.
_JWK_FAMILY = {"RSA": _RSA, "OKP": frozenset({"EdDSA"})}

#: How often, at most, a JWKS file's modification is looked for.
RECHECK_SECONDS = 1.0


@attrs.frozen
class VerificationKey:
    """A key, the algorithms it verifies, and its `kid` (JWKS keys only)."""

    key: Any = attrs.field(repr=False)
    algorithms: frozenset[str]
    kid: str | None = None
    source: str = ""


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise TokenError(
            "key_error", f"cannot read key file `{path}`: {exc.strerror or exc}"
        ) from None


def _secret_key(secret: bytes, source: str) -> VerificationKey:
    secret = secret.strip()
    if len(secret) < 32:
        raise TokenError("key_error", f"the HS256 secret in {source} is shorter than 32 bytes")
    return VerificationKey(secret, frozenset({"HS256"}), None, source)


def _pem_keys(path: str) -> VerificationKey:
    data = _read(path)
    try:
        public: Any = serialization.load_pem_public_key(data)
    except ValueError:
        try:  # an X.509 certificate holds the public key too
            from cryptography import x509

            public = x509.load_pem_x509_certificate(data).public_key()
        except ValueError:
            raise TokenError(
                "key_error", f"`{path}` is not a PEM public key or certificate"
            ) from None
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < 2048:
            raise TokenError("key_error", f"the RSA key in `{path}` is shorter than 2048 bits")
        algorithms = _RSA
    elif isinstance(public, ec.EllipticCurvePublicKey):
        alg = _EC_BY_CURVE.get(public.curve.name)
        if alg is None:
            raise TokenError(
                "key_error", f"the EC curve `{public.curve.name}` of `{path}` is not supported"
            )
        algorithms = frozenset({alg})
    elif isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        algorithms = frozenset({"EdDSA"})
    else:
        raise TokenError("key_error", f"the key type of `{path}` is not supported")
    return VerificationKey(public, algorithms, None, path)


def _jwks_keys(path: str, data: bytes) -> tuple[VerificationKey, ...]:
    try:
        doc = json.loads(data)
    except ValueError:
        raise TokenError("key_error", f"`{path}` is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise TokenError("key_error", f"`{path}` is not a JWKS document (an object with `keys`)")
    out: list[VerificationKey] = []
    for index, entry in enumerate(doc["keys"]):
        if not isinstance(entry, dict):
            raise TokenError("key_error", f"`{path}`: key {index} is not an object")
        if entry.get("use") not in (None, "sig"):
            continue  # an encryption key never verifies a signature
        if "d" in entry or entry.get("kty") == "oct":
            # a private or symmetric key published as a verification key: a JWKS file is
            # public material, and an `oct` key would let anyone who reads it sign tokens
            raise TokenError("key_error", f"`{path}`: key {index} is a private or symmetric key")
        try:
            jwk = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            raise TokenError("key_error", f"`{path}`: key {index} cannot be read") from None
        alg = entry.get("alg")
        if isinstance(alg, str):
            algorithms = frozenset({alg})
        elif entry.get("kty") == "EC":
            curve = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(
                str(entry.get("crv"))
            )
            algorithms = frozenset({curve}) if curve else frozenset()
        else:
            algorithms = _JWK_FAMILY.get(str(entry.get("kty")), frozenset())
        kid = entry.get("kid")
        out.append(
            VerificationKey(jwk.key, algorithms, kid if isinstance(kid, str) else None, path)
        )
    return tuple(out)


class KeyRing:
    """The keys of one configuration. Thread-safe."""

    def __init__(self, config: IdentityConfig) -> None:
        self.config = config
        fixed: list[VerificationKey] = []
        if config.jwt_secret is not None:
            fixed.append(_secret_key(bytes(config.jwt_secret), "the configuration"))
        if config.jwt_secret_file:
            fixed.append(_secret_key(_read(config.jwt_secret_file), f"`{config.jwt_secret_file}`"))
        fixed.extend(_pem_keys(p) for p in config.public_key_files)
        self._fixed = tuple(fixed)
        self._lock = threading.Lock()
        self._jwks: tuple[VerificationKey, ...] = ()
        self._jwks_stamp: tuple[int, int] | None = None
        self._checked_at = 0.0
        if config.jwks_file:
            self._reload(force=True)
        if not self._fixed and not self._jwks and not config.jwks_file:
            raise TokenError("no_keys", "no verification key is configured")

    def _reload(self, *, force: bool = False) -> None:
        path = self.config.jwks_file
        if path is None:
            return
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked_at < RECHECK_SECONDS:
                return
            self._checked_at = now
            try:
                st = os.stat(path)
            except OSError as exc:
                if force:
                    raise TokenError(
                        "key_error", f"cannot read key file `{path}`: {exc.strerror or exc}"
                    ) from None
                return  # keep the keys last read: a file being replaced is briefly absent
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._jwks_stamp:
                return
            keys = _jwks_keys(path, _read(path))
            self._jwks, self._jwks_stamp = keys, stamp

    def candidates(self, alg: str, kid: str | None) -> list[VerificationKey]:
        """The keys that may verify a token signed with `alg` (and naming `kid`)."""
        self._reload()
        found = self._match(alg, kid)
        if not found and kid is not None and self.config.jwks_file:
            self._checked_at = 0.0  # a new `kid`: the file may have been rotated just now
            self._reload()
            found = self._match(alg, kid)
        return found

    def _match(self, alg: str, kid: str | None) -> list[VerificationKey]:
        jwks = self._jwks
        if kid is not None:
            named = [k for k in jwks if k.kid == kid and alg in k.algorithms]
            if named:
                return named
        return [
            k
            for k in (*self._fixed, *(k for k in jwks if k.kid is None or kid is None))
            if alg in k.algorithms
        ]
