"""Facts about an HTTP request, and what it does when it is a Kubernetes API call.

Kubernetes paths are decoded the way the API server's request-info resolver does, so a
rule can say `input.http.kubernetes.verb == "delete"` instead of matching URL shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

__all__ = ["http_facts", "kubernetes_facts"]

# Subresources of a namespace itself (`/api/v1/namespaces/x/status`); any other word after
# a namespace's name is a resource inside that namespace.
_NAMESPACE_SUBRESOURCES = frozenset(("status", "finalize"))


def http_facts(
    method: str, path: str, host: str = "", query: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `Http` record of the input document for one request.

    A query string left on `path` is split off and merged into `query` (explicit `query`
    entries win). Query values are strings, or arrays of strings when repeated.
    """
    path, _, query_string = path.partition("?")
    params: dict[str, Any] = {}
    for key, values in parse_qs(query_string, keep_blank_values=True).items():
        params[key] = values[0] if len(values) == 1 else tuple(values)
    for key, value in (query or {}).items():
        params[key] = tuple(value) if isinstance(value, (list, tuple)) else value
    method = method.upper()
    return {
        "method": method,
        "path": path,
        "host": host,
        "query": params,
        "kubernetes": kubernetes_facts(method, path, params),
    }


def _watching(query: Mapping[str, Any]) -> bool:
    value = query.get("watch")
    if isinstance(value, tuple):
        value = value[-1] if value else None
    return isinstance(value, str) and value.lower() in ("true", "1")


def kubernetes_facts(
    method: str, path: str, query: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The `Kubernetes` record for a resource request, or None when `path` is not one.

    Discovery paths (`/api`, `/apis/apps/v1`) are not resource requests and give None.
    """
    parts = [unquote(p) for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:  # the core group: /api/{version}/…
        parts = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        parts = parts[3:]
    else:
        return None
    watch = bool(parts) and parts[0] == "watch"
    if watch:
        parts = parts[1:]
    namespace: str | None = None
    if parts and parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    if not parts:
        return None
    resource = parts[0]
    name = parts[1] if len(parts) > 1 else None
    if len(parts) > 2:
        resource = f"{resource}/{parts[2]}"
    watch = watch or _watching(query or {})
    method = method.upper()
    if method in ("GET", "HEAD"):
        verb = "watch" if watch else "get" if name is not None else "list"
    elif method == "POST":
        verb = "create"
    elif method == "PUT":
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    elif method == "DELETE":
        verb = "delete" if name is not None else "deletecollection"
    else:
        verb = method.lower()
    return {"verb": verb, "resource": resource, "namespace": namespace, "name": name}
