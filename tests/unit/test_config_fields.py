"""The secret and `*_file` conventions, read off the config models.

Which fields are secrets and which name files is derived once from the
models (`config_fields`); loading, the redactor's list of values and the
reload watcher all use that. These tests check the derivation against an
independent reading of the models (their JSON schema) and that every field
it finds is treated as the conventions say.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from monitor.config import Config, load_config, referenced_files
from monitor.config.models import (
    FILE_FIELDS,
    ITEM,
    SECRET_FIELDS,
    FieldPath,
    Model,
    config_fields,
    fields_in,
)
from monitor.log import MASK, Redactor


def schema_fields(schema: dict[str, Any]) -> dict[FieldPath, list[dict[str, Any]]]:
    """Every property path of a JSON schema, with the schemas it may have there."""
    definitions = schema.get("$defs", {})
    found: dict[FieldPath, list[dict[str, Any]]] = {}

    def walk(node: dict[str, Any], path: FieldPath) -> None:
        if "$ref" in node:
            walk(definitions[node["$ref"].rsplit("/", 1)[-1]], path)
            return
        if path:
            found.setdefault(path, []).append(node)
        for key in ("anyOf", "oneOf", "allOf"):
            for member in node.get(key, []):
                walk(member, path)
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            walk(node["items"], (*path, ITEM))
        for name, child in node.get("properties", {}).items():
            walk(child, (*path, name))

    walk(schema, ())
    return found


def test_the_secret_fields_are_every_secretstr_field_of_the_models() -> None:
    """The derived secrets are the fields the JSON schema marks as passwords (SecretStr)."""
    fields = schema_fields(Config.model_json_schema())
    passwords = {
        path
        for path, schemas in fields.items()
        if any(s.get("format") == "password" for s in schemas)
    }
    assert set(SECRET_FIELDS) == passwords
    assert ("api", "token") in passwords  # the walk does reach into the models
    assert set(FILE_FIELDS) == {path for path in fields if path[-1].endswith("_file")}


def test_a_new_secretstr_field_is_a_secret_without_being_listed() -> None:
    """A model grown a SecretStr field: derived as secret, its value handed to the redactor."""

    class Webhook(Model):
        url: str = "https://hooks.example.com"
        signing_key: SecretStr | None = None
        signing_key_file: Path | None = None

    class Grown(Config):
        webhooks: tuple[Webhook, ...] = ()

    fields = config_fields(Grown)
    assert ("webhooks", ITEM, "signing_key") in fields.secrets
    assert ("webhooks", ITEM, "signing_key_file") in fields.files
    config = Grown(webhooks=(Webhook(signing_key=SecretStr("hook-signing-key")),))
    assert "hook-signing-key" in config.secrets()


def test_the_redactor_masks_every_secret_field_name() -> None:
    """A log event carrying a config secret under its field name is masked."""
    redactor = Redactor()
    for path in SECRET_FIELDS:
        event = redactor.value({path[-1]: "some-unknown-value"})
        assert event == {path[-1]: MASK}, path


def put(document: dict[str, Any], path: FieldPath, value: str) -> None:
    """Set `path` in `document`, list items being the first of their list."""
    node: Any = document
    for step, following in itertools.pairwise(path):
        if step == ITEM:
            if not node:
                node.append({})
            node = node[0]
        else:
            node = node.setdefault(step, [] if following == ITEM else {})
    node[path[-1]] = value


def test_every_file_field_is_resolved_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Each `*_file` field, set to a relative name, is read from next to the config file.

    Secrets come from their files; the reload watcher gets every file.
    """
    folder = tmp_path / "conf"
    (folder / "files").mkdir(parents=True)
    document: dict[str, Any] = {
        "credentials": [{"match": {"project": "*"}}],
        "targets": [{"kind": "redis", "name": "relay", "url": "redis://relay:6379"}],
    }
    expected: dict[FieldPath, Path] = {}
    for path in FILE_FIELDS:
        name = "-".join(step for step in path if step != ITEM)
        (folder / "files" / name).write_text(f"from-{name}\n", "utf-8")
        put(document, path, f"files/{name}")
        expected[path] = folder / "files" / name
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(document), "utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(config_path, env={})

    dumped = config.model_dump()
    for path, file in expected.items():
        [(_, container, key)] = fields_in(dumped, [path])
        assert container[key] == file, path
    assert set(referenced_files(config_path, config)) == {
        config_path,
        *expected.values(),
    }
    for path in SECRET_FIELDS:
        file_field = (*path[:-1], f"{path[-1]}_file")
        [(_, container, key)] = fields_in(dumped, [path])
        secret = container[key]
        assert isinstance(secret, SecretStr)
        name = "-".join(step for step in file_field if step != ITEM)
        assert secret.get_secret_value() == f"from-{name}", path
    assert len(config.secrets()) == len(SECRET_FIELDS)
