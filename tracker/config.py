"""Configuration: a TOML file in the user config dir, environment overrides, known keys only.

Where things are looked for, first match wins:

- the config file: ``$TRACKER_CONFIG``, else ``<user config dir>/tracker/config.toml``;
- the database: ``--db``, ``$TRACKER_DB``, ``database.url`` in the file, else a SQLite file in
  the user data dir;
- secrets come from the environment only: ``$TRACKER_SMTP_PASSWORD``.

Each known key has a default and one check (:data:`KEYS`): ``tracker config set`` refuses an
unknown key or a value its check refuses with one ``Error:`` line and leaves the file unchanged;
the same check runs where the value is read. ``forecasters.NAME.email`` is a family of keys, one
per forecaster NAME.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

from predictions.errors import InputError, OperationalError

__all__ = [
    "FORECASTER_EMAIL",
    "KEYS",
    "Config",
    "Key",
    "config_path",
    "default_db_url",
    "forecaster_of",
    "load_config",
    "login_name",
    "parse_clock",
    "parse_networks",
]


@dataclass(frozen=True)
class Key:
    """A configuration key: its default, a line of help, and its one check: ``parse(name, value)``
    returns the value to store, or raises :class:`InputError` naming the key, the value and what
    is expected. ``config set`` runs it before writing; :meth:`Config.get` runs it where the value
    is read (so a hand-edited file fails at the commands that use the key, with the same line)."""

    default: Any
    help: str
    parse: Callable[[str, Any], Any]


def _text(name: str, value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise InputError(name, value, "a value (`tracker config unset` removes a key)")
    return text


def _whole(minimum: int, maximum: int | None = None) -> Callable[[str, Any], int]:
    expected = (
        f"a whole number from {minimum} to {maximum}" if maximum else f"a whole number >= {minimum}"
    )

    def parse(name: str, value: Any) -> int:
        try:
            number = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or number < minimum or (maximum is not None and number > maximum):
            raise InputError(name, value, expected)
        return number

    return parse


def _seconds(name: str, value: Any) -> float:
    try:
        number = float(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not 0 < number < float("inf"):
        raise InputError(name, value, "a number of seconds > 0")
    return number


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise InputError(name, value, "true or false")


def _choice(*options: str) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        text = str(value).strip()
        if text not in options:
            raise InputError(name, value, "one of " + ", ".join(options))
        return text

    return parse


def _security(name: str, value: Any) -> str:
    from reports.outbox import SMTP_SECURITY

    return _choice(*SMTP_SECURITY)(name, value)


def _one_line(name: str, value: Any) -> str:
    from predictions.validation import require_text

    return str(require_text(str(value), name, multiline=False))


def _person(name: str, value: Any) -> str:
    from predictions.records import is_market

    text = _one_line(name, value)
    if is_market(text):
        raise InputError(name, value, "a person's name, not a market's")
    return text


def _zone(name: str, value: Any) -> str:
    from predictions.validation import parse_timezone

    return str(parse_timezone(str(value).strip()).key)


def _address(name: str, value: Any) -> str:
    from reports.mail import parse_address

    return parse_address(str(value), name)


def _addresses(name: str, value: Any) -> str:
    from reports.mail import parse_addresses

    if not parse_addresses(str(value), name):
        raise InputError(name, value, "one or more email addresses such as me@example.org")
    return str(value).strip()


def parse_clock(value: Any, name: str = "notify.time") -> time:
    """A time of day ``HH:MM`` (24 hours)."""
    hours, _, minutes = str(value).strip().partition(":")
    digits = len(hours) in (1, 2) and len(minutes) == 2 and (hours + minutes).isdigit()
    if digits and int(hours) < 24 and int(minutes) < 60:
        return time(int(hours), int(minutes))
    raise InputError(name, value, "a time of day HH:MM such as 08:00")


def _clock(name: str, value: Any) -> str:
    return parse_clock(value, name).strftime("%H:%M")


def parse_networks(value: Any, name: str = "resolvers.allowed_networks") -> tuple[str, ...]:
    """Comma-separated CIDR networks (``10.1.0.0/16, fd00::/8``), each as ``ipaddress`` reads it."""
    import ipaddress

    networks = tuple(part.strip() for part in str(value or "").split(",") if part.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise InputError(name, network, "CIDR networks such as 10.1.0.0/16") from None
    if not networks:
        raise InputError(name, value, "CIDR networks such as 10.1.0.0/16")
    return networks


def _networks(name: str, value: Any) -> str:
    return ", ".join(parse_networks(value, name))


def _http_url(name: str, value: Any) -> str:
    text = str(value).strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or any(c.isspace() for c in text):
        raise InputError(
            name, value, "an http:// or https:// URL such as https://forecasts.example.org"
        )
    return text


def _database(name: str, value: Any) -> str:
    scheme, sep, rest = str(value).strip().partition("://")
    if not (sep and rest and scheme.split("+")[0] in ("sqlite", "postgresql")):
        raise InputError(name, value, "sqlite:///PATH or postgresql://USER@HOST/DB")
    return str(value).strip()


#: The key of every forecaster's address: ``forecasters.NAME.email``, NAME any forecaster name.
FORECASTER_EMAIL = "forecasters.NAME.email"
_EMAIL_PREFIX, _EMAIL_SUFFIX = "forecasters.", ".email"

KEYS: dict[str, Key] = {
    "database.url": Key(
        None, "SQLAlchemy URL: sqlite:///PATH or postgresql://USER@HOST/DB", _database
    ),
    "forecaster": Key(None, "your name on estimates (default: the login name)", _person),
    "timezone": Key("UTC", "IANA time zone for due dates and report times", _zone),
    "email.to": Key(None, "where reports go (comma-separated for several)", _addresses),
    "email.from": Key("tracker@localhost", "the From address of reports", _address),
    FORECASTER_EMAIL: Key(
        None,
        "where NAME's reports go instead of email.to (one address a day gets one email)",
        _address,
    ),
    "email.outbox_dir": Key(None, "folder for .eml files when no SMTP host is set", _text),
    "email.lease_seconds": Key(
        None, "how long a notifier holds a claimed message (default: enough for a batch)", _whole(1)
    ),
    "smtp.host": Key(None, "SMTP server; unset means write .eml files instead", _text),
    "smtp.port": Key(587, "SMTP port (1-65535)", _whole(1, 65535)),
    "smtp.security": Key("starttls", "starttls, tls or none", _security),
    "smtp.username": Key(None, "SMTP user (password from $TRACKER_SMTP_PASSWORD)", _text),
    "smtp.timeout": Key(30.0, "seconds before an SMTP connection gives up", _seconds),
    "smtp.cafile": Key(
        None, "extra CA certificates (PEM) to trust, e.g. a private server's", _text
    ),
    "notify.time": Key("08:00", "local time of day the report is sent (HH:MM)", _clock),
    "notify.frequency": Key(
        "daily", "daily, or weekly (one digest on Mondays)", _choice("daily", "weekly")
    ),
    "notify.overdue_interval_days": Key(
        7, "days between reminders of one overdue forecast", _whole(1)
    ),
    "notify.interval_minutes": Key(15, "how often the daemon looks for mail to send", _whole(1)),
    "server.base_url": Key(
        None,
        "the service's public URL: emails link to its pages; https makes its cookies Secure",
        _http_url,
    ),
    "server.url": Key(
        None, "the service the CLI talks to (else the one `tracker login` signed in to)", _http_url
    ),
    "resolvers.grace_days": Key(7, "days after due before a NO is proposed", _whole(0)),
    "resolvers.allow_private": Key(False, "allow checks of private/loopback addresses", _flag),
    "resolvers.allowed_networks": Key(
        None, "private networks checks may reach, comma-separated CIDRs (10.1.0.0/16)", _networks
    ),
    "resolvers.concurrency": Key(16, "checks in flight at once during a sweep", _whole(1)),
    "resolvers.per_host": Key(4, "requests in flight at once to one host", _whole(1)),
    "resolvers.timeout": Key(20.0, "total seconds one request may take", _seconds),
    "resolvers.max_bytes": Key(5_000_000, "largest response body read", _whole(1)),
    "resolvers.interval_minutes": Key(60, "how often the daemon sweeps", _whole(1)),
    "resolvers.lease_seconds": Key(
        600,
        "how long a sweep holds a claimed check; a killed sweep's checks wait this long",
        _whole(1),
    ),
}


def forecaster_of(name: str) -> str | None:
    """NAME of a ``forecasters.NAME.email`` key, else None."""
    if name.startswith(_EMAIL_PREFIX) and name.endswith(_EMAIL_SUFFIX):
        forecaster = name[len(_EMAIL_PREFIX) : -len(_EMAIL_SUFFIX)]
        return forecaster if forecaster and forecaster != "NAME" else None
    return None


def _key(name: str) -> Key:
    """The :class:`Key` of a known key name (``forecasters.alice.email`` included)."""
    if forecaster_of(name) is not None:
        _one_line("forecaster", forecaster_of(name))
        return KEYS[FORECASTER_EMAIL]
    if name in KEYS and name != FORECASTER_EMAIL:
        return KEYS[name]
    raise InputError("key", name, "a known key (see `tracker config show`)")


def config_path() -> Path:
    """The config file: ``$TRACKER_CONFIG`` or the platform's user config dir."""
    explicit = os.environ.get("TRACKER_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("tracker")) / "config.toml"


def default_db_url() -> str:
    """A SQLite file in the user data dir (``$TRACKER_DATA_DIR`` overrides the folder)."""
    folder = os.environ.get("TRACKER_DATA_DIR")
    if not folder:
        import platformdirs

        folder = platformdirs.user_data_dir("tracker")
    return "sqlite:///" + str(Path(folder).expanduser().resolve() / "tracker.db")


def login_name() -> str:
    """The login name: the forecaster of a user who set none (``me`` when it cannot be read)."""
    try:
        return getpass.getuser()
    except Exception:
        return "me"


class Config:
    """The effective configuration: defaults, then the file, then the environment."""

    def __init__(self, values: dict[str, Any], path: Path) -> None:
        self._values = values
        self.path = path

    def get(self, name: str) -> Any:
        """The value of a known key, checked by its :class:`Key` (its default when unset)."""
        key = _key(name)
        value = self._values.get(name)
        return key.default if value is None else key.parse(name, value)

    def addresses(self) -> dict[str, str]:
        """Each forecaster's report address, from the ``forecasters.NAME.email`` keys set."""
        return {
            forecaster: self.get(name)
            for name in sorted(self._values)
            if (forecaster := forecaster_of(name)) is not None
        }

    def shown(self) -> list[tuple[str, Any, str]]:
        """(key, value, help) of every key, each ``forecasters.NAME.email`` set after its pattern."""
        rows = []
        for name, key in KEYS.items():
            rows.append(
                (
                    name,
                    None if name == FORECASTER_EMAIL else self._values.get(name, key.default),
                    key.help,
                )
            )
            if name == FORECASTER_EMAIL:
                rows += [
                    (n, self._values[n], f"where {forecaster_of(n)}'s reports go")
                    for n in sorted(self._values)
                    if forecaster_of(n) is not None
                ]
        return rows

    @property
    def configured_forecaster(self) -> str | None:
        """The name set by the file's ``forecaster`` or ``$TRACKER_FORECASTER``, or None."""
        name = self.get("forecaster") or os.environ.get("TRACKER_FORECASTER")
        return str(name) if name else None

    @property
    def forecaster(self) -> str:
        """The name estimates are made under by default: the configured one, else the login."""
        return self.configured_forecaster or login_name()

    @property
    def smtp_password(self) -> str | None:
        """From the environment only, never the file."""
        return os.environ.get("TRACKER_SMTP_PASSWORD")

    def db_url(self, explicit: str | None = None) -> str:
        """``--db``, else ``$TRACKER_DB``, else ``database.url``, else the user data dir."""
        return (
            explicit or os.environ.get("TRACKER_DB") or self.get("database.url") or default_db_url()
        )

    def set(self, name: str, raw: str) -> Any:
        """Check a value by its key's one rule, write it to the file, return the stored value;
        :class:`InputError` (the file unchanged) when the key or the value is refused."""
        value = _key(name).parse(name, raw)
        self._values[name] = value
        self._save()
        return value

    def unset(self, name: str) -> None:
        """Remove a key from the file."""
        _key(name)
        self._values.pop(name, None)
        self._save()

    def _save(self) -> None:
        import tomli_w

        nested: dict[str, Any] = {}
        for name, value in sorted(self._values.items()):
            if value is None:
                continue
            forecaster = forecaster_of(name)
            *parents, leaf = ["forecasters", forecaster, "email"] if forecaster else name.split(".")
            node = nested
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".toml.tmp")
            tmp.write_text(tomli_w.dumps(nested), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:
            raise OperationalError(
                f"cannot write the config file {self.path}: {exc.strerror}"
            ) from exc


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def load_config(path: Path | None = None) -> Config:
    """Read and validate the config file (a missing file is an empty configuration)."""
    path = path or config_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raw = {}
    except tomllib.TOMLDecodeError as exc:
        raise InputError("config file", str(path), f"valid TOML ({exc})") from None
    except OSError as exc:
        raise OperationalError(f"cannot read the config file {path}: {exc.strerror}") from exc
    values = _flatten(raw)
    for name in values:
        try:
            _key(name)
        except InputError:
            raise InputError(
                f"config file {path}: key", name, "a known key (see `tracker config show`)"
            ) from None
    return Config(values, path)
