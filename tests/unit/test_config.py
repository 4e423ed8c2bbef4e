"""Settings: the shipped files load; every kind of mistake names file, key and value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.config import (
    ENV_DATABASE_URL,
    FEED_OPTIONS,
    SERVICE_OPTIONS,
    WEBHOOK_OPTIONS,
    Area,
    WebhookFormat,
    load_settings,
)
from service.errors import ConfigError
from service.events import Affiliation, EventType

PROJECT_ROOT = Path(__file__).resolve().parents[2]

GOOD_FEED = """
[[feeds]]
name = "sohr"
url = "https://www.syriahr.com/en/feed/"
outlet = "SOHR"
"""


def write(tmp_path: Path, service: str = "", feeds: str = GOOD_FEED) -> Path:
    (tmp_path / "feeds.toml").write_text(feeds, encoding="utf-8")
    path = tmp_path / "service.toml"
    path.write_text(service, encoding="utf-8")
    return path


def test_shipped_configuration_loads() -> None:
    settings = load_settings(PROJECT_ROOT / "config" / "service.toml", environ={})
    assert settings.database_url == "sqlite:///data/service.db"
    assert settings.http.max_body_bytes == 15 * 1024 * 1024
    assert settings.http.max_redirects == 5
    assert settings.http.allow_private_networks is False
    names = [feed.name for feed in settings.feeds]
    assert {"sohr", "southfront", "enab-baladi", "north-press", "syria-direct"} <= set(names)
    assert all(feed.url.startswith("https://") for feed in settings.feeds)
    assert settings.webhooks == ()


def test_shipped_service_toml_spells_out_every_default() -> None:
    """config/service.toml shows each default; keep it in step with the option table."""
    text = (PROJECT_ROOT / "config" / "service.toml").read_text(encoding="utf-8")
    for key in SERVICE_OPTIONS:
        assert key.rsplit(".", 1)[-1] in text, key


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path), environ={})
    for key, option in SERVICE_OPTIONS.items():
        section, _, name = key.rpartition(".")
        if key == "database.url":
            assert settings.database_url == option.default
        elif key == "feeds_file":
            assert settings.feeds_path == tmp_path / option.default
        elif key == "dedup.mirror_domains":
            assert settings.dedup.mirror_domains == (("southfront.press", "southfront.org"),)
        elif option.kind == "list of strings":
            assert list(getattr(getattr(settings, section), name)) == option.default
        else:
            assert getattr(getattr(settings, section), name) == option.default
    assert settings.feeds[0].interval_seconds == FEED_OPTIONS["interval_seconds"].default


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('mirror_domains = ["southfront.press"]', "expected 'mirror.host = original.host'"),
        ('mirror_domains = ["a.org = a.org"]', "a host cannot mirror itself"),
        ('mirror_domains = ["not a host = b.org"]', "not a host name: 'not a host'"),
        ('drop_query_params = ["a=b"]', "not a query parameter name: 'a=b'"),
        ("containment_threshold = 0.2", "must be between 0.5 and 1"),
        ("merge_distance_km = -1", "must be between 0 and 500"),
    ],
    ids=["no-equals", "self", "bad-host", "bad-param", "containment", "distance"],
)
def test_bad_dedup_settings_are_named(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_settings(write(tmp_path, f"[dedup]\n{line}\n"), environ={})
    assert f"dedup.{line.split(' ')[0]}" in str(info.value)


def test_mirror_hosts_are_normalised(tmp_path: Path) -> None:
    line = 'mirror_domains = ["WWW.Mirror.example = www.origin.example"]'
    path = write(tmp_path, f"[dedup]\n{line}\n")
    settings = load_settings(path, environ={})
    assert settings.dedup.mirror_domains == (("mirror.example", "origin.example"),)


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nmax_redirects = 2\n")
    settings = load_settings(environ={"SERVICE_CONFIG": str(path)})
    assert settings.config_path == path
    assert settings.http.max_redirects == 2


def test_explicit_path_beats_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nmax_redirects = 3\n")
    settings = load_settings(path, environ={"SERVICE_CONFIG": str(tmp_path / "nope.toml")})
    assert settings.http.max_redirects == 3


def test_database_url_from_environment_wins(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///x.db"\n')
    url = "postgresql+psycopg://svc@db.internal:5432/service"
    assert load_settings(path, environ={ENV_DATABASE_URL: url}).database_url == url


def test_bad_database_url_in_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path), environ={ENV_DATABASE_URL: "mysql://x/y"})
    message = str(info.value)
    assert "SERVICE_DATABASE_URL" in message and "mysql://x/y" in message


def test_feeds_file_is_relative_to_service_toml(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.toml").write_text(GOOD_FEED, encoding="utf-8")
    path = write(tmp_path, 'feeds_file = "sub/mine.toml"\n', feeds="")
    settings = load_settings(path, environ={})
    assert settings.feeds_path == tmp_path / "sub" / "mine.toml"
    assert [feed.name for feed in settings.feeds] == ["sohr"]


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # 24 bytes


def test_webhook_is_parsed_and_secret_hidden(tmp_path: Path) -> None:
    service = f"""
[[webhooks]]
name = "analysts"
url = "https://hooks.example.org/x"
secret = "{SECRET}"
[webhooks.filters]
types = ["deployment", "withdrawal"]
affiliations = ["iran-backed"]
"""
    (hook,) = load_settings(write(tmp_path, service), environ={}).webhooks
    assert hook.filters.types == (EventType.DEPLOYMENT, EventType.WITHDRAWAL)
    assert hook.filters.affiliations == (Affiliation.IRAN_BACKED,)
    assert hook.filters.in_region_only is True and hook.filters.movement_only is True
    assert hook.filters.include_hedged is False and hook.filters.min_sources == 1
    assert hook.filters.places == () and hook.filters.area is None
    assert hook.format is WebhookFormat.JSON and hook.corroborated is False
    assert hook.secrets == (SECRET,)
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in repr(hook)


def test_webhook_rotation_format_and_every_filter(tmp_path: Path) -> None:
    service = f"""
[[webhooks]]
name = "chat"
url = "https://hooks.example.org/slack"
secret = "{SECRET}"
previous_secrets = ["{OLD_SECRET}"]
format = "slack"
corroborated = true
[webhooks.filters]
movement_only = false
in_region_only = false
include_hedged = true
places = [" al-Mayadin ", "Hajin"]
near_lat = 35.0
near_lon = 40.45
radius_km = 25
min_sources = 2
"""
    (hook,) = load_settings(write(tmp_path, service), environ={}).webhooks
    assert hook.secrets == (SECRET, OLD_SECRET) and hook.secret == SECRET
    assert hook.format is WebhookFormat.SLACK and hook.corroborated is True
    f = hook.filters
    assert (f.movement_only, f.in_region_only, f.include_hedged) == (False, False, True)
    assert f.places == ("al-Mayadin", "Hajin")
    assert f.area == Area(35.0, 40.45, 25.0)
    assert f.min_sources == 2


def test_alert_settings_and_lease_longer_than_timeout(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, "[alerts]\ntimeout_seconds = 2\nlease_seconds = 5\nmax_attempts = 3\n"),
        environ={},
    )
    assert settings.alerts.timeout_seconds == 2.0 and settings.alerts.lease_seconds == 5.0
    assert settings.alerts.max_attempts == 3
    with pytest.raises(ConfigError) as info:
        load_settings(
            write(tmp_path, "[alerts]\ntimeout_seconds = 20\nlease_seconds = 10\n"), environ={}
        )
    assert "alerts.lease_seconds" in str(info.value) and "timeout_seconds (20)" in str(info.value)


def test_retry_ceiling_below_the_first_wait_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            write(tmp_path, "[alerts]\nretry_base_seconds = 600\nretry_ceiling_seconds = 60\n"),
            environ={},
        )
    message = str(info.value)
    assert "alerts.retry_ceiling_seconds" in message and "retry_base_seconds (600)" in message


def test_feed_lease_longer_than_http_timeout(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, "[http]\ntimeout_seconds = 2\n[scheduler]\nlease_seconds = 6\n"),
        environ={},
    )
    assert settings.scheduler.lease_seconds == 6.0
    assert load_settings(write(tmp_path), environ={}).scheduler.lease_seconds == 900.0
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[scheduler]\nlease_seconds = 15\n"), environ={})
    message = str(info.value)
    assert "scheduler.lease_seconds" in message and "http.timeout_seconds (20)" in message
    assert "got 15" in message


def test_http_server_settings(tmp_path: Path) -> None:
    default = load_settings(write(tmp_path), environ={}).http_server
    assert default.enabled is False and default.port == 9464
    settings = load_settings(
        write(tmp_path, '[http_server]\nenabled = true\nhost = "0.0.0.0"\nport = 9100\n'),
        environ={},
    )
    assert settings.http_server.enabled and settings.http_server.host == "0.0.0.0"
    assert settings.http_server.port == 9100
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[http_server]\nport = 70000\n"), environ={})
    assert "http_server.port" in str(info.value) and "70000" in str(info.value)


FEED = '[[feeds]]\nname = "{name}"\nurl = "{url}"\noutlet = "X"\n'

# (id, service.toml, feeds.toml, which file, key, value shown in the message)
BAD_FILES = [
    ("unknown-top-key", 'databse_url = "x"\n', GOOD_FEED, "service", "databse_url", "'x'"),
    ("unknown-section-key", "[http]\ntimeout = 5\n", GOOD_FEED, "service", "http.timeout", "5"),
    (
        "wrong-type-int",
        '[http]\nmax_redirects = "five"\n',
        GOOD_FEED,
        "service",
        "http.max_redirects",
        "'five'",
    ),
    (
        "bool-is-not-int",
        "[scheduler]\nworkers = true\n",
        GOOD_FEED,
        "service",
        "scheduler.workers",
        "True",
    ),
    (
        "out-of-range",
        "[http]\nmax_redirects = 50\n",
        GOOD_FEED,
        "service",
        "http.max_redirects",
        "50",
    ),
    (
        "bad-database-url",
        '[database]\nurl = "not a url"\n',
        GOOD_FEED,
        "service",
        "database.url",
        "'not a url'",
    ),
    (
        "unsupported-database",
        '[database]\nurl = "mysql://u@h/db"\n',
        GOOD_FEED,
        "service",
        "database.url",
        "'mysql://u@h/db'",
    ),
    ("invalid-toml", "[http\n", GOOD_FEED, "service", "not valid TOML", "line 1"),
    (
        "webhook-bad-url",
        '[[webhooks]]\nname = "a"\nurl = "ftp://x"\n'
        'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n',
        GOOD_FEED,
        "service",
        "webhooks[0].url",
        "'ftp://x'",
    ),
    (
        "webhook-missing-secret",
        '[[webhooks]]\nname = "a"\nurl = "https://x.org"\n',
        GOOD_FEED,
        "service",
        "webhooks[0].secret",
        "missing",
    ),
    (
        "webhook-unknown-type",
        '[[webhooks]]\nname = "a"\nurl = "https://x.org"\n'
        'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n'
        '[webhooks.filters]\ntypes = ["parade"]\n',
        GOOD_FEED,
        "service",
        "webhooks[0].filters.types",
        "'parade'",
    ),
    (
        "webhook-secret-without-prefix",
        '[[webhooks]]\nname = "a"\nurl = "https://x.org"\nsecret = "0123456789abcdef0123"\n',
        GOOD_FEED,
        "service",
        "webhooks[0].secret",
        "whsec_",
    ),
    (
        "webhook-secret-too-short",
        '[[webhooks]]\nname = "a"\nurl = "https://x.org"\nsecret = "whsec_c2hvcnQ="\n',
        GOOD_FEED,
        "service",
        "webhooks[0].secret",
        "got 5",
    ),
    (
        "webhook-previous-secret-not-base64",
        '[[webhooks]]\nname = "a"\nurl = "https://x.org"\n'
        'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\nprevious_secrets = ["whsec_!!"]\n',
        GOOD_FEED,
        "service",
        "webhooks[0].previous_secrets",
        "valid base64",
    ),
    (
        "webhook-unknown-format",
        '[[webhooks]]\nname = "a"\nurl = "https://x.org"\n'
        'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\nformat = "teams"\n',
        GOOD_FEED,
        "service",
        "webhooks[0].format",
        "'teams'",
    ),
    (
        "webhook-radius-without-centre",
        '[[webhooks]]\nname = "a"\nurl = "https://x.org"\n'
        'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n[webhooks.filters]\nradius_km = 5\n',
        GOOD_FEED,
        "service",
        "webhooks[0].filters.near_lat",
        "radius_km",
    ),
    (
        "webhook-min-sources-zero",
        '[[webhooks]]\nname = "a"\nurl = "https://x.org"\n'
        'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n[webhooks.filters]\nmin_sources = 0\n',
        GOOD_FEED,
        "service",
        "webhooks[0].filters.min_sources",
        "0",
    ),
    ("feeds-in-service", GOOD_FEED, GOOD_FEED, "service", "feeds", "feeds file"),
    ("feeds-invalid-toml", "", "[[feeds]\nname=", "feeds", "not valid TOML", "line"),
    ("feeds-not-array", "", 'feeds = "x"\n', "feeds", "feeds", "'x'"),
    (
        "feed-bad-url",
        "",
        FEED.format(name="a", url="htp//nowhere"),
        "feeds",
        "feeds[0].url",
        "'htp//nowhere'",
    ),
    (
        "feed-url-no-host",
        "",
        FEED.format(name="a", url="https:///feed"),
        "feeds",
        "feeds[0].url",
        "'https:///feed'",
    ),
    (
        "feed-duplicate-name",
        "",
        FEED.format(name="a", url="https://a.org/feed")
        + FEED.format(name="a", url="https://b.org/feed"),
        "feeds",
        "feeds[1].name",
        "'a'",
    ),
    (
        "feed-duplicate-url",
        "",
        FEED.format(name="a", url="https://a.org/feed")
        + FEED.format(name="b", url="https://a.org/feed"),
        "feeds",
        "feeds[1].url",
        "'https://a.org/feed'",
    ),
    (
        "feed-bad-name",
        "",
        FEED.format(name="Bad Name", url="https://a.org/feed"),
        "feeds",
        "feeds[0].name",
        "'Bad Name'",
    ),
    (
        "feed-interval-type",
        "",
        FEED.format(name="a", url="https://a.org/feed") + 'interval_seconds = "10m"\n',
        "feeds",
        "feeds[0].interval_seconds",
        "'10m'",
    ),
    (
        "feed-interval-too-short",
        "",
        FEED.format(name="a", url="https://a.org/feed") + "interval_seconds = 4\n",
        "feeds",
        "feeds[0].interval_seconds",
        "4",
    ),
    (
        "feed-unknown-key",
        "",
        FEED.format(name="a", url="https://a.org/feed") + "intervall = 600\n",
        "feeds",
        "feeds[0].intervall",
        "600",
    ),
    (
        "feed-missing-url",
        "",
        '[[feeds]]\nname = "a"\noutlet = "X"\n',
        "feeds",
        "feeds[0].url",
        "missing",
    ),
    ("feeds-top-level-key", "", 'title = "x"\n' + GOOD_FEED, "feeds", "title", "'x'"),
]


@pytest.mark.parametrize(
    ("service", "feeds", "which", "key", "value"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES],
)
def test_bad_configuration_names_file_key_and_value(
    tmp_path: Path, service: str, feeds: str, which: str, key: str, value: str
) -> None:
    path = write(tmp_path, service, feeds)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    expected_file = path if which == "service" else tmp_path / "feeds.toml"
    assert message.startswith(str(expected_file)), message
    assert key in message, message
    assert value in message, message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_missing_feeds_file(tmp_path: Path) -> None:
    path = tmp_path / "service.toml"
    path.write_text('feeds_file = "nope.toml"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(info.value).startswith(str(tmp_path / "nope.toml"))


def test_secret_value_never_echoed(tmp_path: Path) -> None:
    service = '[[webhooks]]\nname = "a"\nurl = "https://x.org"\nsecret = "short-secret"\n'
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, service), environ={})
    assert "short-secret" not in str(info.value)
    assert "webhooks[0].secret" in str(info.value)


def test_option_tables_have_docs() -> None:
    for table in (SERVICE_OPTIONS, WEBHOOK_OPTIONS, FEED_OPTIONS):
        for key, option in table.items():
            assert option.doc.strip(), key
