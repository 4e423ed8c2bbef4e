"""Shared helpers for loading and validating rule files (YAML) with precise errors."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import yaml

from service.errors import RuleConfigError, utf8_error_at


class _RuleLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. In YAML 1.1 "on", "no", "yes" and "off" are
    booleans, and word lists in rule files are full of them ("arrived on", "no")."""


_RuleLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_RuleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _mapping_without_repeats(
    loader: _RuleLoader, node: yaml.MappingNode, deep: bool = False
) -> Any:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in one entry", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_RuleLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: dict(_mapping_without_repeats(loader, node)),  # type: ignore[arg-type]
)


def load_yaml(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise RuleConfigError(str(path), "file not found") from exc
    except OSError as exc:
        raise RuleConfigError(str(path), f"cannot read: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleConfigError(
            str(path), f"not valid UTF-8 (rule files are UTF-8): {utf8_error_at(data, exc)}"
        ) from exc
    stream = io.StringIO(text)
    stream.name = str(path)  # PyYAML names the file in its error marks
    try:
        return yaml.load(stream, Loader=_RuleLoader)
    except yaml.YAMLError as exc:
        # PyYAML's message spans lines; the command line shows errors as one.
        raise RuleConfigError(str(path), f"not valid YAML: {' '.join(str(exc).split())}") from exc


class Checker:
    """Reads typed fields from one YAML mapping, naming the file and entry on error."""

    def __init__(self, path: Path, where: str, data: Any, allowed: set[str]) -> None:
        self.path = path
        self.where = where
        if not isinstance(data, dict):
            self.fail(f"expected a mapping, got {type(data).__name__}")
        unknown = set(data) - allowed
        if unknown:
            self.fail(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        self.data: dict[str, Any] = data

    def fail(self, message: str) -> None:
        raise RuleConfigError(str(self.path), f"{self.where}: {message}")

    def string(
        self, key: str, *, required: bool = True, choices: set[str] | None = None
    ) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.fail(f"missing '{key}'")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(f"'{key}' must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            self.fail(f"'{key}' is {value!r}, expected one of {', '.join(sorted(choices))}")
        return value

    def req_str(self, key: str, *, choices: set[str] | None = None) -> str:
        value = self.string(key, required=True, choices=choices)
        assert value is not None
        return value

    def str_list(self, key: str) -> list[str]:
        value = self.data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(f"'{key}' must be a list of non-empty strings")
        return [str(v) for v in value]

    def number(self, key: str, lo: float, hi: float, *, required: bool = True) -> float | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.fail(f"missing '{key}'")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(f"'{key}' must be a number, got {value!r}")
        if not lo <= float(value) <= hi:
            self.fail(f"'{key}' = {value} is outside [{lo}, {hi}]")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"'{key}' must be true or false, got {value!r}")
        return bool(value)
