"""The README documents every setting and every command (datasette's test_docs style)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from service.cli import main
from service.config import documented_keys

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("key", documented_keys())
def test_setting_is_documented(key: str) -> None:
    assert f"`{key}`" in README


def command_paths(group: click.Group, prefix: str = "service") -> list[str]:
    paths: list[str] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, path))
        else:
            paths.append(path)
    return paths


@pytest.mark.parametrize("path", command_paths(main))
def test_command_is_documented(path: str) -> None:
    assert f"### `{path}`" in README
    assert f".venv/bin/{path}" in README  # a pasteable example


def test_examples_do_not_call_bare_service() -> None:
    """On Debian a bare `service` is /usr/sbin/service unless the venv is active."""
    blocks = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
    assert blocks
    for block in blocks:
        for line in block.splitlines():
            assert not re.match(r"^(\S+=\S+ )*service\b", line), line
