"""Options as a program reads them: GNU getopt_long (combined short flags, attached
values, `--opt=value`, unambiguous abbreviations of long options: `rm --rec` is
`rm --recursive`), per known program, and a generic reading for the others.

Options are reported under one canonical name per option: the long name when the
program has one (`-r`, `-R` and `--rec` are all `--recursive` for `rm`), else the short
one (`-x`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

__all__ = ["SPECS", "Parsed", "Spec", "parse_options"]


@attrs.frozen
class Spec:
    """How a program reads its options."""

    #: Short options that take a value (attached or the next word).
    short_value: str = ""
    #: Short options whose value can only be attached (`mysql -pSECRET`).
    short_optional: str = ""
    #: Short option → canonical long name.
    aliases: Mapping[str, str] = attrs.field(factory=dict)
    #: Long options (with `--`) → takes a value: True (required), None (optional,
    #: only with `=`), False (a flag).
    long: Mapping[str, bool | None] = attrs.field(factory=dict)
    #: Options end at the first operand (POSIX, wrappers); else GNU permutes.
    stop_at_operand: bool = False
    #: Long options are accepted by any unambiguous prefix (GNU getopt_long).
    abbreviations: bool = True
    #: `-0`, `-10` are options (`xargs -0`), not operands (a negative number).
    digit_options: bool = False


@attrs.frozen
class Parsed:
    options: dict[str, str]
    operands: list[str]
    #: Index in argv where the operands after `--` or the first operand (when options
    #: stop there) begin; -1 when options never stopped.
    rest_at: int = -1
    #: Every (option, value) in order: an option given twice appears twice.
    pairs: list[tuple[str, str]] = attrs.field(factory=list)


def _long_name(spec: Spec, name: str) -> tuple[str, bool | None]:
    if name in spec.long:
        return name, spec.long[name]
    if spec.abbreviations and len(name) > 2:
        matches = [n for n in spec.long if n.startswith(name)]
        if len(matches) == 1:
            return matches[0], spec.long[matches[0]]
        # getopt accepts an ambiguous prefix when all candidates are one option spelt
        # differently; we report the first candidate so rules still see a known name
        if matches:
            return sorted(matches)[0], spec.long[sorted(matches)[0]]
    return name, None


def parse_options(argv: Sequence[str], spec: Spec | None, start: int = 1) -> Parsed:
    """Read `argv[start:]` as `spec` says (a generic GNU reading when None)."""
    spec = spec or _GENERIC
    options: _Recording = _Recording()
    operands: list[str] = []
    i = start
    while i < len(argv):
        word = argv[i]
        if word == "--":
            operands.extend(argv[i + 1 :])
            return Parsed(dict(options), operands, i + 1, options.pairs)
        if word.startswith("--") and len(word) > 2:
            name, eq, value = word.partition("=")
            canonical, takes = _long_name(spec, name)
            if eq:
                options[canonical] = value
            elif takes and i + 1 < len(argv):
                options[canonical] = argv[i + 1]
                i += 1
            else:
                options.setdefault(canonical, "")
            i += 1
            continue
        if (
            word.startswith("-")
            and len(word) > 1
            and (spec.digit_options or not word[1:].isdigit())
        ):
            flags = word[1:]
            for j, flag in enumerate(flags):
                canonical = spec.aliases.get(flag, "-" + flag)
                rest = flags[j + 1 :]
                if flag in spec.short_value:
                    if rest:
                        options[canonical] = rest
                    elif i + 1 < len(argv):
                        options[canonical] = argv[i + 1]
                        i += 1
                    else:
                        options[canonical] = ""
                    break
                if flag in spec.short_optional:
                    options[canonical] = rest
                    break
                options.setdefault(canonical, "")
            i += 1
            continue
        if spec.stop_at_operand:
            return Parsed(dict(options), operands + list(argv[i:]), i, options.pairs)
        operands.append(word)
        i += 1
    return Parsed(dict(options), operands, -1, options.pairs)


class _Recording(dict[str, str]):
    """A dict that remembers every assignment in order."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []

    def __setitem__(self, key: str, value: str) -> None:
        self.pairs.append((key, value))
        super().__setitem__(key, value)

    def setdefault(self, key: str, default: str = "") -> str:
        self.pairs.append((key, default))
        return super().setdefault(key, default)


_GENERIC = Spec(abbreviations=False)


def _gnu(
    short_value: str = "", aliases: Mapping[str, str] | None = None, **long: bool | None
) -> Spec:
    return Spec(
        short_value=short_value,
        aliases=dict(aliases or {}),
        long={"--" + k.rstrip("_").replace("_", "-"): v for k, v in long.items()},
    )


_RM = _gnu(
    aliases={"r": "--recursive", "R": "--recursive", "f": "--force", "d": "--dir", "v": "--verbose",
             "i": "--interactive", "I": "--interactive"},
    force=False, interactive=None, one_file_system=False, no_preserve_root=False,
    preserve_root=None, recursive=False, dir=False, verbose=False, help=False, version=False,
)  # fmt: skip
_CHMOD = _gnu(
    aliases={"R": "--recursive", "c": "--changes", "f": "--silent", "v": "--verbose"},
    changes=False,
    silent=False,
    quiet=False,
    verbose=False,
    no_preserve_root=False,
    preserve_root=False,
    reference=True,
    recursive=False,
    help=False,
    version=False,
)
_CHOWN = _gnu(
    aliases={"R": "--recursive", "c": "--changes", "f": "--silent", "v": "--verbose",
             "h": "--no-dereference"},
    changes=False, silent=False, quiet=False, verbose=False, no_preserve_root=False,
    preserve_root=False, reference=True, recursive=False, dereference=False,
    no_dereference=False, from_=True, help=False, version=False,
)  # fmt: skip
_CP = _gnu(
    short_value="tS",
    aliases={"r": "--recursive", "R": "--recursive", "f": "--force", "t": "--target-directory",
             "T": "--no-target-directory", "a": "--archive"},
    recursive=False, force=False, target_directory=True, no_target_directory=False,
    archive=False, backup=None, suffix=True, verbose=False, interactive=False,
)  # fmt: skip
_SHRED = _gnu(
    short_value="ns",
    aliases={"u": "--remove", "z": "--zero", "f": "--force", "n": "--iterations", "s": "--size"},
    remove=None, zero=False, force=False, iterations=True, size=True, random_source=True,
    exact=False, verbose=False,
)  # fmt: skip
_TRUNCATE = _gnu(
    short_value="sr",
    aliases={"s": "--size", "r": "--reference", "c": "--no-create", "o": "--io-blocks"},
    size=True, reference=True, no_create=False, io_blocks=False,
)  # fmt: skip
_SED = _gnu(
    short_value="efl",
    aliases={"i": "--in-place", "e": "--expression", "f": "--file", "n": "--quiet",
             "E": "--regexp-extended", "r": "--regexp-extended", "s": "--separate"},
    in_place=None, expression=True, file=True, quiet=False, silent=False,
    regexp_extended=False, separate=False, null_data=False, debug=False, posix=False,
)  # fmt: skip
_TEE = _gnu(
    aliases={"a": "--append", "i": "--ignore-interrupts"}, append=False, ignore_interrupts=False
)
_RSYNC = _gnu(
    short_value="efT",
    delete=False,
    delete_before=False,
    delete_after=False,
    delete_during=False,
    delete_excluded=False,
    remove_source_files=False,
    recursive=False,
    archive=False,
    rsh=True,
    exclude=True,
    include=True,
    filter=True,
)
_GIT = Spec(short_value="Cc", long={"--git-dir": True, "--work-tree": True, "--namespace": True,
                                    "-C": True, "--exec-path": None}, stop_at_operand=True,
            abbreviations=False)  # fmt: skip
_PSQL = _gnu(
    short_value="cdfFhLoPpRTUv",
    aliases={"c": "--command", "d": "--dbname", "f": "--file", "h": "--host", "o": "--output",
             "p": "--port", "U": "--username", "v": "--set", "L": "--log-file"},
    command=True, dbname=True, file=True, field_separator=True, host=True, log_file=True,
    output=True, port=True, pset=True, record_separator=True, table_attr=True,
    username=True, set=True, variable=True, single_transaction=False, no_psqlrc=False,
    quiet=False, echo_all=False, tuples_only=False,
)  # fmt: skip
_MYSQL = _gnu(
    short_value="eDhPSuO",
    aliases={"e": "--execute", "D": "--database", "h": "--host", "P": "--port", "u": "--user",
             "S": "--socket", "p": "--password"},
    execute=True, database=True, host=True, port=True, socket=True, user=True, password=None,
    batch=False, silent=False, skip_column_names=False, init_command=True,
)  # fmt: skip
_MYSQL = attrs.evolve(_MYSQL, short_optional="p")
_CLICKHOUSE = _gnu(
    short_value="qhdu",
    aliases={"q": "--query", "h": "--host", "d": "--database", "u": "--user"},
    query=True, host=True, port=True, user=True, password=True, database=True, queries_file=True,
)  # fmt: skip
_CURL = _gnu(
    short_value="HdXuoTFAeEKxbcwr",
    aliases={"H": "--header", "d": "--data", "X": "--request", "u": "--user", "o": "--output",
             "T": "--upload-file", "F": "--form", "x": "--proxy", "K": "--config"},
    header=True, data=True, data_binary=True, data_raw=True, data_urlencode=True,
    request=True, user=True, output=True, upload_file=True, form=True, proxy=True,
    proxy_user=True, oauth2_bearer=True, config=True, url=True,
)  # fmt: skip
_MKFS = _gnu(short_value="tLbcCEgGiIjJlmNoOrTUz", type=True)
_DD = Spec(abbreviations=False)

#: Programs whose options are read with their own spec.
SPECS: dict[str, Spec] = {
    "rm": _RM,
    "chmod": _CHMOD,
    "chown": _CHOWN,
    "chgrp": _CHOWN,
    "cp": _CP,
    "mv": _CP,
    "install": _CP,
    "ln": _CP,
    "shred": _SHRED,
    "truncate": _TRUNCATE,
    "sed": _SED,
    "tee": _TEE,
    "rsync": _RSYNC,
    "git": _GIT,
    "psql": _PSQL,
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
    "clickhouse-client": _CLICKHOUSE,
    "curl": _CURL,
    "mkfs": _MKFS,
    "dd": _DD,
}
