"""RFC 6902 JSON Patch, enough of it for the integration PATCH endpoint."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final

_OPS: Final = ("add", "remove", "replace", "move", "copy", "test")


class PatchError(ValueError):
    """The patch document is malformed or cannot be applied (HTTP 400)."""


class PatchConflictError(PatchError):
    """A `test` operation did not match (HTTP 409)."""


def apply_patch(
    document: Any, operations: object, *, writable: Callable[[str], bool]
) -> Any:
    """Return a patched deep copy of `document`; `writable(path)` guards mutations."""
    if not isinstance(operations, list):
        raise PatchError("a JSON Patch body must be an array of operations")
    result = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        result = _apply_one(result, operation, index, writable)
    return result


def _apply_one(
    doc: Any, operation: object, index: int, writable: Callable[[str], bool]
) -> Any:
    """Apply operation number `index` to `doc` (which it may replace)."""
    where = f"operation {index}"
    if not isinstance(operation, dict):
        raise PatchError(f"{where}: must be an object")
    op = operation.get("op")
    path = operation.get("path")
    if op not in _OPS:
        raise PatchError(f"{where}: unsupported op {op!r} (use one of {_OPS})")
    if not isinstance(path, str):
        raise PatchError(f"{where}: path must be a string")
    tokens = _pointer(path, where)
    if op in {"add", "replace", "test"} and "value" not in operation:
        raise PatchError(f"{where}: {op} needs a value")
    if op != "test" and not writable(path):
        raise PatchError(f"{where}: {path} is read-only")
    if op == "test":
        if _get(doc, tokens, where) != operation["value"]:
            raise PatchConflictError(f"{where}: test failed at {path}")
        return doc
    if op in {"move", "copy"}:
        source = operation.get("from")
        if not isinstance(source, str):
            raise PatchError(f"{where}: {op} needs a from pointer")
        source_tokens = _pointer(source, where)
        value = copy.deepcopy(_get(doc, source_tokens, where))
        if op == "move":
            if not writable(source):
                raise PatchError(f"{where}: {source} is read-only")
            doc = _remove(doc, source_tokens, where)
        return _add(doc, tokens, value, where)
    if op == "remove":
        return _remove(doc, tokens, where)
    if op == "replace":
        _get(doc, tokens, where)
        doc = _remove(doc, tokens, where)
    return _add(doc, tokens, copy.deepcopy(operation["value"]), where)


def _pointer(path: str, where: str) -> list[str]:
    """Split an RFC 6901 JSON Pointer into unescaped tokens."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"{where}: path {path!r} must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _index(container: list[Any], part: str, where: str, *, append: bool) -> int:
    """Return the list index a pointer part names (`-` only when appending)."""
    if append and part == "-":
        return len(container)
    if not part.isdigit() or (part != "0" and part.startswith("0")):
        raise PatchError(f"{where}: {part!r} is not an array index")
    position = int(part)
    if position > len(container) or (position == len(container) and not append):
        raise PatchError(f"{where}: index {position} is out of range")
    return position


def _get(doc: Any, tokens: list[str], where: str) -> Any:
    """Return the value a pointer names."""
    node = doc
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"{where}: no member {token!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, where, append=False)]
        else:
            raise PatchError(f"{where}: cannot descend into a scalar at {token!r}")
    return node


def _add(doc: Any, tokens: list[str], value: Any, where: str) -> Any:
    """Add `value` at a pointer (replacing an existing object member)."""
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1], where)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, where, append=True), value)
    else:
        raise PatchError(f"{where}: cannot add into a scalar")
    return doc


def _remove(doc: Any, tokens: list[str], where: str) -> Any:
    """Remove the value at a pointer."""
    if not tokens:
        raise PatchError(f"{where}: cannot remove the whole document")
    parent = _get(doc, tokens[:-1], where)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{where}: no member {last!r}")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, where, append=False)]
    else:
        raise PatchError(f"{where}: cannot remove from a scalar")
    return doc
