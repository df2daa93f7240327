"""What `kubectl`/`oc`, `helm` and `terraform` invocations do: verb, resource, names,
namespace — read from their arguments the way each tool's flag parser does (cobra /
pflag: flags before or after the verb, `-n x`, `-nx`, `--namespace x`, `--namespace=x`,
`TYPE NAME…` and `TYPE/NAME` forms)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["kube_command", "verb_of"]

_KUBE_VALUE = frozenset(
    ("-n", "--namespace", "--context", "--cluster", "--kubeconfig", "-s", "--server", "--user",
     "--token", "--as", "--as-group", "--as-uid", "-l", "--selector", "-f", "--filename", "-o",
     "--output", "-c", "--container", "--field-selector", "--grace-period", "--timeout",
     "--replicas", "--current-replicas", "--type", "-p", "--patch", "--image", "--port",
     "--since", "--tail", "--sort-by", "--template", "-k", "--kustomize", "--for", "--cascade",
     "--resource-version", "--subresource", "--certificate-authority", "--client-key",
     "--client-certificate", "--request-timeout", "--profile", "-v", "--v", "--patch-file",
     "--overrides", "--limits", "--requests", "--min", "--max", "--cpu-percent", "--to-revision",
     "--revision", "--from-literal", "--from-file", "--docker-password", "--password",
     "--generator", "--env", "-e", "--labels", "--annotations", "--field-manager", "--raw",
     "--chunk-size", "--selector", "--local-port", "--address", "--api-group", "--show-kind",
     "--tls-server-name", "--log-flush-frequency", "--username", "--project")
)  # fmt: skip
_KUBE_SHORT = {"-n": "--namespace", "-A": "--all-namespaces", "-l": "--selector", "-f": "--filename",
               "-o": "--output", "-c": "--container", "-s": "--server", "-p": "--patch",
               "-k": "--kustomize", "-v": "--v", "-i": "--stdin", "-t": "--tty", "-w": "--watch",
               "-R": "--recursive", "-e": "--env"}  # fmt: skip
_MULTI_WORD = frozenset(("auth", "rollout", "config", "certificate", "alpha", "plugin", "apply",
                         "set", "cluster-info", "adm", "policy", "secrets", "image", "tag", "import-image"))  # fmt: skip
_QUESTIONS = frozenset(("auth can-i", "auth whoami"))

# common short names and singulars → the plural resource name
_ALIASES = {
    "ns": "namespaces", "namespace": "namespaces", "po": "pods", "pod": "pods", "svc": "services",
    "service": "services", "deploy": "deployments", "deployment": "deployments", "rs": "replicasets",
    "replicaset": "replicasets", "sts": "statefulsets", "statefulset": "statefulsets",
    "ds": "daemonsets", "daemonset": "daemonsets", "cm": "configmaps", "configmap": "configmaps",
    "secret": "secrets", "pvc": "persistentvolumeclaims", "persistentvolumeclaim": "persistentvolumeclaims",
    "pv": "persistentvolumes", "persistentvolume": "persistentvolumes", "no": "nodes", "node": "nodes",
    "ing": "ingresses", "ingress": "ingresses", "job": "jobs", "cj": "cronjobs", "cronjob": "cronjobs",
    "sa": "serviceaccounts", "serviceaccount": "serviceaccounts", "crd": "customresourcedefinitions",
    "crds": "customresourcedefinitions", "customresourcedefinition": "customresourcedefinitions",
    "hpa": "horizontalpodautoscalers", "netpol": "networkpolicies", "networkpolicy": "networkpolicies",
    "role": "roles", "rolebinding": "rolebindings", "clusterrole": "clusterroles",
    "clusterrolebinding": "clusterrolebindings", "ev": "events", "event": "events", "ep": "endpoints",
    "sc": "storageclasses", "storageclass": "storageclasses", "pdb": "poddisruptionbudgets",
    "project": "namespaces", "projects": "namespaces", "dc": "deploymentconfigs", "deploymentconfig": "deploymentconfigs",
    "route": "routes", "bc": "buildconfigs", "is": "imagestreams",
}  # fmt: skip


def _resource(word: str) -> str:
    word = word.lower().split(".", 1)[0]  # `deployments.apps` → deployments
    return _ALIASES.get(word, word)


def kube_command(argv: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The `Kubernetes` record of a kubectl/oc invocation and its options (canonical names)."""
    options: dict[str, str] = {}
    positionals: list[str] = []
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            break
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if eq:
                options[name] = value
            elif name in _KUBE_VALUE and i + 1 < len(argv):
                options[name] = argv[i + 1]
                i += 1
            else:
                options[name] = ""
        elif word.startswith("-") and len(word) > 1:
            flag = word[:2]
            long = _KUBE_SHORT.get(flag, flag)
            if len(word) > 2:
                if flag in _KUBE_VALUE:
                    options[long] = word[2:].removeprefix("=")
                else:  # combined booleans: -it
                    for f in word[1:]:
                        options[_KUBE_SHORT.get("-" + f, "-" + f)] = ""
            elif flag in _KUBE_VALUE and i + 1 < len(argv):
                options[long] = argv[i + 1]
                i += 1
            else:
                options[long] = ""
        else:
            positionals.append(word)
        i += 1
    verb = positionals[0] if positionals else ""
    rest = positionals[1:]
    if verb in _MULTI_WORD and rest:
        verb = f"{verb} {rest[0]}"
        rest = rest[1:]
    resource: str | None = None
    resources: list[str] = []
    names: list[str] = []
    if verb in _QUESTIONS:
        pass
    elif rest and "/" in rest[0]:
        for item in rest:
            kind, _, name = item.partition("/")
            resources.append(_resource(kind))
            if name:
                names.append(name)
    elif rest:
        resources = [_resource(r) for r in rest[0].split(",") if r]
        names = rest[1:]
    if verb in ("scale", "autoscale") and not resources and rest:
        resources = [_resource(rest[0])]
    resource = resources[0] if resources else None
    dry_run = options.get("--dry-run")
    record = {
        "verb": verb,
        "resource": resource,
        "resources": tuple(dict.fromkeys(resources)),
        "names": tuple(names),
        "namespace": options.get("--namespace"),
        "all_namespaces": "--all-namespaces" in options,
        "all": "--all" in options or resource == "all",
        "question": verb in _QUESTIONS,
        "dry_run": dry_run is not None and dry_run.lower() not in ("none", "false"),
        "files": "--filename" in options or "--kustomize" in options,
    }
    return record, options


_HELM_VALUE = frozenset(("-n", "--namespace", "--kube-context", "--kubeconfig", "-f", "--values",
                         "--set", "--set-string", "--set-file", "--version", "--timeout", "-o",
                         "--output", "--repo", "--description", "--post-renderer", "--registry-config",
                         "--repository-config", "--repository-cache", "--kube-token", "--kube-as-user"))  # fmt: skip
_HELM_VERBS = {"delete": "uninstall", "del": "uninstall", "un": "uninstall", "uninstall": "uninstall",
               "ls": "list", "upgrade": "upgrade", "install": "install", "rollback": "rollback"}  # fmt: skip


def helm_command(argv: Sequence[str]) -> dict[str, Any]:
    options: dict[str, str] = {}
    positionals: list[str] = []
    i = 1
    while i < len(argv):
        word = argv[i]
        if word.startswith("--") and "=" in word:
            name, _, value = word.partition("=")
            options[name] = value
        elif word.startswith("-n") and len(word) > 2 and not word.startswith("--"):
            options["--namespace"] = word[2:]
        elif word in _HELM_VALUE and i + 1 < len(argv):
            options[{"-n": "--namespace"}.get(word, word)] = argv[i + 1]
            i += 1
        elif word.startswith("-"):
            options[word] = ""
        else:
            positionals.append(word)
        i += 1
    verb = positionals[0] if positionals else ""
    verb = _HELM_VERBS.get(verb, verb)
    return {
        "verb": verb,
        "resource": "releases",
        "resources": ("releases",),
        "names": tuple(
            positionals[1:]
            if verb in ("uninstall", "rollback", "status", "get", "history")
            else positionals[1:2]
        ),
        "namespace": options.get("--namespace"),
        "all_namespaces": "-A" in options or "--all-namespaces" in options,
        "all": False,
        "question": False,
        "dry_run": "--dry-run" in options,
        "files": False,
    }


_TERRAFORM_MULTI = frozenset(("state", "workspace", "providers", "force-unlock"))


def verb_of(program: str, argv: Sequence[str]) -> str | None:
    """The subcommand of a program that has them (`git push`, `terraform destroy`,
    `systemctl stop`), or None."""
    operands = [a for a in argv[1:] if not a.startswith("-")]
    if program in ("terraform", "tofu"):
        words = [a for a in argv[1:] if not a.startswith("-")]
        if not words:
            return None
        verb = words[0]
        if verb in _TERRAFORM_MULTI and len(words) > 1:
            verb = f"{verb} {words[1]}"
        if verb == "apply" and any(a in ("-destroy", "--destroy") for a in argv):
            verb = "destroy"
        return verb
    if program == "git":
        i = 1
        while i < len(argv) and argv[i].startswith("-"):
            i += 2 if argv[i] in ("-C", "-c", "--git-dir", "--work-tree", "--namespace") else 1
        return argv[i] if i < len(argv) else None
    if program == "service":
        return operands[1] if len(operands) > 1 else None
    if program == "pg_ctlcluster":
        return operands[2] if len(operands) > 2 else None
    if program in ("aws",) and len(operands) > 1:
        return f"{operands[0]} {operands[1]}"
    if program in _SUBCOMMANDS:
        return (
            operands[0].lower()
            if program == "redis-cli" and operands
            else (operands[0] if operands else None)
        )
    return None


_SUBCOMMANDS = frozenset(
    ("systemctl", "pg_ctl", "mysqladmin", "docker", "podman", "apt", "apt-get", "dnf", "yum",
     "pip", "npm", "brew", "supervisorctl", "launchctl", "gcloud", "az", "rc-service",
     "initctl", "sv", "nerdctl", "crictl", "virsh", "lxc", "zfs", "zpool", "lvremove", "vgremove",
     "btrfs", "cargo", "go", "make", "helm", "oc", "kubectl")
)  # fmt: skip
