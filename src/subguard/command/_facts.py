"""Turn a shell command line into the facts rules see as `input.command`.

Every program the line would start counts: each stage of a pipeline or list, commands
in `$(…)`, backticks and process substitutions, the program behind a wrapper (`sudo`,
`env`, `timeout`, `busybox`, `find -exec`, `docker exec`, …) as well as the wrapper
itself, the script of a nested shell (`bash -c '…'`, `eval`, `su -c`, `ssh host CMD`)
and scripts fed to a shell or a SQL client on standard input (a pipe from `echo`, a
heredoc, a herestring). A rule written over `pipeline` therefore sees `rm` however it
is dressed up; what the analysis cannot see (`$x` as a program, a script read from a
file or the network) is marked `dynamic` or `opaque_script` so rules fail closed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

import attrs

from subguard.command._clients import SQL_CLIENTS, client_input
from subguard.command._kube import helm_command, kube_command, verb_of
from subguard.command._options import SPECS, Parsed, parse_options
from subguard.command._paths import file_operands, normalise_path, writes_of
from subguard.command._syntax import Redirect, Simple, Stdin, read_script
from subguard.command._words import Word, ansi_c
from subguard.command._wrappers import SHELLS, unwrap

__all__ = ["CommandFacts", "Invocation", "parse_command"]

#: Nested shells and wrappers are followed this deep; deeper text is a parse error.
MAX_DEPTH = 8
#: At most this many invocations are reported; beyond it the text is a parse error.
MAX_INVOCATIONS = 2000

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BUSYBOX = frozenset(("busybox", "toybox"))


@attrs.frozen
class Invocation:
    """One program the command line starts, with its arguments as it receives them."""

    #: Base name of the program (`/usr/bin/rm` → `rm`).
    program: str
    #: Arguments including the program as written (quotes removed).
    argv: tuple[str, ...]
    #: The program as written (`/usr/bin/rm`, `./deploy.sh`).
    path: str = ""
    #: The wrappers it runs under, outermost first (`("sudo", "bash")`).
    via: tuple[str, ...] = ()
    #: Options as the program reads them, under canonical names (`--recursive`).
    options: dict[str, str] = attrs.field(factory=dict, hash=False)
    #: Arguments that are not options (nor option values), in order.
    operands: tuple[str, ...] = ()
    #: Arguments and redirect targets that name files, normalised (`..` resolved).
    paths: tuple[str, ...] = ()
    #: Files it writes (redirects, `dd of=`, `tee`, the target of `cp`/`mv`, …), normalised.
    writes: tuple[str, ...] = ()
    #: Redirections: ({op, target}).
    redirects: tuple[tuple[str, str], ...] = ()
    #: The program or an argument is only known at run time (`$x`, `$(…)`, a glob, xargs).
    dynamic: bool = False
    #: The program itself is only known at run time.
    dynamic_program: bool = False
    #: What feeds its standard input: (kind, source, upstream) — kind is heredoc,
    #: herestring, pipe or file; source the producing program or the file; upstream every
    #: program before it in the pipeline (`pg_dump | gzip | curl`: gzip, pg_dump).
    stdin: tuple[str, str, tuple[str, ...]] | None = None
    #: Its subcommand (`git status`, `kubectl delete`, `terraform destroy`), if it has one.
    verb: str | None = None
    #: What a kubectl/oc/helm invocation does to the cluster.
    kubernetes: dict[str, Any] | None = attrs.field(default=None, hash=False)
    #: It runs code or SQL the analysis cannot read (a script file, a pipe from the network).
    opaque_script: bool = False
    #: It runs another invocation (listed after it).
    wrapper: bool = False

    def to_input(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "argv": self.argv,
            "path": self.path,
            "via": self.via,
            "options": dict(self.options),
            "operands": self.operands,
            "paths": self.paths,
            "writes": self.writes,
            "redirects": tuple({"op": op, "target": target} for op, target in self.redirects),
            "dynamic": self.dynamic,
            "dynamic_program": self.dynamic_program,
            "stdin": {"kind": self.stdin[0], "source": self.stdin[1], "upstream": self.stdin[2]}
            if self.stdin
            else None,
            "verb": self.verb,
            "kubernetes": self.kubernetes,
            "opaque_script": self.opaque_script,
            "wrapper": self.wrapper,
        }


@attrs.frozen
class CommandFacts:
    """What a command line would do, as far as its text tells."""

    #: The first invocation's program ("" for an empty line).
    program: str
    #: The first invocation's arguments, program included.
    argv: tuple[str, ...]
    #: Every invocation, in the order they appear (wrappers before what they wrap).
    pipeline: tuple[Invocation, ...]
    #: SQL handed to database clients (`psql -c`, `mysql -e`, a heredoc into psql, …).
    sql_texts: tuple[str, ...]
    #: Why the text is not well-formed shell, or None; the facts are then best effort.
    parse_error: str | None = None

    def to_input(self, sql: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `Command` record of the input document; `sql` is the analysis of `sql_texts`."""
        return {
            "program": self.program,
            "argv": self.argv,
            "pipeline": tuple(inv.to_input() for inv in self.pipeline),
            "sql": sql,
            "parse_error": self.parse_error,
        }


@attrs.define
class _State:
    invocations: list[Invocation] = attrs.field(factory=list)
    sql: list[str] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)

    def error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)


def parse_command(text: str) -> CommandFacts:
    """Analyse one shell command line. Never raises: malformed text sets `parse_error`."""
    state = _State()
    if not isinstance(text, str):
        return CommandFacts("", (), (), (), f"command must be text, not {type(text).__name__}")
    bad = _CONTROL.search(text)
    if bad is not None:
        state.error(f"control character U+{ord(bad.group()):04X} at offset {bad.start()}")
        # read on with it as a space, so the programs around it are still seen
        text = _CONTROL.sub(" ", text)
    try:
        _script(text, 0, (), state)
    except RecursionError:
        state.error("command is nested too deeply")
    first = _first_program(state.invocations)
    return CommandFacts(
        program=first.program if first else "",
        argv=first.argv if first else (),
        pipeline=tuple(state.invocations),
        sql_texts=tuple(state.sql),
        parse_error=state.errors[0] if state.errors else None,
    )


#: Wrappers `program` looks through: `sudo rm x` is about `rm` (a shell, `su` or `ssh`
#: is a program of its own there; `pipeline` lists what they run).
_LOOK_THROUGH = frozenset(
    ("sudo", "doas", "env", "nohup", "time", "exec", "command", "builtin", "nice", "ionice",
     "stdbuf", "setsid", "timeout", "xargs", "chroot", "unbuffer", "busybox", "toybox")
)  # fmt: skip


def _first_program(invocations: Sequence[Invocation]) -> Invocation | None:
    # the first invocation that is not a wrapper: `sudo rm x` is about `rm`
    for inv in invocations:
        if not (inv.wrapper and inv.program in _LOOK_THROUGH):
            return inv
    return invocations[0] if invocations else None


def _script(text: str, depth: int, via: tuple[str, ...], state: _State) -> None:
    if depth > MAX_DEPTH:
        state.error("command is nested too deeply")
        return
    script = read_script(text)
    if script.error:
        state.error(script.error)
    for simple in script.commands:
        _simple(simple, depth, via, state)
    for nested in script.nested:
        _script(nested, depth + 1, via, state)


def basename(word: str) -> str:
    return word.rstrip("/").rpartition("/")[2] or word


def _simple(simple: Simple, depth: int, via: tuple[str, ...], state: _State) -> None:
    words = list(simple.words)
    if not words:
        return
    _invocation(words, simple, depth, via, state)


def _stdin_fact(stdin: Stdin | None) -> tuple[str, str, tuple[str, ...]] | None:
    """(kind, source, every program upstream in the pipeline, nearest first)."""
    if stdin is None:
        return None
    if stdin.kind == "pipe":
        upstream: list[str] = []
        feed: Stdin | None = stdin
        while feed is not None and feed.kind == "pipe" and len(upstream) < 64:
            producer = feed.producer
            if producer is None or not producer.words:
                upstream.append("?")
                break
            upstream.append(basename(producer.words[0].text))
            feed = producer.stdin
        return ("pipe", upstream[0], tuple(upstream))
    if stdin.kind == "file":
        return ("file", normalise_path(stdin.path or ""), ())
    return (stdin.kind, "", ())


def _redirect_pairs(redirects: Sequence[Redirect]) -> tuple[tuple[str, str], ...]:
    out = []
    for r in redirects:
        target = "" if r.target is None else r.target.text
        op = (r.fd or "") + r.op
        if (r.target is not None and r.op in (">", ">>", ">|", "&>", "&>>", "<", "<>")) or (
            r.op in (">&", "<&")
            and r.target is not None
            and not r.target.text.isdigit()
            and r.target.text != "-"
        ):
            target = normalise_path(target)
        out.append((op, target))
    return tuple(out)


def _invocation(
    words: list[Word], simple: Simple, depth: int, via: tuple[str, ...], state: _State
) -> None:
    if len(state.invocations) >= MAX_INVOCATIONS:
        state.error("command runs too many programs")
        return
    head = words[0]
    # a program known only at run time keeps its text: `$($(rm -rf /))` has no base name
    program = head.text if head.dynamic else basename(head.text)
    argv = tuple(w.text for w in words)
    if program in _BUSYBOX and len(words) > 1 and not words[1].text.startswith("-"):
        # `busybox rm …` is rm
        inv = Invocation(program, argv, head.text, via, wrapper=True)
        state.invocations.append(inv)
        _invocation(words[1:], simple, depth, (*via, program), state)
        return
    dynamic_program = head.dynamic or head.glob
    stdin_text = _stdin_text(simple.stdin)
    spec = SPECS.get("mkfs" if program.startswith("mkfs") else program)
    parsed = parse_options(argv, spec) if program != "find" else _find_options(argv)
    options = dict(parsed.options)
    kubernetes: dict[str, Any] | None = None
    if program in ("kubectl", "oc"):
        kubernetes, options = kube_command(argv)
        verb: str | None = kubernetes["verb"] or None
    elif program == "helm":
        kubernetes = helm_command(argv)
        verb = kubernetes["verb"] or None
    else:
        verb = verb_of(program, argv)
    operands = tuple(parsed.operands)
    redirects = _redirect_pairs(simple.redirects)
    paths = file_operands(program, argv, options, operands)
    paths = tuple(
        dict.fromkeys((*paths, *(t for op, t in redirects if t and not t.isdigit() and t != "-")))
    )
    writes = writes_of(program, argv, options, operands, redirects)
    inner = unwrap(program, words)
    # a glob argument stays a path (`/e*` is under `/`); only expansions are dynamic
    dynamic = dynamic_program or any(w.dynamic for w in words[1:])
    opaque = False
    nested_via = (*via, program)
    scripts: list[tuple[str, bool]] = []  # (script text, dynamic)
    if program in SHELLS or program in ("eval", "source", "."):
        found, opaque = _shell_input(program, words, simple.stdin, stdin_text)
        scripts.extend(found)
    client = client_input(program, argv, stdin_text, simple.stdin is not None)
    if program in SQL_CLIENTS:
        if simple.stdin is not None and simple.stdin.kind == "file":
            client = attrs.evolve(client, opaque=True)
        opaque = opaque or client.opaque
        state.sql.extend(client.sql)
        scripts.extend((s, False) for s in client.scripts)
    inv = Invocation(
        program=program,
        argv=argv,
        path=head.text,
        via=via,
        options=options,
        operands=operands,
        paths=paths,
        writes=writes,
        redirects=redirects,
        dynamic=dynamic or any(u.dynamic for u in inner),
        dynamic_program=dynamic_program,
        stdin=_stdin_fact(simple.stdin),
        verb=verb,
        kubernetes=kubernetes,
        opaque_script=opaque,
        wrapper=bool(inner) or bool(scripts),
    )
    state.invocations.append(inv)
    if depth + 1 > MAX_DEPTH and (inner or scripts):
        state.error("command is nested too deeply")
        return
    for unwrapped in inner:
        if unwrapped.shell:
            text = " ".join(w.text for w in unwrapped.words)
            if any(w.dynamic for w in unwrapped.words):
                _dynamic_script(text, nested_via, state)
            _script(text, depth + 1, nested_via, state)
        else:
            inner_words = list(unwrapped.words)
            if unwrapped.dynamic:
                # arguments added at run time (xargs, find -exec {}): the inner
                # invocation's arguments are not all known
                inner_words = (
                    [*inner_words, Word("{}", dynamic=True)] if program == "xargs" else inner_words
                )
            before = len(state.invocations)
            _invocation(inner_words, simple, depth + 1, nested_via, state)
            if unwrapped.dynamic and len(state.invocations) > before:
                first = state.invocations[before]
                state.invocations[before] = attrs.evolve(first, dynamic=True)
    for text, is_dynamic in scripts:
        if is_dynamic:
            _dynamic_script(text, nested_via, state)
        _script(text, depth + 1, nested_via, state)


def _dynamic_script(text: str, via: tuple[str, ...], state: _State) -> None:
    """A script with parts known only at run time: recorded as a dynamic invocation."""
    state.invocations.append(
        Invocation(
            "$SCRIPT", (text,), text, via, dynamic=True, dynamic_program=True, opaque_script=True
        )
    )


def _find_options(argv: Sequence[str]) -> Parsed:
    """find's expression: primaries (`-delete`, `-exec CMD ;`) are its options, the
    starting points its operands."""
    options: dict[str, str] = {}
    operands: list[str] = []
    i = 1
    while i < len(argv) and (argv[i] in ("-H", "-L", "-P") or argv[i].startswith("-O")):
        i += 1
    while i < len(argv) and not argv[i].startswith(("-", "(", "!")):
        operands.append(argv[i])
        i += 1
    while i < len(argv):
        word = argv[i]
        if word in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(argv) and argv[j] not in (";", "+"):
                j += 1
            options[word] = " ".join(argv[i + 1 : j])
            i = j + 1
            continue
        if (
            word.startswith("-")
            and i + 1 < len(argv)
            and not argv[i + 1].startswith("-")
            and word not in _FIND_FLAGS
        ):
            options[word] = argv[i + 1]
            i += 2
            continue
        options[word] = ""
        i += 1
    return Parsed(options, operands)


_FIND_FLAGS = frozenset(("-delete", "-print", "-print0", "-ls", "-prune", "-quit", "-depth", "-xdev",
                         "-mount", "-follow", "-daystart", "-empty", "-true", "-false", "-readable",
                         "-writable", "-executable", "-nouser", "-nogroup", "-o", "-a", "-not", "-and", "-or"))  # fmt: skip


def _shell_input(
    program: str, words: Sequence[Word], stdin: Stdin | None, stdin_text: str | None
) -> tuple[list[tuple[str, bool]], bool]:
    """The scripts a shell (or eval/source) runs, and whether some are out of sight."""
    texts = [w.text for w in words]
    if program == "eval":
        script = " ".join(texts[1:])
        return ([(script, any(w.dynamic for w in words[1:]))] if script.strip() else []), False
    if program in ("source", "."):
        if len(words) < 2:
            return [], False
        return _script_file(words[1], stdin, stdin_text)
    i = 1
    command = False
    read_stdin = False
    while i < len(words):
        t = texts[i]
        if t == "--" or t == "-":
            i += 1
            break
        if t in ("--command", "-c"):
            command = True
            i += 1
            continue
        if t.startswith("--command="):
            return [(t[10:], words[i].dynamic)], False
        if t in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if t[:1] in "-+" and len(t) > 1:
            if not t.startswith("--") and "c" in t[1:]:
                command = True
            if not t.startswith("--") and "s" in t[1:]:
                read_stdin = True
            i += 1
            continue
        break
    if command:
        if i < len(words):
            return [(texts[i], words[i].dynamic)], False
        return [], False
    if read_stdin or i >= len(words):
        if stdin is None:
            return [], False  # an interactive shell
        if stdin_text is None:
            return [], True
        return [(stdin_text, False)], False
    return _script_file(words[i], stdin, stdin_text)


def _script_file(
    word: Word, stdin: Stdin | None, stdin_text: str | None
) -> tuple[list[tuple[str, bool]], bool]:
    path = word.text
    if path in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "-"):
        if stdin_text is None:
            return [], True
        return [(stdin_text, False)], False
    if word.source is not None:
        # `source <(echo …)`: the script is the inner commands' output, when literal
        text = output_of(word.source)
        if text is not None:
            return [(text, False)], False
    # a file (or a process substitution's output): what it holds is out of sight
    return [], True


_ECHO_FLAGS = re.compile(r"-[neE]+")


def _stdin_text(stdin: Stdin | None) -> str | None:
    """The text on standard input, when the analysis knows it."""
    if stdin is None:
        return None
    if stdin.kind in ("heredoc", "herestring"):
        return stdin.text
    if stdin.kind == "pipe" and stdin.producer is not None:
        return output_of(stdin.producer)
    return None


def output_of(simple: Simple, depth: int = 0) -> str | None:
    """What a producer writes to standard output, when its text says (echo, printf,
    cat of a heredoc, base64 -d of a known text); None otherwise."""
    words = simple.words
    if not words or depth > 8 or any(w.dynamic for w in words):
        return None
    program = basename(words[0].text)
    args = [w.text for w in words[1:]]
    if program == "echo":
        interpret = False
        newline = True
        while args and _ECHO_FLAGS.fullmatch(args[0]):
            interpret = interpret or "e" in args[0]
            newline = newline and "n" not in args[0]
            args = args[1:]
        out = " ".join(args)
        return (ansi_c(out) if interpret else out) + ("\n" if newline else "")
    if program == "printf":
        if not args:
            return None
        fmt, rest = args[0], args[1:]
        out = ansi_c(fmt)
        if "%" in out:
            pieces = re.split(r"%[-+ #0-9.]*[sbdqc]", out)
            joined = pieces[0]
            for k, piece in enumerate(pieces[1:]):
                joined += (ansi_c(rest[k]) if k < len(rest) else "") + piece
            out = joined
        return out
    if program in ("cat", "tee") and not [a for a in args if a != "-" and not a.startswith("-")]:
        return _stdin_text(simple.stdin) if simple.stdin is not None else None
    if program in ("base64", "base32") and any(a in ("-d", "--decode", "-D") for a in args):
        text = _stdin_text(simple.stdin)
        if text is None:
            return None
        try:
            raw = (
                base64.b64decode("".join(text.split()), validate=False)
                if program == "base64"
                else base64.b32decode("".join(text.split()))
            )
        except (binascii.Error, ValueError):
            return None
        return raw.decode("utf-8", "replace")
    return None
