"""The PostgreSQL wire-protocol proxy: agents connect with psql, psycopg, asyncpg or
pgbench and a token as their password; every statement is decided by the gate and
committed to the decision log before the database sees it.

Modules: `wire` (the protocol's messages), `upstream` (the proxy's own login to the
database), `results` (responses matched to requests, DataRow masking), `session` (one
client connection), `server` (the listener, cancel keys, the shared schema), `config`
(subguard.toml and flags).
"""

from subguard.adapters.postgres.config import ProxyConfig, read_config_file
from subguard.adapters.postgres.server import ProxyServer, introspect_schema

__all__ = ["ProxyConfig", "ProxyServer", "introspect_schema", "read_config_file"]
