"""Extraction rules: data in config/rules/, engine in ``engine`` (its docstring gives the order)."""

from __future__ import annotations

from service.rules.engine import Document, RuleSet, load_rules

__all__ = ["Document", "RuleSet", "load_rules"]
