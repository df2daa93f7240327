"""TLS: with a certificate configured, an SSLRequest is answered `S` and the session,
token included, runs over TLS (psql and psycopg with sslmode=require)."""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import Proxy, free_port, make_token, postgres_or_skip, start_proxy, write_setup

pytestmark = pytest.mark.postgres


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    postgres_or_skip()
    directory = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(directory)
    port = free_port()
    config = write_setup(directory, port)
    text = config.read_text().replace("startup_timeout = 5", f'startup_timeout = 5\ntls_cert = "{cert.name}"\ntls_key = "{key.name}"')
    config.write_text(text)
    process = start_proxy(directory, config, port)
    yield Proxy(directory, port, f"sqlite:///{directory}/log.db", process)
    process.terminate()
    process.wait(10)


def test_psycopg_over_tls(tls_proxy: Proxy) -> None:
    with psycopg.connect(tls_proxy.dsn(make_token("tls-bot"), sslmode="require"), autocommit=True) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT email FROM sgpx_users WHERE id = 1").fetchone() == ("****@example.com",)


def test_psql_over_tls(tls_proxy: Proxy) -> None:
    done = subprocess.run(
        ["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(tls_proxy.port), "-U", "agent", "-d", "dbname=test sslmode=require", "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", "-c", "SELECT 5"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PGPASSWORD": make_token("tls-bot")}, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "5"


def test_plaintext_still_allowed_on_loopback(tls_proxy: Proxy) -> None:
    with psycopg.connect(tls_proxy.dsn(make_token("tls-bot"), sslmode="disable"), autocommit=True) as conn:
        assert not conn.pgconn.ssl_in_use
