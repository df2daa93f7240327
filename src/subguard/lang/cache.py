"""Parsed modules as bytes and back, for a cache of parses kept by the caller.

`load_module` builds only policy AST nodes, locations and plain containers (an
allow-list unpickler): bytes from a cache can at worst describe a policy, never run
code. `parser_digest` changes whenever anything that decides a parse changes (the
grammar, the language's own source), so an entry keyed by it is never read by a parser
that would have parsed differently.
"""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
import sys
from pathlib import Path
from typing import Any, Final

from subguard.lang import ast
from subguard.lang.parser import grammar_text

__all__ = ["dump_module", "load_module", "parser_digest"]

_FORMAT: Final = b"subguard-module-1\n"

#: Builtins an entry may name (containers and scalars of the AST's fields).
_BUILTINS: Final = frozenset(
    {"frozenset", "set", "tuple", "list", "dict", "str", "int", "float", "bool", "bytes"}
)


@functools.cache
def parser_digest() -> str:
    """A hash of the grammar, of every `subguard.lang` source file and of the Python version."""
    h = hashlib.sha256(f"{sys.version_info[:2]}\0".encode())
    h.update(grammar_text().encode())
    for source in sorted(Path(ast.__file__).parent.glob("*.py")):
        h.update(source.name.encode() + b"\0")
        h.update(source.read_bytes())
    return h.hexdigest()


class _AstUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "subguard.lang.ast" and name in ast.__all__:
            found = getattr(ast, name)
            if isinstance(found, type):
                return found
        if (module, name) == ("subguard.errors", "Location"):
            return ast.Location
        if module == "builtins" and name in _BUILTINS:
            return getattr(__import__("builtins"), name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a parsed policy")


def dump_module(module: ast.Module) -> bytes:
    return _FORMAT + pickle.dumps(module, protocol=pickle.HIGHEST_PROTOCOL)


def load_module(data: bytes) -> ast.Module | None:
    """The module `dump_module` wrote, or None for anything else (corrupt, foreign, old)."""
    if not data.startswith(_FORMAT):
        return None
    try:
        module = _AstUnpickler(io.BytesIO(data[len(_FORMAT) :])).load()
    except Exception:
        return None
    return module if isinstance(module, ast.Module) else None
