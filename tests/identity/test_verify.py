"""Token verification: every way a hostile token is phrased gets its own code, and a
good one maps its claims to the subject and groups."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from subguard.errors import ConfigError
from subguard.identity import IdentityConfig, TokenError, TokenVerifier, verify_token

SECRET = b"s" * 40


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "ci-bot", "groups": ["agents"], "iat": now, "exp": now + 300}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _hs(claims: dict[str, Any], secret: bytes = SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


@pytest.fixture
def secret_config(tmp_path: Path) -> IdentityConfig:
    path = tmp_path / "secret"
    path.write_bytes(SECRET + b"\n")
    return IdentityConfig(jwt_secret_file=str(path))


def _code(token: str, config: IdentityConfig) -> str:
    with pytest.raises(TokenError) as info:
        verify_token(token, config)
    return info.value.code


def test_good_token_maps_claims(secret_config: IdentityConfig) -> None:
    identity = verify_token(_hs(_claims(groups=["agents", "pii-readers"])), secret_config)
    assert identity.subject.id == "ci-bot"
    assert identity.subject.groups == frozenset({"agents", "pii-readers"})
    assert identity.expires_at is not None and identity.expires_at > time.time()
    assert identity.subject.claims["sub"] == "ci-bot"


def test_custom_claims(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(SECRET)
    config = IdentityConfig(jwt_secret_file=str(path), subject_claim="email", groups_claim="roles")
    identity = verify_token(_hs(_claims(email="a@x.test", roles=["dba"])), config)
    assert (identity.subject.id, identity.subject.groups) == ("a@x.test", frozenset({"dba"}))


@pytest.mark.parametrize(
    ("claims", "code"),
    # built when the test runs, not at collection: a slow run outlives a token's `exp`
    [
        (lambda: _claims(exp=int(time.time()) - 10), "expired"),
        (lambda: _claims(nbf=int(time.time()) + 600), "not_yet_valid"),
        (lambda: _claims(iat=int(time.time()) + 600), "not_yet_valid"),
        (lambda: _claims(exp=None), "missing_claim"),
        (lambda: _claims(sub=None), "missing_claim"),
        (lambda: _claims(sub=""), "bad_claim"),
        (lambda: _claims(sub=7), "bad_claim"),
        (lambda: _claims(groups="agents"), "bad_claim"),  # a string is not a list of groups
        (lambda: _claims(groups=["agents", 1]), "bad_claim"),
        (lambda: _claims(aud="someone-else"), "bad_audience"),  # aud present, none configured
    ],
)
def test_bad_claims(secret_config: IdentityConfig, claims: Callable[[], dict[str, Any]], code: str) -> None:
    assert _code(_hs(claims()), secret_config) == code


def test_issuer_and_audience(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(SECRET)
    config = IdentityConfig(jwt_secret_file=str(path), issuer="https://idp.test", audience="pg")
    assert verify_token(_hs(_claims(iss="https://idp.test", aud=["pg", "other"])), config).subject.id == "ci-bot"
    assert _code(_hs(_claims(iss="https://evil.test", aud="pg")), config) == "bad_issuer"
    assert _code(_hs(_claims(aud="pg")), config) == "missing_claim"
    assert _code(_hs(_claims(iss="https://idp.test", aud="mcp")), config) == "bad_audience"
    assert _code(_hs(_claims(iss="https://idp.test")), config) == "missing_claim"


def test_wrong_secret_and_tampering(secret_config: IdentityConfig) -> None:
    assert _code(_hs(_claims(), secret=b"x" * 40), secret_config) == "bad_signature"
    good = _hs(_claims())
    header, _payload, sig = good.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(_claims(sub="root")).encode()).rstrip(b"=").decode()
    assert _code(f"{header}.{forged}.{sig}", secret_config) == "bad_signature"


def test_alg_none_is_refused(secret_config: IdentityConfig) -> None:
    token = jwt.encode(_claims(), None, algorithm="none")
    assert _code(token, secret_config) == "unsupported_algorithm"
    # `None` spelled differently
    header = base64.urlsafe_b64encode(b'{"alg":"NoNe","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=").decode()
    assert _code(f"{header}.{body}.", secret_config) == "unsupported_algorithm"


def _rsa() -> tuple[Any, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem


def test_pem_rsa_and_algorithm_confusion(tmp_path: Path) -> None:
    key, pem = _rsa()
    (tmp_path / "pub.pem").write_bytes(pem)
    config = IdentityConfig(public_key_files=[str(tmp_path / "pub.pem")])
    assert verify_token(jwt.encode(_claims(), key, algorithm="RS256"), config).subject.id == "ci-bot"
    # HS256 signed with the public key's PEM text as the secret: the classic confusion
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=")
    import hashlib
    import hmac

    sig = base64.urlsafe_b64encode(hmac.new(pem, header + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
    assert _code((header + b"." + body + b"." + sig).decode(), config) == "unknown_key"


def test_pem_ec(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "ec.pem").write_bytes(pem)
    config = IdentityConfig(public_key_files=str(tmp_path / "ec.pem"))
    assert verify_token(jwt.encode(_claims(), key, algorithm="ES256"), config).subject.id == "ci-bot"
    other = ec.generate_private_key(ec.SECP256R1())
    assert _code(jwt.encode(_claims(), other, algorithm="ES256"), config) == "bad_signature"
    assert _code(_hs(_claims()), config) == "unknown_key"  # no HS256 key is configured


def _jwk(key: Any, kid: str) -> dict[str, Any]:
    doc = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    doc.update(kid=kid, alg="RS256", use="sig")
    return dict(doc)


def test_jwks_file_kid_and_rotation(tmp_path: Path) -> None:
    k1, _ = _rsa()
    k2, _ = _rsa()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [_jwk(k1, "one")]}))
    verifier = TokenVerifier(IdentityConfig(jwks_file=str(jwks)))
    assert verifier.verify(jwt.encode(_claims(), k1, algorithm="RS256", headers={"kid": "one"})).subject.id == "ci-bot"
    rotated = jwt.encode(_claims(), k2, algorithm="RS256", headers={"kid": "two"})
    with pytest.raises(TokenError) as info:
        verifier.verify(rotated)
    assert info.value.code == "unknown_key"
    jwks.write_text(json.dumps({"keys": [_jwk(k1, "one"), _jwk(k2, "two")]}))
    os.utime(jwks, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    verifier.keys._checked_at = 0.0  # the next look at the file is due
    assert verifier.verify(rotated).subject.id == "ci-bot"
    # a token signed by k2 claiming k1's kid does not verify
    lying = jwt.encode(_claims(), k2, algorithm="RS256", headers={"kid": "one"})
    with pytest.raises(TokenError) as info:
        verifier.verify(lying)
    assert info.value.code == "bad_signature"


def test_jwks_refuses_symmetric_and_private_keys(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}))
    with pytest.raises(TokenError) as info:
        TokenVerifier(IdentityConfig(jwks_file=str(jwks)))
    assert info.value.code == "key_error"
    key, _ = _rsa()
    private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    jwks.write_text(json.dumps({"keys": [private]}))
    with pytest.raises(TokenError) as info:
        TokenVerifier(IdentityConfig(jwks_file=str(jwks)))
    assert info.value.code == "key_error"


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(TokenError) as info:
        TokenVerifier(IdentityConfig())
    assert info.value.code == "no_keys"
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    with pytest.raises(TokenError) as info:
        TokenVerifier(IdentityConfig(jwt_secret_file=str(short)))
    assert info.value.code == "key_error"
    with pytest.raises(TokenError) as info:
        TokenVerifier(IdentityConfig(jwt_secret_file=str(tmp_path / "missing")))
    assert info.value.code == "key_error"
    with pytest.raises(ConfigError, match="`jwks_fil`"):
        IdentityConfig.from_mapping({"jwks_fil": "x"})
    with pytest.raises(ConfigError, match="leeway"):
        IdentityConfig.from_mapping({"leeway": -1})
    config = IdentityConfig.from_mapping({"jwks_file": "keys.json", "audience": "pg"}, base=tmp_path)
    assert config.jwks_file == str(tmp_path / "keys.json")


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_garbage_never_verifies(garbage: str | bytes) -> None:
    config = IdentityConfig(jwt_secret=SECRET)
    with pytest.raises(TokenError) as info:
        verify_token(garbage, config)
    assert info.value.code in {"malformed", "unsupported_algorithm", "unknown_key", "bad_signature"}


@given(st.dictionaries(st.sampled_from(["sub", "groups", "exp", "nbf", "iat", "aud", "iss"]),
                       st.one_of(st.none(), st.integers(-(2**40), 2**40), st.text(max_size=5),
                                 st.lists(st.text(max_size=3), max_size=3))))
def test_arbitrary_claims_either_verify_cleanly_or_raise_a_code(claims: dict[str, Any]) -> None:
    config = IdentityConfig(jwt_secret=SECRET)
    try:
        token = _hs(claims)
    except (TypeError, ValueError):
        return
    try:
        identity = verify_token(token, config)
    except TokenError as exc:
        assert exc.code
        return
    assert isinstance(identity.subject.id, str) and identity.subject.id
    assert identity.expires_at is not None and identity.expires_at > time.time()


def test_public_surface_is_pinned() -> None:
    import subguard.identity as identity

    assert identity.__all__ == ["TOKEN_ERROR_CODES", "Identity", "IdentityConfig", "TokenError", "TokenVerifier", "verify_token"]
    assert {
        "malformed", "unsupported_algorithm", "unknown_key", "bad_signature", "expired", "not_yet_valid",
        "missing_claim", "bad_claim", "bad_issuer", "bad_audience", "no_keys", "key_error",
    } == identity.TOKEN_ERROR_CODES
