"""The proxy run inside the test process (in a thread with its own event loop), for
tests that look at what it does with the database: how many connections it opened."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import subguard
from subguard.adapters.postgres import ProxyConfig, ProxyServer, read_config_file
from subguard.adapters.postgres import session as session_module
from subguard.log import open_log

from .conftest import free_port, write_setup


@contextmanager
def running_proxy(directory: Path, *, introspect: bool = True, **overrides: Any) -> Iterator[tuple[ProxyServer, dict[str, int]]]:
    """A started proxy and a count of the database connections its sessions opened."""
    port = free_port()
    config_path = write_setup(directory, port)
    config = ProxyConfig.build(read_config_file(config_path), overrides)
    policy = subguard.load_policy(list(config.rules))
    log = open_log(config.store)
    engine = subguard.Engine(policy, log=log)
    counts = {"upstream": 0}
    real_connect = session_module.connect

    async def counting_connect(*args: Any, **kwargs: Any) -> Any:
        counts["upstream"] += 1
        return await real_connect(*args, **kwargs)

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        from subguard.adapters.postgres import introspect_schema

        schema = loop.run_until_complete(introspect_schema(config)) if introspect else {}
        server = ProxyServer(config, engine, schema=schema)
        loop.run_until_complete(server.start())
        holder["server"] = server
        ready.set()
        loop.run_forever()

    session_module.connect = counting_connect  # type: ignore[assignment]
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(30)
        yield holder["server"], counts
    finally:
        server = holder.get("server")
        if server is not None:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        session_module.connect = real_connect  # type: ignore[assignment]
        log.close()
