"""Extraction rules: data in config/rules/, engine in ``engine`` (its docstring gives the order)."""

from __future__ import annotations

from pathlib import Path

from service.rules.engine import Document, RuleSet, load_rules

# The rules shipped with the project (a source checkout or the Docker image's /app).
PROJECT_RULES = Path(__file__).resolve().parents[2] / "config" / "rules"

__all__ = ["PROJECT_RULES", "Document", "RuleSet", "load_rules"]
