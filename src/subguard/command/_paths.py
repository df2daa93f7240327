"""Which arguments of an invocation name files, which files it writes, and paths in one
normal form (`//` collapsed, `.` dropped, `..` resolved: `/tmp/../etc` is `/etc`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["file_operands", "normalise_path", "writes_of"]

#: Programs whose every operand is a file.
_FILE_PROGRAMS = frozenset(
    ("rm", "rmdir", "unlink", "shred", "truncate", "touch", "cat", "tee", "cp", "mv", "ln",
     "install", "mkdir", "wipefs", "blkdiscard", "mkswap", "fdisk", "sfdisk", "parted", "mke2fs",
     "head", "tail", "less", "more", "stat", "file", "wc", "ls", "du", "srm", "scrub")
)  # fmt: skip
#: Programs whose first operand is not a file (a mode, an owner, a pattern).
_FIRST_NOT_FILE = frozenset(
    ("chmod", "chown", "chgrp", "chattr", "setfacl", "grep", "egrep", "fgrep", "sed", "awk")
)
_WRITE_REDIRECTS = frozenset((">", ">>", ">|", "&>", "&>>", "<>", ">&", "&>|"))
#: Programs that overwrite each of their operands.
_OVERWRITES = frozenset(("truncate", "shred", "tee", "wipefs", "blkdiscard", "mkswap", "fdisk",
                         "sfdisk", "parted", "mke2fs", "srm", "scrub", "badblocks", "hdparm"))  # fmt: skip


def normalise_path(path: str) -> str:
    """`path` with `//`, `.` and `..` resolved lexically. `~` (a home directory) is kept;
    `..` above a home directory or the root stays at the root."""
    if not path or "://" in path:
        return path
    absolute = path.startswith("/")
    parts: list[str] = []
    segments = path.split("/")
    home = segments[0] if segments[0].startswith("~") else None
    if home is not None:
        segments = segments[1:]
    for seg in segments:
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif home is not None:
                home, absolute = None, True  # above the home directory: somewhere from /
            elif not absolute:
                parts.append("..")
            continue
        parts.append(seg)
    body = "/".join(parts)
    if home is not None:
        return home + ("/" + body if body else "")
    if absolute:
        return "/" + body
    return body or "."


def _looks_like_path(word: str) -> bool:
    return (
        word.startswith(("/", "./", "../", "~"))
        or word in (".", "..")
        or ("/" in word and "://" not in word)
    ) and not word.startswith("-")


def file_operands(
    program: str, argv: Sequence[str], options: Mapping[str, str], operands: Sequence[str]
) -> tuple[str, ...]:
    """The operands (and `dd` operands, path-valued options) that name files, normalised."""
    found: list[str] = []
    ops = list(operands)
    if (
        program in _FIRST_NOT_FILE
        and ops
        and "--reference" not in options
        and not (
            program in ("sed", "grep", "egrep", "fgrep", "awk")
            and ({"--expression", "--file", "-e", "-f"} & set(options))
        )
    ):
        ops = ops[1:]
    if program == "dd":
        for op in ops:
            key, eq, value = op.partition("=")
            if eq and key in ("if", "of"):
                found.append(value)
        ops = []
    elif program == "find":
        ops = [o for o in ops if _looks_like_path(o)]
    for op in ops:
        if (
            program in _FILE_PROGRAMS
            or program in _FIRST_NOT_FILE
            or program.startswith("mkfs")
            or _looks_like_path(op)
        ):
            found.append(op)
    for key in ("--target-directory", "--output", "--file", "--reference"):
        option_value = options.get(key)
        if option_value:
            found.append(option_value)
    return tuple(dict.fromkeys(normalise_path(p) for p in found if p))


def writes_of(
    program: str,
    argv: Sequence[str],
    options: Mapping[str, str],
    operands: Sequence[str],
    redirects: Sequence[tuple[str, str]],
) -> tuple[str, ...]:
    """Files the invocation writes or overwrites, normalised."""
    found: list[str] = []
    for op, target in redirects:
        bare = op.lstrip("0123456789")
        if bare in _WRITE_REDIRECTS and target and not target.isdigit() and target != "-":
            found.append(target)
    ops = list(operands)
    if program == "dd":
        found.extend(op[3:] for op in ops if op.startswith("of="))
    elif program in _OVERWRITES or program.startswith("mkfs"):
        found.extend(ops)
    elif program in ("cp", "mv", "install", "ln", "rsync", "scp"):
        directory = options.get("--target-directory")
        if directory:
            found.append(directory)
        elif len(ops) >= 2:
            found.append(ops[-1])
    elif program == "sed" and "--in-place" in options:
        files = ops if {"--expression", "--file"} & set(options) else ops[1:]
        found.extend(files)
    elif program in ("curl", "wget"):
        out = options.get("--output") or options.get("-O") or options.get("--output-document")
        if out:
            found.append(out)
    return tuple(dict.fromkeys(normalise_path(p) for p in found if p))
