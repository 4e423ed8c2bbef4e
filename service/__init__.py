"""Streaming ingest of conflict-monitor reports into Deir Ezzor movement events."""

from __future__ import annotations

__version__ = "0.1.0"
