"""Settings: one typed value, built and validated once at start, then passed down.

Where values come from (later wins):

1. the defaults in the option tables below;
2. ``config/service.toml`` (or ``--config PATH``, or the ``SERVICE_CONFIG`` environment
   variable), and the feeds file it names (``feeds_file``, relative to service.toml,
   default ``feeds.toml`` next to it);
3. ``SERVICE_DATABASE_URL`` in the environment, which replaces ``database.url``.

Every key is declared once in an option table (key, type, default, validator,
description), in the manner of miniflux's ``internal/config/options.go``. Anything
the tables do not know, a value of the wrong type, a malformed URL or a duplicate
feed name raises :class:`~service.errors.ConfigError` naming the file, the key and
the offending value. The README documents every key; a test keeps the two in step.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import enum
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.errors import ConfigError, utf8_error_at
from service.events import Affiliation, EventType

DEFAULT_CONFIG_PATH = Path("config/service.toml")
ENV_CONFIG = "SERVICE_CONFIG"
ENV_DATABASE_URL = "SERVICE_DATABASE_URL"
ENVIRONMENT = "environment"

MiB = 1024 * 1024


# ---------------------------------------------------------------------------
# The typed result


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Limits for every outgoing request (feeds, articles, webhooks)."""

    timeout_seconds: float
    connect_timeout_seconds: float
    max_body_bytes: int
    max_redirects: int
    allow_private_networks: bool
    user_agent: str
    per_host_concurrency: int


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """How the daemon wakes up to poll due feeds."""

    tick_seconds: int
    workers: int
    # A claimed feed is not claimed again (by this or another replica) before this.
    lease_seconds: float = 900.0
    # A daemon renews the claims of the polls it is running this often; a claim not
    # renewed for three times this (its daemon died) is taken over before its lease.
    heartbeat_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class HttpServerSettings:
    """The observability endpoint: ``/metrics`` (Prometheus) and ``/healthz``."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9464
    max_poll_age_seconds: float = 0.0  # 0: the last poll's age is reported, never judged


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """The webhook delivery worker: how often it looks, how long an attempt may take,
    and the retry schedule (``service.alerts.retry``)."""

    tick_seconds: float = 5.0
    timeout_seconds: float = 15.0
    lease_seconds: float = 60.0
    workers: int = 4
    retry_base_seconds: float = 60.0
    retry_ceiling_seconds: float = 8 * 3600.0
    max_attempts: int = 9


@dataclass(frozen=True, slots=True)
class Area:
    """A circle on the map: events located within ``radius_km`` of the point."""

    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True, slots=True)
class WebhookFilters:
    """Which events a subscriber receives; an empty tuple means "any".

    ``places`` and ``area`` together: the event's location must be one of the
    places or inside the area (either will do).
    """

    in_region_only: bool = True
    movement_only: bool = True
    types: tuple[EventType, ...] = ()
    affiliations: tuple[Affiliation, ...] = ()
    places: tuple[str, ...] = ()
    area: Area | None = None
    min_sources: int = 1
    include_hedged: bool = False


class WebhookFormat(enum.StrEnum):
    JSON = "json"  # the Standard Webhooks JSON payload
    SLACK = "slack"  # a Slack-compatible message ({"text": ...})


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    name: str
    url: str
    # The current signing secret first, then the ones still accepted during a rotation.
    secrets: tuple[str, ...]
    filters: WebhookFilters = WebhookFilters()
    format: WebhookFormat = WebhookFormat.JSON
    corroborated: bool = False

    @property
    def secret(self) -> str:
        return self.secrets[0]

    def __repr__(self) -> str:
        # Keep the signing secrets out of logs and tracebacks.
        return f"WebhookSettings(name={self.name!r}, url={self.url!r}, secrets='***')"


@dataclass(frozen=True, slots=True)
class FeedSettings:
    name: str
    url: str
    outlet: str
    interval_seconds: int


@dataclass(frozen=True, slots=True)
class DedupSettings:
    """Duplicate detection (articles) and corroboration (events); see ``service.dedup``."""

    # mirror host -> the host it mirrors (both without "www.")
    mirror_domains: tuple[tuple[str, str], ...] = (("southfront.press", "southfront.org"),)
    drop_query_params: tuple[str, ...] = ("doing_wp_cron",)
    shingle_words: int = 3
    num_perm: int = 64
    lead_words: int = 150
    lsh_threshold: float = 0.5
    max_candidates: int = 8
    min_words: int = 25
    jaccard_threshold: float = 0.8
    containment_threshold: float = 0.9
    merge_distance_km: float = 10.0
    date_tolerance_days: int = 1


@dataclass(frozen=True, slots=True)
class Settings:
    config_path: Path
    feeds_path: Path
    database_url: str
    http: HttpSettings
    scheduler: SchedulerSettings
    webhooks: tuple[WebhookSettings, ...]
    feeds: tuple[FeedSettings, ...]
    alerts: AlertSettings = AlertSettings()
    dedup: DedupSettings = DedupSettings()
    http_server: HttpServerSettings = HttpServerSettings()


# ---------------------------------------------------------------------------
# Validators: return a description of the problem, or None when the value is fine.

Check = Callable[[Any], str | None]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _between(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        if low <= value <= high:
            return None
        return f"must be between {low:g} and {high:g}"

    return check


def _non_empty(value: Any) -> str | None:
    return None if value.strip() else "must not be empty"


def _name(value: Any) -> str | None:
    if _NAME_RE.match(value):
        return None
    return "must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"


def _http_url(value: Any) -> str | None:
    if any(ch.isspace() for ch in value):
        return "invalid URL (contains whitespace)"
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "invalid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "invalid URL (expected http:// or https:// and a host)"
    return None


def _database_url(value: Any) -> str | None:
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        return "invalid database URL (expected e.g. sqlite:///data/service.db)"
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        return "unsupported database (expected sqlite:/// or postgresql+psycopg://)"
    return None


SECRET_PREFIX = "whsec_"


def _secret(value: Any) -> str | None:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 24 to 64 random bytes."""
    if not value.startswith(SECRET_PREFIX):
        return f"must start with {SECRET_PREFIX!r} followed by base64 (24 to 64 bytes)"
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return f"must be {SECRET_PREFIX!r} followed by valid base64"
    if not 24 <= len(key) <= 64:
        return f"must encode 24 to 64 bytes after {SECRET_PREFIX!r}, got {len(key)}"
    return None


def _secrets(value: Any) -> str | None:
    for item in value:
        problem = _secret(item)
        if problem is not None:
            return problem
    return None


def _choice(allowed: list[str]) -> Check:
    def check(value: Any) -> str | None:
        if value in allowed:
            return None
        return f"expected one of: {', '.join(allowed)}"

    return check


def _non_empty_items(value: Any) -> str | None:
    return "must not contain empty names" if any(not item.strip() for item in value) else None


_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")


def _host(value: str) -> str:
    return value.strip().lower().removeprefix("www.")


def _mirrors(value: Any) -> str | None:
    seen: set[str] = set()
    for item in value:
        mirror, sep, original = item.partition("=")
        if not sep:
            return f"expected 'mirror.host = original.host', got {item!r}"
        for host in (_host(mirror), _host(original)):
            if not _HOST_RE.match(host):
                return f"not a host name: {host!r} in {item!r}"
        if _host(mirror) == _host(original):
            return f"a host cannot mirror itself: {item!r}"
        if _host(mirror) in seen:
            return f"mirror {_host(mirror)!r} listed twice"
        seen.add(_host(mirror))
    return None


def _param_names(value: Any) -> str | None:
    for item in value:
        if not item or any(ch in item for ch in "=&?# "):
            return f"not a query parameter name: {item!r}"
    return None


def _one_of(allowed: list[str]) -> Check:
    def check(value: Any) -> str | None:
        bad = [item for item in value if item not in allowed]
        if bad:
            return f"unknown value {bad[0]!r} (expected some of: {', '.join(allowed)})"
        return None

    return check


# ---------------------------------------------------------------------------
# The option tables


REQUIRED: Any = object()


@dataclass(frozen=True, slots=True)
class Option:
    """One configuration key: its TOML type, default, validator and description."""

    kind: str  # "string", "integer", "number", "boolean", "list of strings"
    default: Any
    check: Check | None
    doc: str
    secret: bool = False


SERVICE_OPTIONS: Mapping[str, Option] = {
    "database.url": Option(
        "string",
        "sqlite:///data/service.db",
        _database_url,
        "SQLAlchemy URL of the database. A relative SQLite path is relative to the working "
        "directory; its directory is created. PostgreSQL: postgresql+psycopg://user@host/db.",
    ),
    "feeds_file": Option(
        "string",
        "feeds.toml",
        _non_empty,
        "The feeds file, relative to service.toml.",
    ),
    "http.timeout_seconds": Option(
        "number", 20.0, _between(0.1, 300), "Total time allowed for one HTTP exchange."
    ),
    "http.connect_timeout_seconds": Option(
        "number", 10.0, _between(0.1, 120), "Time allowed to open a connection."
    ),
    "http.max_body_bytes": Option(
        "integer", 15 * MiB, _between(1024, 1024 * MiB), "Largest response body read."
    ),
    "http.max_redirects": Option(
        "integer", 5, _between(0, 20), "Redirects followed before giving up."
    ),
    "http.allow_private_networks": Option(
        "boolean",
        False,
        None,
        "Allow requests to loopback, private and link-local addresses (off: SSRF guard).",
    ),
    "http.user_agent": Option(
        "string",
        "deirezzor-ingest/0.1 (conflict-monitor report reader)",
        _non_empty,
        "User-Agent header sent with every request.",
    ),
    "http.per_host_concurrency": Option(
        "integer", 2, _between(1, 16), "Simultaneous requests to one host."
    ),
    "scheduler.tick_seconds": Option(
        "integer", 30, _between(1, 3600), "How often the daemon looks for due feeds."
    ),
    "scheduler.workers": Option("integer", 4, _between(1, 64), "Feeds polled in parallel."),
    "scheduler.lease_seconds": Option(
        "number",
        900.0,
        _between(2, 86400),
        "A claimed feed is not claimed again before this (more than http.timeout_seconds).",
    ),
    "scheduler.heartbeat_seconds": Option(
        "number",
        10.0,
        _between(0.2, 600),
        "A polling daemon renews its claims this often; one not renewed for three times "
        "this (its daemon died) is taken over at once.",
    ),
    "alerts.tick_seconds": Option(
        "number", 5.0, _between(0.1, 3600), "How often the daemon looks for due webhook deliveries."
    ),
    "alerts.timeout_seconds": Option(
        "number", 15.0, _between(0.5, 120), "Time allowed for one webhook attempt."
    ),
    "alerts.lease_seconds": Option(
        "number",
        60.0,
        _between(1, 3600),
        "A claimed delivery is not claimed again before this (more than timeout_seconds).",
    ),
    "alerts.workers": Option("integer", 4, _between(1, 32), "Webhook attempts in parallel."),
    "alerts.retry_base_seconds": Option(
        "number", 60.0, _between(0.1, 3600), "Wait after the first failed attempt."
    ),
    "alerts.retry_ceiling_seconds": Option(
        "number", 8 * 3600.0, _between(1, 86400), "Longest wait between two attempts."
    ),
    "alerts.max_attempts": Option(
        "integer", 9, _between(1, 30), "Attempts before a delivery goes to the dead letter."
    ),
    "dedup.mirror_domains": Option(
        "list of strings",
        ["southfront.press = southfront.org"],
        _mirrors,
        "Hosts serving the same articles: 'mirror = original'; a mirror's URLs are "
        "compared as the original's.",
    ),
    "dedup.drop_query_params": Option(
        "list of strings",
        ["doing_wp_cron"],
        _param_names,
        "Query parameters dropped from article URLs besides the tracking ones courlan knows.",
    ),
    "dedup.shingle_words": Option(
        "integer", 3, _between(1, 10), "Words per shingle for near-duplicate comparison."
    ),
    "dedup.num_perm": Option(
        "integer", 64, _between(16, 512), "MinHash permutations per signature (stored)."
    ),
    "dedup.lead_words": Option(
        "integer",
        150,
        _between(20, 5000),
        "Words at the start of an article whose signature is indexed: a repost that drops or "
        "adds reader comments keeps its lead.",
    ),
    "dedup.lsh_threshold": Option(
        "number",
        0.5,
        _between(0.1, 0.95),
        "Lead similarity from which LSH proposes a stored article as a candidate.",
    ),
    "dedup.max_candidates": Option(
        "integer", 8, _between(1, 100), "Candidates compared word for word per article."
    ),
    "dedup.min_words": Option(
        "integer",
        25,
        _between(1, 1000),
        "Shorter texts are matched only by URL and text hash, never as near-duplicates.",
    ),
    "dedup.jaccard_threshold": Option(
        "number", 0.8, _between(0.3, 1), "Shingle Jaccard similarity from which two texts match."
    ),
    "dedup.containment_threshold": Option(
        "number",
        0.9,
        _between(0.5, 1),
        "Share of the shorter text's shingles found in the longer one from which it is a "
        "duplicate (a clean copy inside a scrape with reader comments).",
    ),
    "dedup.merge_distance_km": Option(
        "number",
        10.0,
        _between(0, 500),
        "Events of the same type and affiliation whose places are this close merge into one.",
    ),
    "dedup.date_tolerance_days": Option(
        "integer",
        1,
        _between(0, 30),
        "Days two day-precise event dates may differ and still be one event.",
    ),
    "http_server.enabled": Option(
        "boolean", False, None, "Serve /metrics and /healthz while the daemon runs."
    ),
    "http_server.host": Option("string", "127.0.0.1", _non_empty, "Address to listen on."),
    "http_server.port": Option("integer", 9464, _between(1, 65535), "Port to listen on."),
    "http_server.max_poll_age_seconds": Option(
        "number",
        0.0,
        _between(0, 7 * 86400),
        "/healthz answers 503 when the last successful poll is older (0: never).",
    ),
}

WEBHOOK_OPTIONS: Mapping[str, Option] = {
    "name": Option("string", REQUIRED, _name, "Subscriber name, unique; used in the outbox."),
    "url": Option("string", REQUIRED, _http_url, "Where events are POSTed."),
    "secret": Option(
        "string",
        REQUIRED,
        _secret,
        "Signing secret: whsec_ and the base64 of 24-64 random bytes.",
        secret=True,
    ),
    "previous_secrets": Option(
        "list of strings",
        [],
        _secrets,
        "Secrets still signed with during a key rotation (one signature each).",
        secret=True,
    ),
    "format": Option(
        "string",
        "json",
        _choice([f.value for f in WebhookFormat]),
        "json (Standard Webhooks payload) or slack (Slack-compatible message).",
    ),
    "corroborated": Option(
        "boolean",
        False,
        None,
        "Also send event.corroborated when another report confirms an event already sent.",
    ),
    "filters.in_region_only": Option(
        "boolean", True, None, "Only events located in Deir Ezzor province."
    ),
    "filters.movement_only": Option(
        "boolean", True, None, "Only movement events (deployment ... visit)."
    ),
    "filters.types": Option(
        "list of strings",
        [],
        _one_of([t.value for t in EventType]),
        "Only these event types (empty: all).",
    ),
    "filters.affiliations": Option(
        "list of strings",
        [],
        _one_of([a.value for a in Affiliation]),
        "Only events whose actor has one of these affiliations (empty: all).",
    ),
    "filters.places": Option(
        "list of strings",
        [],
        _non_empty_items,
        "Only events at these places (gazetteer names, any case; empty: anywhere).",
    ),
    "filters.near_lat": Option(
        "number", None, _between(-90, 90), "Latitude of the centre of a radius filter."
    ),
    "filters.near_lon": Option(
        "number", None, _between(-180, 180), "Longitude of the centre of a radius filter."
    ),
    "filters.radius_km": Option(
        "number", None, _between(0.1, 1000), "Only events within this distance of near_lat/lon."
    ),
    "filters.min_sources": Option(
        "integer", 1, _between(1, 100), "Only events reported by at least this many reports."
    ),
    "filters.include_hedged": Option(
        "boolean", False, None, "Also events the report hedges (reportedly, unconfirmed)."
    ),
}

FEED_OPTIONS: Mapping[str, Option] = {
    "name": Option("string", REQUIRED, _name, "Feed name, unique (a-z, 0-9, '-', '_')."),
    "url": Option("string", REQUIRED, _http_url, "RSS or Atom URL."),
    "outlet": Option("string", REQUIRED, _non_empty, "Outlet name stored with each article."),
    "interval_seconds": Option(
        "integer",
        900,
        _between(5, 7 * 24 * 3600),
        "Seconds between polls (5 or more; outlets expect minutes).",
    ),
}


def documented_keys() -> list[str]:
    """Every settings key as the README spells it (arrays of tables as ``feeds[].url``)."""
    return [
        *SERVICE_OPTIONS,
        *(f"webhooks[].{key}" for key in WEBHOOK_OPTIONS),
        *(f"feeds[].{key}" for key in FEED_OPTIONS),
        ENV_CONFIG,
        ENV_DATABASE_URL,
    ]


# ---------------------------------------------------------------------------
# Validation machinery


def _show(value: Any, option: Option | None = None) -> str:
    if option is not None and option.secret:
        return "'***'"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def _has_kind(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "list of strings":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    raise AssertionError(kind)


def _flatten(
    data: Mapping[str, Any], options: Mapping[str, Option], path: str, shown: str, prefix: str = ""
) -> dict[str, Any]:
    """Turn nested tables into dotted keys, refusing keys no option declares."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if full in options:
            flat[full] = value
        elif isinstance(value, dict) and any(name.startswith(full + ".") for name in options):
            flat.update(_flatten(value, options, path, shown, full + "."))
        else:
            hint = difflib.get_close_matches(full, list(options), n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(path, shown + full, f"unknown key (value {_show(value)}){suffix}")
    return flat


def _validate(
    data: Mapping[str, Any], options: Mapping[str, Option], path: str, shown: str = ""
) -> dict[str, Any]:
    """Check ``data`` against ``options``; return every key with defaults filled in.

    ``shown`` prefixes keys in error messages (``feeds[2].``).
    """
    flat = _flatten(data, options, path, shown)
    values: dict[str, Any] = {}
    for key, option in options.items():
        if key not in flat:
            if option.default is REQUIRED:
                raise ConfigError(path, shown + key, "required key is missing")
            values[key] = option.default
            continue
        value = flat[key]
        if not _has_kind(option.kind, value):
            raise ConfigError(
                path,
                shown + key,
                f"expected {option.kind}, got {_toml_type(value)} {_show(value, option)}",
            )
        if option.kind == "number":
            value = float(value)
        if option.check is not None:
            problem = option.check(value)
            if problem is not None:
                raise ConfigError(path, shown + key, f"{problem}, got {_show(value, option)}")
        values[key] = value
    return values


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(str(path), None, "file not found") from exc
    except IsADirectoryError as exc:
        raise ConfigError(str(path), None, "is a directory, expected a TOML file") from exc
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), None, f"not valid UTF-8 (TOML files are UTF-8): {utf8_error_at(data, exc)}"
        ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), None, f"not valid TOML: {exc}") from exc


def _array_of_tables(data: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    raw = data.pop(key, [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ConfigError(
            path,
            key,
            f"expected an array of tables ([[{key}]]), got {_toml_type(raw)} {_show(raw)}",
        )
    return raw


def _parse_webhooks(raw: list[dict[str, Any]], path: str) -> tuple[WebhookSettings, ...]:
    hooks: list[WebhookSettings] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(raw):
        shown = f"webhooks[{index}]."
        v = _validate(table, WEBHOOK_OPTIONS, path, shown)
        if v["name"] in seen:
            raise ConfigError(
                path,
                shown + "name",
                f"duplicate webhook name {v['name']!r} (also webhooks[{seen[v['name']]}])",
            )
        seen[v["name"]] = index
        hooks.append(
            WebhookSettings(
                name=v["name"],
                url=v["url"],
                secrets=(v["secret"], *v["previous_secrets"]),
                filters=WebhookFilters(
                    in_region_only=v["filters.in_region_only"],
                    movement_only=v["filters.movement_only"],
                    types=tuple(EventType(t) for t in v["filters.types"]),
                    affiliations=tuple(Affiliation(a) for a in v["filters.affiliations"]),
                    places=tuple(p.strip() for p in v["filters.places"]),
                    area=_area(v, path, shown),
                    min_sources=v["filters.min_sources"],
                    include_hedged=v["filters.include_hedged"],
                ),
                format=WebhookFormat(v["format"]),
                corroborated=v["corroborated"],
            )
        )
    return tuple(hooks)


def _area(v: Mapping[str, Any], path: str, shown: str) -> Area | None:
    keys = ("filters.near_lat", "filters.near_lon", "filters.radius_km")
    given = [key for key in keys if v[key] is not None]
    if not given:
        return None
    if len(given) != len(keys):
        missing = next(key for key in keys if v[key] is None)
        raise ConfigError(
            path, shown + missing, f"required with {', '.join(given)} (a radius filter needs all 3)"
        )
    return Area(
        lat=v["filters.near_lat"], lon=v["filters.near_lon"], radius_km=v["filters.radius_km"]
    )


def _parse_feeds(path: Path) -> tuple[FeedSettings, ...]:
    shown_path = str(path)
    data = _read_toml(path)
    raw = _array_of_tables(data, "feeds", shown_path)
    for key, value in data.items():
        raise ConfigError(
            shown_path, key, f"unknown key (value {_show(value)}); expected only [[feeds]] tables"
        )
    feeds: list[FeedSettings] = []
    names: dict[str, int] = {}
    urls: dict[str, int] = {}
    for index, table in enumerate(raw):
        shown = f"feeds[{index}]."
        v = _validate(table, FEED_OPTIONS, shown_path, shown)
        if v["name"] in names:
            raise ConfigError(
                shown_path,
                shown + "name",
                f"duplicate feed name {v['name']!r} (also feeds[{names[v['name']]}])",
            )
        if v["url"] in urls:
            raise ConfigError(
                shown_path,
                shown + "url",
                f"duplicate feed url {v['url']!r} (also feeds[{urls[v['url']]}])",
            )
        names[v["name"]] = index
        urls[v["url"]] = index
        feeds.append(
            FeedSettings(
                name=v["name"],
                url=v["url"],
                outlet=v["outlet"].strip(),
                interval_seconds=v["interval_seconds"],
            )
        )
    return tuple(feeds)


def config_path_from(explicit: Path | None, environ: Mapping[str, str]) -> Path:
    """``--config`` wins, then ``SERVICE_CONFIG``, then ``config/service.toml``."""
    if explicit is not None:
        return explicit
    from_env = environ.get(ENV_CONFIG, "").strip()
    return Path(from_env) if from_env else DEFAULT_CONFIG_PATH


def load_settings(
    config_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, validate and return the settings; raise ConfigError on the first problem."""
    env = os.environ if environ is None else environ
    path = config_path_from(config_path, env)
    shown = str(path)
    data = _read_toml(path)
    webhooks = _parse_webhooks(_array_of_tables(data, "webhooks", shown), shown)
    if "feeds" in data:
        raise ConfigError(shown, "feeds", "feeds belong in the feeds file (see feeds_file)")
    v = _validate(data, SERVICE_OPTIONS, shown)

    database_url = v["database.url"]
    env_url = env.get(ENV_DATABASE_URL)
    if env_url is not None:
        problem = _database_url(env_url)
        if problem is not None:
            raise ConfigError(ENVIRONMENT, ENV_DATABASE_URL, f"{problem}, got {_show(env_url)}")
        database_url = env_url

    if v["alerts.lease_seconds"] <= v["alerts.timeout_seconds"]:
        raise ConfigError(
            shown,
            "alerts.lease_seconds",
            f"must be more than alerts.timeout_seconds ({v['alerts.timeout_seconds']:g}), "
            f"got {v['alerts.lease_seconds']:g}",
        )
    if v["alerts.retry_ceiling_seconds"] < v["alerts.retry_base_seconds"]:
        raise ConfigError(
            shown,
            "alerts.retry_ceiling_seconds",
            "must be at least alerts.retry_base_seconds "
            f"({v['alerts.retry_base_seconds']:g}), got {v['alerts.retry_ceiling_seconds']:g}",
        )
    if v["scheduler.lease_seconds"] <= v["http.timeout_seconds"]:
        raise ConfigError(
            shown,
            "scheduler.lease_seconds",
            f"must be more than http.timeout_seconds ({v['http.timeout_seconds']:g}), "
            f"got {v['scheduler.lease_seconds']:g}",
        )
    feeds_path = path.parent / v["feeds_file"]
    return Settings(
        config_path=path,
        feeds_path=feeds_path,
        database_url=database_url,
        http=HttpSettings(
            timeout_seconds=v["http.timeout_seconds"],
            connect_timeout_seconds=v["http.connect_timeout_seconds"],
            max_body_bytes=v["http.max_body_bytes"],
            max_redirects=v["http.max_redirects"],
            allow_private_networks=v["http.allow_private_networks"],
            user_agent=v["http.user_agent"],
            per_host_concurrency=v["http.per_host_concurrency"],
        ),
        scheduler=SchedulerSettings(
            tick_seconds=v["scheduler.tick_seconds"],
            workers=v["scheduler.workers"],
            lease_seconds=v["scheduler.lease_seconds"],
            heartbeat_seconds=v["scheduler.heartbeat_seconds"],
        ),
        webhooks=webhooks,
        feeds=_parse_feeds(feeds_path),
        alerts=AlertSettings(
            tick_seconds=v["alerts.tick_seconds"],
            timeout_seconds=v["alerts.timeout_seconds"],
            lease_seconds=v["alerts.lease_seconds"],
            workers=v["alerts.workers"],
            retry_base_seconds=v["alerts.retry_base_seconds"],
            retry_ceiling_seconds=v["alerts.retry_ceiling_seconds"],
            max_attempts=v["alerts.max_attempts"],
        ),
        dedup=DedupSettings(
            mirror_domains=tuple(
                (_host(m), _host(o))
                for m, _, o in (item.partition("=") for item in v["dedup.mirror_domains"])
            ),
            drop_query_params=tuple(v["dedup.drop_query_params"]),
            shingle_words=v["dedup.shingle_words"],
            num_perm=v["dedup.num_perm"],
            lead_words=v["dedup.lead_words"],
            lsh_threshold=v["dedup.lsh_threshold"],
            max_candidates=v["dedup.max_candidates"],
            min_words=v["dedup.min_words"],
            jaccard_threshold=v["dedup.jaccard_threshold"],
            containment_threshold=v["dedup.containment_threshold"],
            merge_distance_km=v["dedup.merge_distance_km"],
            date_tolerance_days=v["dedup.date_tolerance_days"],
        ),
        http_server=HttpServerSettings(
            enabled=v["http_server.enabled"],
            host=v["http_server.host"],
            port=v["http_server.port"],
            max_poll_age_seconds=v["http_server.max_poll_age_seconds"],
        ),
    )
