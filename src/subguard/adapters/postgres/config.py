"""The proxy's settings: from `subguard.toml` (read with tomllib), overridden by flags
and `SUBGUARD_*` variables, validated into one `ProxyConfig` with clear errors
(`file:line: …` where the file says it).

    [proxy]     listen, tls_cert, tls_key, startup_timeout, max_message_bytes,
                max_connections, idle_timeout
    [policy]    rules (list), data (list)
    [store]     url
    [identity]  jwt_secret_file, public_key_files, jwks_file, issuer, audience,
                subject_claim, groups_claim, leeway, require_exp
    [approval]  timeout
    [masking]   key_file
    [resource]  name, env, upstream, password_file, tags_file, column_tags, tags
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from subguard.adapters.postgres.upstream import UpstreamTarget
from subguard.errors import ConfigError
from subguard.identity import IdentityConfig
from subguard.identity._config import IDENTITY_SETTINGS

__all__ = ["ProxyConfig", "read_config_file"]

PASSWORD_ENV = "SUBGUARD_UPSTREAM_PASSWORD"

_TABLES: dict[str, frozenset[str]] = {
    "proxy": frozenset(
        {
            "listen",
            "tls_cert",
            "tls_key",
            "startup_timeout",
            "max_message_bytes",
            "max_connections",
            "idle_timeout",
        }
    ),
    "policy": frozenset({"rules", "data"}),
    "store": frozenset({"url"}),
    "identity": frozenset(IDENTITY_SETTINGS),
    "approval": frozenset({"timeout"}),
    "masking": frozenset({"key_file"}),
    "resource": frozenset(
        {"name", "env", "upstream", "password_file", "tags_file", "column_tags", "tags"}
    ),
}


@attrs.frozen
class ConfigFile:
    """A parsed subguard.toml: its tables, where it is, and its text (for line numbers)."""

    path: Path
    doc: Mapping[str, Any]
    text: str

    def where(self, table: str, key: str | None = None) -> str:
        """`path:line` of `[table]` (or of `key` inside it), else `path`."""
        lines = self.text.splitlines()
        header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
        start = next((i for i, line in enumerate(lines) if header.match(line)), None)
        if start is None:
            return str(self.path)
        if key is None:
            return f"{self.path}:{start + 1}"
        keyline = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for i in range(start + 1, len(lines)):
            if lines[i].lstrip().startswith("["):
                break
            if keyline.match(lines[i]):
                return f"{self.path}:{i + 1}"
        return f"{self.path}:{start + 1}"

    def get(self, table: str, key: str) -> Any:
        section = self.doc.get(table)
        return section.get(key) if isinstance(section, Mapping) else None

    def path_of(self, value: str) -> str:
        p = Path(value)
        return str(p if p.is_absolute() else self.path.parent / p)


def read_config_file(path: str | Path) -> ConfigFile:
    """Parse and check the shape of a configuration file (unknown tables and keys are
    errors, with a suggestion)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{p}: cannot read the configuration: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+)", str(exc))
        line = (
            int(found.group(1))
            if found
            else (text.count("\n") + 1 if "end of document" in str(exc) else None)
        )
        where = f"{p}:{line}" if line else str(p)
        raise ConfigError(
            f"{where}: not valid TOML: {str(exc).split(' (at ')[0].lower()}"
        ) from None
    config = ConfigFile(p, doc, text)
    for table, value in doc.items():
        if table not in _TABLES:
            raise ConfigError(
                f"{p}: `[{table}]` is not a section of subguard.toml{_suggest(table, _TABLES)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{config.where(table)}: `{table}` must be a table")
        for key in value:
            if key not in _TABLES[table]:
                raise ConfigError(
                    f"{config.where(table, key)}: `{key}` is not a setting of [{table}]{_suggest(key, _TABLES[table])}"
                )
    return config


def _suggest(name: str, known: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"listen `{value}`: give HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _seconds(name: str, value: Any, *, positive: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise ConfigError(
            f"`{name}` must be a {'positive' if positive else 'non-negative'} number of seconds"
        )
    return float(value)


def _read_secret(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the {what} file `{path}`: {getattr(exc, 'strerror', None) or exc}"
        ) from None


def load_tags(path: str) -> dict[str, list[str]]:
    """A tags file: JSON `{"table.column": ["tag", …]}`."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the tags file `{path}`: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    return _check_tags(doc, path)


def _check_tags(doc: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{where}: column tags must be an object of `table.column` → list of tags"
        )
    out: dict[str, list[str]] = {}
    for key, value in doc.items():
        if not isinstance(key, str) or key.count(".") < 1:
            raise ConfigError(f"{where}: `{key}` is not `table.column`")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
            raise ConfigError(f"{where}: the tags of `{key}` must be a list of strings")
        out[key] = list(value)
    return out


@attrs.frozen
class ProxyConfig:
    """Everything `subguard proxy postgres` needs, validated."""

    listen: tuple[str, int]
    upstream: UpstreamTarget
    rules: tuple[str, ...]
    data: tuple[str, ...] = ()
    store: str = "memory://"
    identity: IdentityConfig = attrs.field(factory=IdentityConfig)
    column_tags: Mapping[str, Sequence[str]] = attrs.field(factory=dict)
    approval_timeout: float = 0.0
    resource_name: str = ""
    resource_env: str = ""
    resource_tags: Mapping[str, Any] = attrs.field(factory=dict)
    mask_key: bytes | None = attrs.field(default=None, repr=False)
    tls_cert: str | None = None
    tls_key: str | None = None
    startup_timeout: float = 10.0
    max_message_bytes: int = 16 * 1024 * 1024
    max_connections: int = 1000
    idle_timeout: float = 0.0

    @classmethod
    def build(cls, file: ConfigFile | None, overrides: Mapping[str, Any]) -> ProxyConfig:
        """The settings of `file` (may be None) with `overrides` (flag values; None or an
        empty tuple means "not given") on top."""

        def pick(table: str, key: str, flag: str | None = None) -> tuple[Any, str]:
            value = overrides.get(flag or key)
            if value is not None and value != ():
                return value, f"--{(flag or key).replace('_', '-')}"
            if file is not None:
                got = file.get(table, key)
                if got is not None:
                    return got, file.where(table, key)
            return None, ""

        def fpath(value: str) -> str:
            return file.path_of(value) if file is not None else value

        def from_file(table: str, key: str) -> bool:
            return (
                file is not None
                and file.get(table, key) is not None
                and overrides.get(key) in (None, ())
            )

        listen_value, where = pick("proxy", "listen")
        try:
            listen = parse_listen(str(listen_value or "127.0.0.1:6432"))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None

        upstream_url, where = pick("resource", "upstream")
        if not upstream_url:
            raise ConfigError("no upstream database: give --upstream or `upstream` in [resource]")
        password_file, _pw_where = pick("resource", "password_file", "upstream_password_file")
        password = os.environ.get(PASSWORD_ENV) or None
        if password_file:
            path = fpath(password_file) if from_file("resource", "password_file") else password_file
            password = _read_secret(path, "upstream password")
        try:
            upstream = UpstreamTarget.from_url(str(upstream_url), password=password)
        except ConfigError as exc:
            raise ConfigError(
                f"{where}: {exc}"
                if where.startswith(str(file.path if file else "\0"))
                else str(exc)
            ) from None

        rules, where = pick("policy", "rules")
        if not rules:
            raise ConfigError("no policy: give --rules or `rules` in [policy]")
        rules = _paths(rules, where, "rules")
        if from_file("policy", "rules"):
            rules = tuple(fpath(r) for r in rules)
        data, where = pick("policy", "data")
        data = _paths(data or (), where, "data")
        if from_file("policy", "data"):
            data = tuple(fpath(d) for d in data)

        store, _ = pick("store", "url", "store")
        store = str(store or "memory://")
        if (
            from_file("store", "url")
            and store.startswith("sqlite:///")
            and not store.startswith("sqlite:////")
        ):
            relative = store[len("sqlite:///") :]
            store = "sqlite:///" + fpath(relative)

        identity = _identity(file, overrides)

        tags: dict[str, list[str]] = {}
        if file is not None and file.get("resource", "column_tags") is not None:
            tags.update(
                _check_tags(
                    file.get("resource", "column_tags"), file.where("resource", "column_tags")
                )
            )
        tags_file, _ = pick("resource", "tags_file", "tags")
        if tags_file:
            tags.update(
                load_tags(fpath(tags_file) if from_file("resource", "tags_file") else tags_file)
            )

        timeout, where = pick("approval", "timeout", "approval_timeout")
        try:
            approval_timeout = _seconds("approval timeout", timeout if timeout is not None else 0.0)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

        key_file, _ = pick("masking", "key_file", "mask_key_file")
        mask_key = None
        if key_file:
            mask_key = _read_secret(
                fpath(key_file) if from_file("masking", "key_file") else key_file, "mask key"
            ).encode()

        cert, _ = pick("proxy", "tls_cert")
        key, _ = pick("proxy", "tls_key")
        if bool(cert) != bool(key):
            raise ConfigError("TLS needs both a certificate (`tls_cert`) and its key (`tls_key`)")
        if cert:
            cert = fpath(cert) if from_file("proxy", "tls_cert") else cert
            key = fpath(key) if from_file("proxy", "tls_key") else key

        numbers: dict[str, Any] = {}
        for key_name, default in (("startup_timeout", 10.0), ("idle_timeout", 0.0)):
            value, where = pick("proxy", key_name)
            try:
                numbers[key_name] = _seconds(
                    key_name,
                    value if value is not None else default,
                    positive=key_name == "startup_timeout",
                )
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None
        for key_name, default, low in (
            ("max_message_bytes", 16 * 1024 * 1024, 1024),
            ("max_connections", 1000, 1),
        ):
            value, where = pick("proxy", key_name)
            value = default if value is None else value
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"{where or '--' + key_name}: `{key_name}` must be an integer of at least {low}"
                )
            numbers[key_name] = value

        name = (file.get("resource", "name") if file else None) or upstream.database
        env = (file.get("resource", "env") if file else None) or ""
        resource_tags = (file.get("resource", "tags") if file else None) or {}
        if (
            not isinstance(name, str)
            or not isinstance(env, str)
            or not isinstance(resource_tags, dict)
        ):
            raise ConfigError(
                f"{file.where('resource') if file else ''}: [resource] `name` and `env` are strings, `tags` a table"
            )
        return cls(
            listen=listen,
            upstream=upstream,
            rules=rules,
            data=data,
            store=store,
            identity=identity,
            column_tags=tags,
            approval_timeout=approval_timeout,
            resource_name=name,
            resource_env=env,
            resource_tags=resource_tags,
            mask_key=mask_key,
            tls_cert=cert or None,
            tls_key=key or None,
            **numbers,
        )


def _paths(value: Any, where: str, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ConfigError(f"{where}: `{what}` must be a list of paths")


def _identity(file: ConfigFile | None, overrides: Mapping[str, Any]) -> IdentityConfig:
    doc: dict[str, Any] = {}
    section = file.doc.get("identity") if file is not None else None
    base = file.path.parent if file is not None else None
    if isinstance(section, Mapping):
        try:
            config = IdentityConfig.from_mapping(
                section, base=base, where=file.where("identity") if file else "identity"
            )
        except ConfigError:
            raise
        doc = {
            k: getattr(config, k)
            for k in (
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
        }
    for flag, key in (
        ("jwt_secret_file", "jwt_secret_file"),
        ("jwks_file", "jwks_file"),
        ("issuer", "issuer"),
        ("audience", "audience"),
    ):
        value = overrides.get(flag)
        if value:
            doc[key] = value
    try:
        identity = IdentityConfig(**doc)
    except ConfigError:
        raise
    if not identity.has_keys:
        raise ConfigError(
            "no token keys: give --jwt-secret-file, --jwks-file or [identity] keys (agents log in with a token)"
        )
    return identity
