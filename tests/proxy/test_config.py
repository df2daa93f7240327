"""subguard.toml: validated with file:line errors; flags override it; the upstream
password never comes from a URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from subguard.adapters.postgres import ProxyConfig, read_config_file
from subguard.cli import main
from subguard.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "secret").write_text("s" * 40)
    path = tmp_path / "subguard.toml"
    path.write_text(text)
    return path


BASE = """
[policy]
rules = ["rules"]

[identity]
jwt_secret_file = "secret"

[resource]
upstream = "postgresql://proxy@127.0.0.1:5432/app"
"""


def test_config_file_alone_is_enough(tmp_path: Path) -> None:
    config = ProxyConfig.build(read_config_file(_write(tmp_path, BASE + '\n[store]\nurl = "sqlite:///log.db"\n')), {})
    assert config.upstream.database == "app" and config.upstream.user == "proxy"
    assert config.rules == (str(tmp_path / "rules"),)
    assert config.store == f"sqlite:///{tmp_path}/log.db"
    assert config.identity.jwt_secret_file == str(tmp_path / "secret")
    assert config.listen == ("127.0.0.1", 6432)


def test_flags_override_the_file(tmp_path: Path) -> None:
    config = ProxyConfig.build(read_config_file(_write(tmp_path, BASE)), {"listen": "0.0.0.0:7000", "audience": "pg", "approval_timeout": 5.0})
    assert config.listen == ("0.0.0.0", 7000)
    assert config.identity.audience == "pg"
    assert config.approval_timeout == 5.0


def test_unknown_key_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "\n[proxy]\nlisten = \"127.0.0.1:1\"\nlistn = \"x\"\n")
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    text = str(info.value)
    assert text.startswith(f"{path}:13:") and "did you mean `listen`" in text


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "[policy]\nrules = [\n")
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: not valid TOML"):
        read_config_file(path)


def test_password_in_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SUBGUARD_UPSTREAM_PASSWORD"):
        ProxyConfig.build(None, {"upstream": "postgresql://u:hunter2@h/db", "rules": ("r",), "jwt_secret_file": str(_write(tmp_path, "").parent / "secret")})


def test_password_from_environment_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = read_config_file(_write(tmp_path, BASE))
    monkeypatch.setenv("SUBGUARD_UPSTREAM_PASSWORD", "from-env")
    assert ProxyConfig.build(file, {}).upstream.password == "from-env"
    (tmp_path / "pw").write_text("from-file\n")
    assert ProxyConfig.build(file, {"upstream_password_file": str(tmp_path / "pw")}).upstream.password == "from-file"
    assert "from-file" not in repr(ProxyConfig.build(file, {"upstream_password_file": str(tmp_path / "pw")}))


def test_missing_pieces(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no upstream"):
        ProxyConfig.build(None, {"rules": ("r",)})
    with pytest.raises(ConfigError, match="no token keys"):
        ProxyConfig.build(None, {"rules": ("r",), "upstream": "postgresql://u@h/db"})
    with pytest.raises(ConfigError, match="both a certificate"):
        ProxyConfig.build(read_config_file(_write(tmp_path, BASE)), {"tls_cert": "c.pem"})


def test_cli_reports_config_errors_without_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "\n[identity2]\n")
    result = CliRunner().invoke(main, ["proxy", "postgres", "--config", str(path)])
    assert result.exit_code == 2
    assert "`[identity2]` is not a section" in result.output and "Traceback" not in result.output
