"""Loading the configuration: raw YAML, then references, then validated models.

`load_config(path)` reads the file, resolves `${VAR}` references from the
environment and `*_file` references from disk, validates everything and
raises one `ConfigError` listing every problem as `field.path: message`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml
from pydantic import ValidationError

from monitor.config.models import (
    FILE_FIELDS,
    SECRET_FIELDS,
    TOKEN_ENV,
    Config,
    FieldPath,
    fields_in,
)

_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WHOLE_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
# Keys whose values are secrets: they must be ${VAR} references, never literals.
# Checked by name anywhere in the file, so that a secret put in the wrong
# place is still refused as a literal.
_SECRET_KEYS = frozenset(path[-1] for path in SECRET_FIELDS)
# The one secret with a fallback besides its file: the API token.
_API_TOKEN: FieldPath = ("api", "token")


class ConfigError(Exception):
    """A configuration that cannot be used; carries every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid configuration:\n" + "\n".join(self.problems))


# ---------------------------------------------------------------------------
# Loading: raw YAML -> references resolved -> validated models.


def _walk(
    node: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _check_secret_literals(raw: Any) -> list[str]:
    """Secrets must arrive by reference so that config files can be shared."""
    problems = []
    for path, value in _walk(raw):
        if not path or not isinstance(value, str):
            continue
        key = path[-1]
        if key in _SECRET_KEYS and not _WHOLE_REFERENCE.match(value):
            problems.append(
                f"{_dotted(path)}: secrets must be given by reference "
                f"(${{VAR}} or {key}_file), not inline"
            )
        elif key == "url":
            password = urlsplit(value).password if "@" in value else None
            if password and not _WHOLE_REFERENCE.match(password):
                problems.append(
                    f"{_dotted(path)}: the password in a URL must be a ${{VAR}} "
                    "reference, not inline"
                )
    return problems


def _expand(
    raw: Any, env: Mapping[str, str], path: tuple[str | int, ...], problems: list[str]
) -> Any:
    if isinstance(raw, dict):
        return {k: _expand(v, env, (*path, str(k)), problems) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_expand(v, env, (*path, i), problems) for i, v in enumerate(raw)]
    if not isinstance(raw, str) or "$" not in raw:
        return raw

    def substitute(text: str, encode: bool) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if not _ENV_NAME.match(name):
                problems.append(
                    f"{_dotted(path)}: invalid variable reference ${{{name}}}"
                )
                return ""
            if name not in env:
                problems.append(
                    f"{_dotted(path)}: environment variable {name} is not set"
                )
                return ""
            return quote(env[name], safe="") if encode else env[name]

        return _REFERENCE.sub(replace, text)

    if path and path[-1] == "url" and "://" in raw:
        # Values put into a URL's user:password part are percent-encoded, so a
        # password holding `@` or `/` cannot change where the URL points.
        scheme_end = raw.index("://") + 3
        at = raw.find("@", scheme_end)
        if at != -1 and "/" not in raw[scheme_end:at]:
            return substitute(raw[:at], encode=True) + substitute(
                raw[at:], encode=False
            )
    return substitute(raw, encode=False)


def _read_secret_file(path_value: Any, base_dir: Path) -> str | None:
    """The file's stripped text; None when unreadable (`_check_files` reports that)."""
    if not isinstance(path_value, str):
        return None  # the model reports the wrong type
    try:
        return (base_dir / path_value).expanduser().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _resolve_files(data: Any, base_dir: Path, problems: list[str]) -> None:
    """Make every `*_file` field absolute (relative to the config's folder), in place;
    each must be a readable file."""
    for location, container, key in fields_in(data, FILE_FIELDS):
        value = container[key]
        if not isinstance(value, str):
            continue  # the model reports the wrong type
        file = (base_dir / value).expanduser()
        if not file.is_file() or not os.access(file, os.R_OK):
            problems.append(f"{_dotted(location)}: no readable file at {file}")
        container[key] = str(file)


def _fill_from_file(
    section: dict[str, Any], key: str, where: str, base_dir: Path, problems: list[str]
) -> None:
    """Read `{key}_file` into `key`, keeping the file name for change detection."""
    file_key = f"{key}_file"
    if section.get(key) is not None and section.get(file_key) is not None:
        problems.append(f"{where}: set either {key} or {file_key}, not both")
        return
    if section.get(file_key) is None:
        return
    value = _read_secret_file(section[file_key], base_dir)
    if value == "":
        problems.append(f"{where}.{file_key}: the file is empty")
    elif value is not None:
        section[key] = value


def _sections(data: dict[str, Any], path: FieldPath) -> Iterator[tuple[str, Any]]:
    """(dotted location, section) of each section holding the field `path`."""
    if len(path) == 1:
        yield "(top level)", data
        return
    for location, container, key in fields_in(data, [path[:-1]]):
        yield _dotted(location), container[key]


def _resolve_secrets(
    data: dict[str, Any], env: Mapping[str, str], base_dir: Path, problems: list[str]
) -> None:
    """Fill every secret field from its `*_file`; api.token also from LD_API_TOKEN."""
    if data.get("api") is None:
        data["api"] = {}
    for path in SECRET_FIELDS:
        for where, section in _sections(data, path):
            if not isinstance(section, dict):
                continue  # the model reports the wrong type
            if path == _API_TOKEN:
                if section.get("enabled", True) is False:
                    continue  # a disabled API needs no token
                _fill_from_file(section, path[-1], where, base_dir, problems)
                _token_from_env(section, env, problems)
                _check_token_text(section.get("token"), problems)
            else:
                _fill_from_file(section, path[-1], where, base_dir, problems)


def _check_token_text(token: Any, problems: list[str]) -> None:
    """The token goes into an HTTP header: a line break or other control
    character (a token file of two lines, say) can never work."""
    if isinstance(token, str) and any(ord(c) < 32 or ord(c) == 127 for c in token):
        problems.append(
            "api.token: the token holds a line break or another control "
            "character (a token file must hold the token alone)"
        )


def _token_from_env(
    api: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> None:
    """api.token from LD_API_TOKEN when neither it nor token_file is given."""
    if api.get("token") is None and api.get("token_file") is None:
        if env.get(TOKEN_ENV):
            api["token"] = env[TOKEN_ENV]
        else:
            problems.append(
                f"api.token: no API token: set {TOKEN_ENV}, api.token or api.token_file"
            )
    elif api.get("token") == "" and not any(
        p.startswith("api.token:") for p in problems
    ):
        problems.append("api.token: the token is empty")


def _format_location(loc: tuple[int | str, ...], raw: Any) -> str:
    """Pydantic puts the union tag into locations; drop it to match the file."""
    parts: list[str] = []
    node = raw
    for element in loc:
        if (
            isinstance(node, dict)
            and isinstance(element, str)
            and element not in node
            and node.get("kind") == element
        ):
            continue  # the discriminator tag, not a key of the file
        parts.append(str(element))
        if isinstance(node, dict):
            node = node.get(element)
        elif (
            isinstance(node, list) and isinstance(element, int) and element < len(node)
        ):
            node = node[element]
        else:
            node = None
    return ".".join(parts) or "(top level)"


def parse_config(
    raw: Any, env: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> Config:
    """Validate a parsed YAML document; ConfigError lists every problem."""
    env = os.environ if env is None else env
    base_dir = Path.cwd() if base_dir is None else base_dir
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            [f"(top level): expected a mapping, got {type(raw).__name__}"]
        )
    problems = _check_secret_literals(raw)
    data = _expand(raw, env, (), problems)
    _resolve_files(data, base_dir, problems)
    _resolve_secrets(data, env, base_dir, problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        for error in err.errors(include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{_format_location(error['loc'], data)}: {message}")
        raise ConfigError(sorted(set(problems), key=problems.index)) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, resolve and validate the YAML file at `path`."""
    return parse_config(read_yaml(path), env, path.parent.resolve())


def read_yaml(path: Path, prefix: str = "") -> Any:
    """The YAML document at `path`; ConfigError (its problem after `prefix`) if
    the file cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            [f"{prefix}(file): cannot read {path}: {err.strerror or err}"]
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = (
            f"line {mark.line + 1}, column {mark.column + 1}"
            if mark
            else "unknown position"
        )
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"{prefix}(yaml): {where}: {problem}"]) from None


def referenced_files(config_path: Path, config: Config) -> tuple[Path, ...]:
    """The config file and every `*_file` it names, for change detection."""
    found: list[Path] = [config_path]
    for _, container, key in fields_in(config.model_dump(), FILE_FIELDS):
        if isinstance(container[key], Path):
            found.append(container[key])
    return tuple(dict.fromkeys(found))
