"""What verifying a token needs: where the keys are, who must have issued the token and
for whom, and which claims name the subject and its groups."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from subguard.errors import ConfigError

__all__ = ["IDENTITY_SETTINGS", "IdentityConfig"]

#: The settings an `[identity]` table (or `IdentityConfig.from_dict`) may hold.
IDENTITY_SETTINGS = (
    "jwt_secret_file",
    "public_key_files",
    "jwks_file",
    "issuer",
    "audience",
    "subject_claim",
    "groups_claim",
    "leeway",
    "require_exp",
)


def _paths(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | Path):
        return (str(value),)
    return tuple(str(v) for v in value)


def _optional_path(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


@attrs.frozen
class IdentityConfig:
    """Keys and checks for tokens. Any mix of keys may be configured: an HS256 secret
    (`jwt_secret_file`, or `jwt_secret` in code; for development and tests), PEM public
    keys (RSA, EC, Ed25519), a JWKS file. `issuer` and `audience`, when set, must match
    (`aud` may list several audiences); a token carrying `aud` is refused when no
    audience is configured. `exp` is required unless `require_exp` is false; `nbf` and
    `iat` are checked when present, all with `leeway` seconds of clock skew."""

    jwt_secret_file: str | None = attrs.field(default=None, converter=_optional_path)
    public_key_files: tuple[str, ...] = attrs.field(default=(), converter=_paths)
    jwks_file: str | None = attrs.field(default=None, converter=_optional_path)
    issuer: str | None = None
    audience: str | None = None
    subject_claim: str = "sub"
    groups_claim: str = "groups"
    leeway: float = 0.0
    require_exp: bool = True
    #: The HS256 secret itself, for embedding code that holds it already.
    jwt_secret: bytes | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if (
            not isinstance(self.leeway, int | float)
            or isinstance(self.leeway, bool)
            or not math.isfinite(self.leeway)
            or self.leeway < 0
        ):
            raise ConfigError("identity: `leeway` must be a finite number of seconds, not negative")
        for name in ("subject_claim", "groups_claim"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"identity: `{name}` must be a non-empty string")
        for name in ("issuer", "audience"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"identity: `{name}` must be a non-empty string")

    @property
    def has_keys(self) -> bool:
        return bool(
            self.jwt_secret_file or self.jwt_secret or self.public_key_files or self.jwks_file
        )

    @classmethod
    def from_mapping(
        cls, doc: Mapping[str, Any], *, base: Path | None = None, where: str = "identity"
    ) -> IdentityConfig:
        """From a configuration table (`[identity]` of subguard.toml): unknown keys and
        wrong types are a `ConfigError` naming the key; relative paths are taken from
        `base` (the configuration file's folder)."""
        unknown = sorted(set(doc) - set(IDENTITY_SETTINGS))
        if unknown:
            raise ConfigError(
                f"{where}: `{unknown[0]}` is not an identity setting (known: {', '.join(IDENTITY_SETTINGS)})"
            )

        def path(value: Any, key: str) -> str:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: `{key}` must be a file path")
            p = Path(value)
            return str(base / p if base is not None and not p.is_absolute() else p)

        kwargs: dict[str, Any] = {}
        for key in ("jwt_secret_file", "jwks_file"):
            if key in doc:
                kwargs[key] = path(doc[key], key)
        if "public_key_files" in doc:
            files = doc["public_key_files"]
            if isinstance(files, str):
                files = [files]
            if not isinstance(files, list):
                raise ConfigError(f"{where}: `public_key_files` must be a list of file paths")
            kwargs["public_key_files"] = tuple(path(f, "public_key_files") for f in files)
        for key in ("issuer", "audience", "subject_claim", "groups_claim"):
            if key in doc:
                if not isinstance(doc[key], str):
                    raise ConfigError(f"{where}: `{key}` must be a string")
                kwargs[key] = doc[key]
        if "leeway" in doc:
            kwargs["leeway"] = doc["leeway"]
        if "require_exp" in doc:
            if not isinstance(doc["require_exp"], bool):
                raise ConfigError(f"{where}: `require_exp` must be true or false")
            kwargs["require_exp"] = doc["require_exp"]
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("identity:", f"{where}:", 1)) from None
