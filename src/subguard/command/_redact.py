"""Take secrets out of a command line before it is stored: the values of secret-bearing
options of known programs (`mysql -pX`, `--password=X`, `curl -u user:X`, `-H
'Authorization: X'`, `sshpass -p X`, `redis-cli -a X`), environment assignments whose
name says secret (`PGPASSWORD=X psql`, `export API_TOKEN=X`), URL userinfo
(`postgresql://u:X@h/db`), text piped into `sudo -S`, high-entropy tokens, and any
match of a configured pattern. Programs, option names and paths stay, so a responder
can still read what ran; nested scripts (`bash -c '…'`, `ssh host '…'`) are redacted
inside.
"""

from __future__ import annotations

import functools
import math
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence

from subguard.command._syntax import Simple, read_script
from subguard.command._words import Word

__all__ = ["DEFAULT_SECRET_PATTERNS", "MASK", "redact_command"]

MASK = "***"

#: Token shapes that are secrets wherever they appear (configurable: pass `patterns`).
DEFAULT_SECRET_PATTERNS: tuple[str, ...] = (
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"glpat-[A-Za-z0-9_\-]{16,}",  # GitLab
    r"xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
    r"sk-[A-Za-z0-9_\-]{16,}",  # API keys of several vendors
    r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",  # JWT
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
)

_SECRET_NAME = re.compile(
    r"(?i)pass(?:word|wd|phrase)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credential|auth|cookie|session[-_]?key|signature|\bkey$|_key$"
)
_ALWAYS_SECRET = re.compile(r"(?i)pass|pwd|secret|token")
_URL_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.\-])(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:)(?P<secret>[^@/\s]+)(?=@)"
)
_HEADER = re.compile(
    r"(?i)^\s*(?P<name>authorization|proxy-authorization|cookie|set-cookie|x-[a-z0-9-]*(?:token|key|secret|auth)[a-z0-9-]*|[a-z0-9-]*api-?key)\s*:\s*(?P<value>.+)$"
)

# program → short options whose value is a secret; `attached` ones only take `-pX`
_SHORT_SECRETS: dict[str, tuple[str, str]] = {
    # program: (value attached or next word, value only attached)
    "mysql": ("", "p"), "mariadb": ("", "p"), "mysqldump": ("", "p"), "mysqladmin": ("", "p"),
    "mysqlimport": ("", "p"), "mysqlshow": ("", "p"), "mysqlcheck": ("", "p"),
    "sshpass": ("p", ""), "redis-cli": ("a", ""), "mongo": ("p", ""), "mongosh": ("p", ""),
    "mongodump": ("p", ""), "mongorestore": ("p", ""), "ldapsearch": ("w", ""), "ldapadd": ("w", ""),
    "ldapmodify": ("w", ""), "docker": ("p", ""), "podman": ("p", ""), "smbclient": ("", ""),
    "sqlcmd": ("P", ""), "bcp": ("P", ""), "isql": ("P", ""), "cqlsh": ("p", ""), "rabbitmqadmin": ("p", ""),
    "wget": ("", ""), "zip": ("P", ""), "7z": ("", "p"), "unzip": ("P", ""), "openssl": ("", ""),
    "mosquitto_pub": ("P", ""), "mosquitto_sub": ("P", ""), "influx": ("t", ""),
}  # fmt: skip
# value is `user:secret`: only the part after the first colon is secret
_USER_COLON = {
    "curl": ("u", "--user", "--proxy-user", "-U"),
    "wget": ("", "--user"),
    "smbclient": ("U", "--user"),
}


def _entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _high_entropy(token: str) -> bool:
    if len(token) < 20 or not re.fullmatch(r"[A-Za-z0-9+/=_\-.~]+", token):
        return False
    if token.startswith(("/", "./", "~", "-")) or token.count("/") > 1 or token.count(".") > 2:
        return False
    classes = sum(bool(re.search(p, token)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[+/=_\-.~]"))
    return classes >= 3 and _entropy(token) >= 3.6


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~"))


def _mask_value(name: str, value: str) -> str:
    if not value:
        return value
    if not _ALWAYS_SECRET.search(name) and _looks_like_path(value):
        return value
    return MASK


def _tokens(text: str, patterns: Sequence[re.Pattern[str]]) -> str:
    """Redact the parts of one word that are secrets by their own shape."""
    text = _URL_USERINFO.sub(lambda m: m.group("head") + MASK, text)
    header = _HEADER.match(text)
    if header:
        return f"{header.group('name')}: {MASK}"
    for pattern in patterns:
        text = pattern.sub(MASK, text)
    name, eq, value = text.partition("=")
    if (
        eq
        and not any(c.isspace() for c in value)
        and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name.lstrip("-"))
        and _SECRET_NAME.search(name)
    ):
        return f"{name}={_mask_value(name, value)}"
    parts = re.split(r"(\s+|[:=,;&?])", text)
    if any(_high_entropy(p) for p in parts):
        text = "".join(MASK if _high_entropy(p) else p for p in parts)
    return text


def redact_command(text: str, patterns: Iterable[str] | None = None, *, _depth: int = 0) -> str:
    """`text` with every secret it carries replaced by `***`. Never raises."""
    compiled = _compiled(DEFAULT_SECRET_PATTERNS if patterns is None else tuple(patterns))
    try:
        return _redact(text, compiled, _depth)
    except RecursionError:  # pragma: no cover - bounded by the depth below
        return MASK


@functools.lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """The patterns as one alternation (one pass over each word instead of one per
    pattern), or each on its own when one refers to its groups."""
    singles = tuple(re.compile(p) for p in patterns)
    if len(singles) < 2 or any(p.groups or p.groupindex for p in singles):
        return singles
    try:
        return (re.compile("|".join(f"(?:{p})" for p in patterns)),)
    except re.error:  # a pattern with global flags (`(?i)…`) cannot be one branch
        return singles


def _redact(text: str, patterns: Sequence[re.Pattern[str]], depth: int) -> str:
    if depth > 6 or not text.strip():
        return text
    script = read_script(text)
    source = text.encode("utf-8", "surrogatepass")
    edits: dict[tuple[int, int], str] = {}
    for simple in script.commands:
        _simple(simple, patterns, depth, edits, source)
    if not edits:
        out = text
    else:
        pieces: list[bytes] = []
        last = 0
        for (start, end), value in sorted(edits.items()):
            if start < last:
                continue
            pieces.append(source[last:start])
            pieces.append(value.encode("utf-8", "surrogatepass"))
            last = end
        pieces.append(source[last:])
        out = b"".join(pieces).decode("utf-8", "surrogatepass")
    if script.unread:
        # a text read only in part: every piece of the rest is judged by its own shape
        return "".join(
            _tokens(p, patterns) if p and not p.isspace() else p for p in re.split(r"(\s+)", out)
        )
    # what the parser could not place (a broken quote, a heredoc body): shapes only
    for pattern in patterns:
        out = pattern.sub(MASK, out)
    return _URL_USERINFO.sub(lambda m: m.group("head") + MASK, out)


def _quote(value: str) -> str:
    return shlex.quote(value) if value else "''"


def _sudo_reads_password(simple: Simple) -> bool:
    texts = [w.text for w in simple.words]
    for i, t in enumerate(texts):
        if i == 0 and t.rpartition("/")[2] != "sudo":
            return False
        if i > 0 and t.startswith("-") and not t.startswith("--") and "S" in t:
            return True
        if t == "--stdin":
            return True
        if i > 0 and not t.startswith("-"):
            break
    return False


def _simple(
    simple: Simple,
    patterns: Sequence[re.Pattern[str]],
    depth: int,
    edits: dict[tuple[int, int], str],
    source: bytes,
) -> None:
    words = simple.words
    for name, word, span in simple.assignments:
        if _SECRET_NAME.search(name) and word.text:
            edits[span] = MASK
        else:
            redacted = _tokens(word.text, patterns)
            if redacted != word.text:
                edits[span] = _quote(redacted)
    if any(_sudo_reads_password(f) for f in simple.feeds):
        for span in simple.spans[1:]:
            edits[span] = MASK
    if _sudo_reads_password(simple) and simple.stdin is not None:
        for redirect in simple.redirects:
            if redirect.op == "<<<" and redirect.target is not None:
                _mask_herestring(source, edits)
    if not words:
        return
    program = words[0].text.rpartition("/")[2]
    secret_next = False
    for i, word in enumerate(words):
        span = simple.spans[i]
        if span in edits:
            continue
        value = word.text
        if secret_next:
            secret_next = False
            if not value.startswith("-"):
                edits[span] = MASK
                continue
        new = _option_secret(program, value, words, i)
        if new is _NEXT:
            secret_next = True
            continue
        if isinstance(new, str):
            edits[span] = _quote(new)
            continue
        inner = _tokens(value, patterns)
        # a quoted script (`bash -c '…'`, `ssh host '…'`) is read again; a substitution's
        # commands are already commands of this script, so its text is not
        if (
            inner == value
            and i > 0
            and not word.dynamic
            and depth < 6
            and any(c.isspace() for c in value)
        ):
            inner = _redact(value, patterns, depth + 1)
        if inner != value:
            edits[span] = _quote(inner)


def _mask_herestring(source: bytes, edits: dict[tuple[int, int], str]) -> None:
    text = source.decode("utf-8", "surrogatepass")
    m = re.search(r"<<<\s*(\S+)", text)
    if m:
        start = len(text[: m.start(1)].encode("utf-8", "surrogatepass"))
        end = len(text[: m.end(1)].encode("utf-8", "surrogatepass"))
        edits[(start, end)] = MASK


class _Next:
    pass


_NEXT = _Next()


def _option_secret(program: str, value: str, words: Sequence[Word], i: int) -> str | _Next | None:
    """The redacted form of an option word carrying a secret, `_NEXT` when its value is
    the next word, or None."""
    if i == 0 or not value.startswith("-"):
        return None
    if value.startswith("--"):
        name, eq, rest = value.partition("=")
        if any(name == o for o in _USER_COLON.get(program, ())) or name in ("--proxy-user",):
            if eq:
                user, colon, _ = rest.partition(":")
                return f"{name}={user}:{MASK}" if colon else None
            return None
        if _SECRET_NAME.search(name[2:]) and not name.endswith(
            ("-file", "-stdin", "-env", "-cmd", "-command")
        ):
            if eq:
                return f"{name}={_mask_value(name, rest)}"
            if program in ("mysql", "mariadb", "mysqldump", "mysqladmin") and "pass" in name:
                return None  # mysql's --password takes its value only attached
            return _NEXT
        return None
    short, attached_only = _SHORT_SECRETS.get(program, ("", ""))
    user_colon = _USER_COLON.get(program, ("",))[0]
    flags = value[1:]
    for j, flag in enumerate(flags):
        rest = flags[j + 1 :]
        if flag in attached_only and attached_only:
            return f"-{flags[: j + 1]}{MASK}" if rest else None
        if flag in short and short:
            return f"-{flags[: j + 1]}{MASK}" if rest else _NEXT
        if user_colon and flag == user_colon:
            return None if rest else _NEXT_USER
        if program == "openssl" and value in ("-pass", "-passin", "-passout", "-k"):
            return _NEXT
    return None


_NEXT_USER: _Next = _NEXT
