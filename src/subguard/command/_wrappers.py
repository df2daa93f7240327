"""Programs that run another program: what each one runs, and how.

A wrapper either hands the rest of its words to the inner program as its arguments
(`sudo`, `env`, `timeout`, `busybox`, `docker exec`, `kubectl exec … --`, `find -exec`)
or joins them into a script a shell reads again (`su -c`, `watch`, `ssh host CMD`,
`flock -c`, `parallel`). Options are read the way each wrapper reads them, so that
`sudo -u root rm` is `rm` but `timeout 10 rm` does not mistake `10` for the program.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from subguard.command._options import Spec, parse_options
from subguard.command._words import Word

__all__ = ["SHELLS", "Unwrapped", "unwrap"]

#: Programs that read a shell script.
SHELLS = frozenset(
    ("sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "posh", "rbash", "ksh93",
     "pdksh", "oksh", "loksh", "fish", "csh", "tcsh", "elvish", "nu", "xonsh")
)  # fmt: skip


@attrs.frozen
class Unwrapped:
    """What a wrapper runs."""

    #: The inner command's words (argv mode) or the script's words (`shell`).
    words: tuple[Word, ...]
    #: The words are joined with spaces into a script a shell reads.
    shell: bool = False
    #: The wrapper adds arguments known only at run time (`xargs`, `find -exec … {}`).
    dynamic: bool = False


def _spec(short_value: str = "", *long: str, flags: Sequence[str] = ()) -> Spec:
    table: dict[str, bool | None] = {"--" + name: True for name in long}
    table.update({"--" + name: False for name in flags})
    return Spec(short_value=short_value, long=table, stop_at_operand=True, digit_options=True)


# wrapper → (its option spec, operands it takes before the command)
_SIMPLE: dict[str, tuple[Spec, int]] = {
    "sudo": (_spec("ugpChDrtTUR", "user", "group", "prompt", "close-from", "host", "chdir", "role",
                   "type", "command-timeout", "other-user", "chroot",
                   flags=("shell", "login", "preserve-env", "non-interactive", "stdin", "background",
                          "edit", "list")), 0),
    "doas": (_spec("uC"), 0),
    "env": (_spec("uCSa", "unset", "chdir", "split-string", "argv0",
                  flags=("ignore-environment", "null", "debug")), 0),
    "nohup": (_spec(), 0),
    "time": (_spec("fo", "format", "output"), 0),
    "exec": (_spec("a"), 0),
    "builtin": (_spec(), 0),
    "ionice": (_spec("cnpPu", "class", "classdata", "pid", "pgid", "uid"), 0),
    "stdbuf": (_spec("ioe", "input", "output", "error"), 0),
    "setsid": (_spec(), 0),
    "timeout": (_spec("sk", "signal", "kill-after"), 1),
    "chroot": (_spec("", "userspec", "groups"), 1),
    "busybox": (_spec(), 0),
    "toybox": (_spec(), 0),
    "unbuffer": (_spec(), 0),
    "caffeinate": (_spec("tw"), 0),
    "strace": (_spec("abeEIoOpPsSuUX", "output", "attach", "user", "env", "string-limit",
                     "expression", "trace", "signal", "columns"), 0),
    "ltrace": (_spec("aAeEnopsSuXlLw", "output"), 0),
    "systemd-run": (_spec("upEM", "unit", "property", "setenv", "machine", "uid", "gid",
                          "working-directory", "description", "slice", "nice", "on-calendar"), 0),
    "taskset": (_spec(), 1),
    "chrt": (_spec(), 1),
    "numactl": (_spec("NmCPpilw", "cpunodebind", "membind", "physcpubind", "preferred",
                      "interleave", "localalloc"), 0),
    "faketime": (_spec("f"), 1),
    "proxychains": (_spec("f"), 0),
    "proxychains4": (_spec("f"), 0),
    "torsocks": (_spec("uapi"), 0),
    "firejail": (_spec(), 0),
    "dbus-run-session": (_spec(), 0),
    "ssh-agent": (_spec("aEPt"), 0),
    "sshpass": (_spec("pfde"), 0),
    "runas": (_spec("u"), 0),
    "pkexec": (_spec("", "user"), 0),
    "nsenter": (_spec("tSGmuinpUCrw", "target", "setuid", "setgid", "mount", "uts", "ipc", "net",
                      "pid", "user", "cgroup", "root", "wd"), 0),
    "unshare": (_spec("", "map-user", "map-group", "setgroups", "propagation"), 0),
    "cgexec": (_spec("g"), 0),
    "prlimit": (_spec("p", "pid"), 0),
    "ulimit": (_spec(), 0),
    "catchsegv": (_spec(), 0),
    "valgrind": (_spec(), 0),
    "gdb": (_spec(), 0),
    "entr": (_spec(), 0),
    "retry": (_spec("tdm", "times", "delay"), 0),
}  # fmt: skip

_STRACE_FLAGS_ONLY = frozenset(("-p", "--attach"))  # strace -p PID attaches, runs nothing


def _texts(words: Sequence[Word]) -> list[str]:
    return [w.text for w in words]


def _simple(program: str, words: Sequence[Word]) -> Unwrapped | None:
    spec, skip = _SIMPLE[program]
    texts = _texts(words)
    parsed = parse_options(texts, spec)
    start = parsed.rest_at if parsed.rest_at >= 0 else len(words)
    if program == "env":
        split = parsed.options.get("-S", parsed.options.get("--split-string"))
        if split is not None:
            return Unwrapped(
                (Word(split, dynamic=any(w.dynamic for w in words)), *words[start:]), shell=True
            )
        while start < len(words) and "=" in texts[start] and not texts[start].startswith("="):
            start += 1  # NAME=value
    if program in ("sudo", "doas") and any(
        k in parsed.options for k in ("-s", "--shell", "-i", "--login")
    ):
        inner = words[start:]
        return Unwrapped(tuple(inner) if inner else (Word("sh"),), shell=bool(inner))
    if program == "sudo" and any(
        k in parsed.options for k in ("-l", "--list", "-e", "--edit", "-v", "-k", "-K")
    ):
        return None
    if program == "nice":  # pragma: no cover - handled by _nice
        return None
    inner = list(words[start + skip :])
    if program == "chroot" and not inner and len(words) > start:
        inner = [Word("/bin/sh"), Word("-i")]
    if program == "sshpass" and inner:
        pass
    if (
        program in ("strace", "ltrace")
        and any(k in parsed.options for k in _STRACE_FLAGS_ONLY)
        and not inner
    ):
        return None
    return Unwrapped(tuple(inner)) if inner else None


def _nice(words: Sequence[Word]) -> Unwrapped | None:
    texts = _texts(words)
    i = 1
    while i < len(texts):
        t = texts[i]
        if t == "--":
            i += 1
            break
        if t in ("-n", "--adjustment"):
            i += 2
        elif t.startswith(("-n", "--adjustment=")) or (
            t.startswith("-") and t.lstrip("-+").isdigit()
        ):
            i += 1
        else:
            break
    return Unwrapped(tuple(words[i:])) if i < len(words) else None


def _command(words: Sequence[Word]) -> Unwrapped | None:
    texts = _texts(words)
    i = 1
    while i < len(texts) and texts[i].startswith("-") and texts[i] != "--":
        if "v" in texts[i] or "V" in texts[i]:
            return None  # `command -v rm` asks where rm is; it runs nothing
        i += 1
    if i < len(texts) and texts[i] == "--":
        i += 1
    return Unwrapped(tuple(words[i:])) if i < len(words) else None


def _su(program: str, words: Sequence[Word]) -> Unwrapped | None:
    """`su [-] [user] [-c CMD]` (options anywhere); `runuser -u USER -- CMD…` too."""
    texts = _texts(words)
    i = 1
    while i < len(texts):
        t = texts[i]
        if t in ("-c", "--command", "--session-command") and i + 1 < len(texts):
            return Unwrapped((words[i + 1], *words[i + 2 :]), shell=True)
        for long in ("--command=", "--session-command="):
            if t.startswith(long):
                return Unwrapped((Word(t[len(long) :], dynamic=words[i].dynamic),), shell=True)
        if t.startswith("-") and not t.startswith("--") and "c" in t[1:]:
            # combined short options: `-lc CMD` or `-cCMD`
            rest = t[t.index("c", 1) + 1 :]
            if rest:
                return Unwrapped((Word(rest, dynamic=words[i].dynamic),), shell=True)
            if i + 1 < len(texts):
                return Unwrapped((words[i + 1],), shell=True)
        if program == "runuser" and t == "--" and i + 1 < len(texts):
            return Unwrapped(tuple(words[i + 1 :]))
        if t in ("-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w", "-u", "--user"):
            i += 2
            continue
        i += 1
    # no command: an interactive shell
    return Unwrapped((Word("sh"),))


def _sg(words: Sequence[Word]) -> Unwrapped | None:
    texts = _texts(words)
    rest = [w for w, t in zip(words[1:], texts[1:], strict=True) if t not in ("-",)]
    if len(rest) >= 2:
        body = rest[1:]
        if body[0].text == "-c" and len(body) > 1:
            body = body[1:]
        return Unwrapped(tuple(body), shell=True)
    return None


def _script(words: Sequence[Word]) -> Unwrapped | None:
    texts = _texts(words)
    for i, t in enumerate(texts):
        if t in ("-c", "--command") and i + 1 < len(texts):
            return Unwrapped((words[i + 1],), shell=True)
        if t.startswith("--command="):
            return Unwrapped((Word(t[10:], dynamic=words[i].dynamic),), shell=True)
    return None


def _xargs(words: Sequence[Word]) -> Unwrapped:
    spec = _spec("aEdIiLlnPs", "arg-file", "eof", "delimiter", "replace", "max-lines", "max-args",
                 "max-procs", "max-chars", "process-slot-var")  # fmt: skip
    parsed = parse_options(_texts(words), spec)
    start = parsed.rest_at if parsed.rest_at >= 0 else len(words)
    inner = tuple(words[start:]) or (Word("echo"),)
    return Unwrapped(inner, dynamic=True)


def _watch(words: Sequence[Word]) -> Unwrapped | None:
    spec = _spec(
        "nd",
        "interval",
        "differences",
        flags=("exec", "beep", "errexit", "chgexit", "color", "no-title", "precise"),
    )
    parsed = parse_options(_texts(words), spec)
    start = parsed.rest_at if parsed.rest_at >= 0 else len(words)
    inner = tuple(words[start:])
    if not inner:
        return None
    if "-x" in parsed.options or "--exec" in parsed.options:
        return Unwrapped(inner)
    return Unwrapped(inner, shell=True)


def _flock(words: Sequence[Word]) -> Unwrapped | None:
    spec = _spec(
        "wEc",
        "timeout",
        "conflict-exit-code",
        "command",
        flags=("shared", "exclusive", "unlock", "nonblock", "close", "no-fork", "verbose"),
    )
    texts = _texts(words)
    parsed = parse_options(texts, spec)
    command = parsed.options.get("-c", parsed.options.get("--command"))
    if command is not None:
        return Unwrapped((Word(command, dynamic=any(w.dynamic for w in words)),), shell=True)
    start = parsed.rest_at if parsed.rest_at >= 0 else len(words)
    rest = list(words[start + 1 :])  # the lock file
    if rest and rest[0].text in ("-c", "--command") and len(rest) > 1:
        return Unwrapped((rest[1],), shell=True)
    return Unwrapped(tuple(rest)) if rest else None


def _parallel(words: Sequence[Word]) -> list[Unwrapped]:
    """GNU parallel runs its command through a shell once per argument after `:::`
    (appended, or in place of `{}`); without `:::` the commands come from stdin."""
    texts = _texts(words)
    with_value = frozenset("jSIaCdEsPX") | {
        "--jobs",
        "-S",
        "--sshlogin",
        "--arg-file",
        "--colsep",
        "--delimiter",
        "--joblog",
        "--results",
        "--timeout",
        "--workdir",
        "--env",
        "--retries",
        "--tag-string",
    }
    i = 1
    while i < len(texts) and texts[i].startswith("-") and texts[i] not in (":::", "::::"):
        t = texts[i]
        i += 2 if (t in with_value or (len(t) == 2 and t[1] in with_value)) else 1
    end = next(
        (j for j in range(i, len(texts)) if texts[j] in (":::", "::::", ":::+", "::::+")),
        len(texts),
    )
    command = list(words[i:end])
    args = [w for w in words[end + 1 :] if w.text not in (":::", "::::", ":::+", "::::+")]
    from_files = end < len(texts) and texts[end].startswith("::::")
    if not command:
        return [Unwrapped((Word("$INPUT", dynamic=True),), shell=True, dynamic=True)]
    if end >= len(texts) or from_files or not args:
        return [Unwrapped((*command, Word("{}", dynamic=True)), shell=True, dynamic=True)]
    found = []
    for arg in args:
        if any("{}" in w.text for w in command):
            body = tuple(attrs.evolve(w, text=w.text.replace("{}", arg.text)) for w in command)
        else:
            body = (*command, arg)
        found.append(Unwrapped(body, shell=True))
    return found


_SSH_WITH_VALUE = frozenset("BbcDEeFIiJLlmOoPpQRSWw")


def _ssh(words: Sequence[Word]) -> Unwrapped | None:
    texts = _texts(words)
    i = 1
    while i < len(texts) and texts[i].startswith("-") and texts[i] != "--":
        flags = texts[i][1:]
        takes = next((j for j, f in enumerate(flags) if f in _SSH_WITH_VALUE), None)
        i += 2 if takes is not None and takes == len(flags) - 1 else 1
    if i < len(texts) and texts[i] == "--":
        i += 1
    remote = tuple(words[i + 1 :])
    # ssh joins the remaining words with spaces and the remote shell reads them again
    return Unwrapped(remote, shell=True) if remote else None


_CONTAINER_VALUE = frozenset(
    ("-e", "--env", "-u", "--user", "-w", "--workdir", "--env-file", "--detach-keys", "-v",
     "--volume", "-p", "--publish", "--name", "--network", "--net", "--entrypoint", "-h",
     "--hostname", "--mount", "-l", "--label", "--platform", "--pull", "--cpus", "-m", "--memory",
     "--cap-add", "--cap-drop", "--device", "--restart", "--add-host", "--dns", "--ipc", "--pid",
     "--security-opt", "--tmpfs", "--ulimit", "--log-driver", "--log-opt", "--gpus", "--runtime",
     "--user", "--group-add", "--shm-size", "--stop-signal", "--init-path", "--cidfile",
     "--label-file", "--expose", "--link", "--volumes-from", "-c", "--cpu-shares", "--container",
     "-c", "--namespace", "-n", "--context", "--kubeconfig", "--pod-running-timeout")
)  # fmt: skip


def _container(program: str, words: Sequence[Word]) -> Unwrapped | None:
    """`docker|podman exec|run [opts] TARGET CMD…`, `kubectl|oc exec POD -- CMD…`."""
    texts = _texts(words)
    i = 1
    # global options before the verb
    while i < len(texts) and texts[i].startswith("-"):
        i += (
            2
            if texts[i] in _CONTAINER_VALUE or texts[i] in ("-H", "--host", "--context", "--config")
            else 1
        )
    if i >= len(texts):
        return None
    verb = texts[i]
    if program in ("kubectl", "oc"):
        if verb not in ("exec", "debug", "run") or "--" not in texts:
            if program == "oc" and verb == "rsh" and len(texts) > i + 2:
                return _after_target(words, i + 1, shell=True)
            return None
        return Unwrapped(tuple(words[texts.index("--") + 1 :]))
    if verb == "compose":
        i += 1
        while i < len(texts) and texts[i].startswith("-"):
            i += 2 if texts[i] in ("-f", "--file", "-p", "--project-name") else 1
        if i >= len(texts):
            return None
        verb = texts[i]
    if verb == "container" and i + 1 < len(texts):
        i += 1
        verb = texts[i]
    if verb not in ("exec", "run"):
        return None
    return _after_target(words, i + 1)


def _after_target(words: Sequence[Word], i: int, *, shell: bool = False) -> Unwrapped | None:
    texts = _texts(words)
    while i < len(texts) and texts[i].startswith("-") and texts[i] != "--":
        t = texts[i]
        i += 2 if t in _CONTAINER_VALUE and "=" not in t else 1
    if i < len(texts) and texts[i] == "--":
        i += 1
    inner = tuple(words[i + 1 :])
    return Unwrapped(inner, shell=shell) if inner else None


def _find(words: Sequence[Word]) -> list[Unwrapped]:
    """`find ROOTS… -exec CMD {} ;` (also -execdir, -ok, -okdir): `{}` becomes `ROOT/{}`
    so the rules see where it acts."""
    texts = _texts(words)
    roots: list[str] = []
    i = 1
    while (i < len(texts) and texts[i] in ("-H", "-L", "-P")) or (
        i < len(texts) and texts[i].startswith("-O")
    ):
        i += 1
    while i < len(texts) and not texts[i].startswith(("-", "(", "!")):
        roots.append(texts[i])
        i += 1
    roots = roots or ["."]
    found: list[Unwrapped] = []
    while i < len(texts):
        if texts[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(texts) and texts[j] not in (";", "+"):
                j += 1
            inner = list(words[i + 1 : j])
            for root in roots:
                replaced = tuple(
                    Word(
                        w.text.replace("{}", root.rstrip("/") + "/{}"),
                        dynamic=w.dynamic,
                        glob=w.glob,
                        quoted=w.quoted,
                    )
                    for w in inner
                )
                if replaced:
                    # `{}` stands under each starting point (`/tmp/{}`): the paths are known
                    # as far as rules need them
                    found.append(Unwrapped(replaced))
            i = j + 1
            continue
        i += 1
    return found


def unwrap(program: str, words: Sequence[Word]) -> list[Unwrapped]:
    """What `words` (an invocation of `program`) runs, if `program` is a wrapper."""
    found: Unwrapped | None
    if program in _SIMPLE:
        found = _simple(program, words)
    elif program == "nice":
        found = _nice(words)
    elif program == "command":
        found = _command(words)
    elif program in ("su", "runuser", "ksu"):
        found = _su(program, words)
    elif program == "sg":
        found = _sg(words)
    elif program == "script":
        found = _script(words)
    elif program == "xargs":
        found = _xargs(words)
    elif program == "watch":
        found = _watch(words)
    elif program == "flock":
        found = _flock(words)
    elif program in ("parallel", "sem"):
        return [u for u in _parallel(words) if u.words]
    elif program in ("ssh", "mosh", "dbclient"):
        found = _ssh(words)
    elif program in ("docker", "podman", "nerdctl", "kubectl", "oc", "crictl", "lxc", "incus"):
        found = _container(program, words)
    elif program == "find":
        return _find(words)
    else:
        return []
    return [found] if found is not None and found.words else []


#: Every program `unwrap` knows.
WRAPPERS = frozenset(_SIMPLE) | {
    "nice", "command", "su", "runuser", "ksu", "sg", "script", "xargs", "watch", "flock",
    "parallel", "sem",
}  # fmt: skip
