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

from monitor.config.models import TOKEN_ENV, Config

_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WHOLE_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
# Keys whose values are secrets: they must be ${VAR} references, never literals.
_SECRET_KEYS = frozenset({"token", "password"})


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


def _check_files(data: Any, base_dir: Path, problems: list[str]) -> None:
    """Every `*_file` must be a readable file (relative to the config's folder)."""
    for path, value in _walk(data):
        if (
            path
            and isinstance(path[-1], str)
            and path[-1].endswith("_file")
            and isinstance(value, str)
        ):
            file = (base_dir / value).expanduser()
            if not file.is_file() or not os.access(file, os.R_OK):
                problems.append(f"{_dotted(path)}: no readable file at {file}")


def _absolutise_files(data: Any, base_dir: Path) -> Any:
    if isinstance(data, dict):
        return {
            k: str((base_dir / v).expanduser())
            if isinstance(k, str) and k.endswith("_file") and isinstance(v, str)
            else _absolutise_files(v, base_dir)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_absolutise_files(v, base_dir) for v in data]
    return data


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


def _resolve_secrets(
    data: dict[str, Any], env: Mapping[str, str], base_dir: Path, problems: list[str]
) -> None:
    """Fill api.token and Redis passwords from their files or LD_API_TOKEN."""
    api = data.get("api")
    if api is None:
        api = data["api"] = {}
    if isinstance(api, dict) and api.get("enabled", True) is not False:
        _fill_from_file(api, "token", "api", base_dir, problems)
        if api.get("token") is None and api.get("token_file") is None:
            if env.get(TOKEN_ENV):
                api["token"] = env[TOKEN_ENV]
            else:
                problems.append(
                    "api.token: no API token: "
                    f"set {TOKEN_ENV}, api.token or api.token_file"
                )
        elif api.get("token") == "" and not any(
            p.startswith("api.token:") for p in problems
        ):
            problems.append("api.token: the token is empty")
    for list_key, sub_key in (("credentials", "redis"), ("targets", None)):
        entries = data.get(list_key)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            section = (
                entry.get(sub_key) if sub_key and isinstance(entry, dict) else entry
            )
            if isinstance(section, dict):
                where = f"{list_key}.{index}" + (f".{sub_key}" if sub_key else "")
                _fill_from_file(section, "password", where, base_dir, problems)


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
    _check_files(data, base_dir, problems)
    data = _absolutise_files(data, base_dir)
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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            [f"(file): cannot read {path}: {err.strerror or err}"]
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = (
            f"line {mark.line + 1}, column {mark.column + 1}"
            if mark
            else "unknown position"
        )
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"(yaml): {where}: {problem}"]) from None
    return parse_config(raw, env, path.parent.resolve())


def referenced_files(config_path: Path, config: Config) -> tuple[Path, ...]:
    """The config file and every `*_file` it names, for change detection."""
    found: list[Path] = [config_path]
    for _, value in _walk(config.model_dump(mode="json")):
        if isinstance(value, dict):
            for key, item in value.items():
                if key.endswith("_file") and isinstance(item, str):
                    found.append(Path(item))
    return tuple(dict.fromkeys(found))
