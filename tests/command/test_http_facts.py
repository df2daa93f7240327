"""Tests for HTTP request facts and the Kubernetes API request decoding."""

from __future__ import annotations

from typing import Any

import pytest

from subguard.command import http_facts, kubernetes_facts
from subguard.engine.schema import RECORDS

K8S: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/namespaces/prod/pods/web", {"verb": "get", "resource": "pods", "namespace": "prod", "name": "web"}),
    ("GET", "/api/v1/namespaces/prod/pods", {"verb": "list", "resource": "pods", "namespace": "prod", "name": None}),
    ("GET", "/api/v1/pods", {"verb": "list", "resource": "pods", "namespace": None, "name": None}),
    ("GET", "/api/v1/namespaces/prod/pods?watch=true", {"verb": "watch", "resource": "pods", "namespace": "prod", "name": None}),
    ("GET", "/api/v1/watch/namespaces/prod/pods", {"verb": "watch", "resource": "pods", "namespace": "prod", "name": None}),
    ("POST", "/api/v1/namespaces/prod/pods", {"verb": "create", "resource": "pods", "namespace": "prod", "name": None}),
    ("PUT", "/apis/apps/v1/namespaces/prod/deployments/api", {"verb": "update", "resource": "deployments", "namespace": "prod", "name": "api"}),
    ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/api/scale", {"verb": "patch", "resource": "deployments/scale", "namespace": "prod", "name": "api"}),
    ("DELETE", "/apis/apps/v1/namespaces/prod/deployments/api", {"verb": "delete", "resource": "deployments", "namespace": "prod", "name": "api"}),
    ("DELETE", "/apis/apps/v1/namespaces/prod/deployments", {"verb": "deletecollection", "resource": "deployments", "namespace": "prod", "name": None}),
    ("POST", "/api/v1/namespaces/prod/pods/web/exec", {"verb": "create", "resource": "pods/exec", "namespace": "prod", "name": "web"}),
    ("GET", "/api/v1/namespaces/prod/pods/web/log", {"verb": "get", "resource": "pods/log", "namespace": "prod", "name": "web"}),
    ("DELETE", "/api/v1/namespaces/prod", {"verb": "delete", "resource": "namespaces", "namespace": "prod", "name": "prod"}),
    ("PUT", "/api/v1/namespaces/prod/finalize", {"verb": "update", "resource": "namespaces/finalize", "namespace": "prod", "name": "prod"}),
    ("GET", "/api/v1/namespaces", {"verb": "list", "resource": "namespaces", "namespace": None, "name": None}),
    ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin", {"verb": "get", "resource": "clusterroles", "namespace": None, "name": "admin"}),
    ("GET", "/api/v1/namespaces/a%20b/secrets/x", {"verb": "get", "resource": "secrets", "namespace": "a b", "name": "x"}),
    ("GET", "/api", None),
    ("GET", "/api/v1", None),
    ("GET", "/apis/apps/v1", None),
    ("GET", "/healthz", None),
    ("GET", "/", None),
    ("GET", "", None),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "expected"), K8S)
def test_kubernetes(method: str, path: str, expected: dict[str, Any] | None) -> None:
    facts = http_facts(method, path)
    assert facts["kubernetes"] == expected
    if expected is not None:
        assert set(expected) == set(RECORDS["Kubernetes"])


def test_http_record() -> None:
    facts = http_facts("delete", "/v1/users/7?force=1&tag=a&tag=b", host="api.internal")
    assert set(facts) == set(RECORDS["Http"])
    assert facts == {
        "method": "DELETE",
        "path": "/v1/users/7",
        "host": "api.internal",
        "query": {"force": "1", "tag": ("a", "b")},
        "kubernetes": None,
    }


def test_explicit_query_wins_and_is_frozen() -> None:
    facts = http_facts("GET", "/api/v1/pods?watch=false", query={"watch": "1", "x": ["a"]})
    assert facts["query"] == {"watch": "1", "x": ("a",)}
    assert facts["kubernetes"]["verb"] == "watch"


def test_kubernetes_facts_direct() -> None:
    assert kubernetes_facts("get", "/api/v1/nodes/n1") == {
        "verb": "get",
        "resource": "nodes",
        "namespace": None,
        "name": "n1",
    }
