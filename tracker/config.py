"""Configuration: a TOML file in the user config dir, environment overrides, known keys only.

Where things are looked for, first match wins:

- the config file: ``$TRACKER_CONFIG``, else ``<user config dir>/tracker/config.toml``;
- the database: ``--db``, ``$TRACKER_DB``, ``database.url`` in the file, else a SQLite file in
  the user data dir;
- secrets come from the environment only: ``$TRACKER_SMTP_PASSWORD``.

Each known key has a type and a default (:data:`KEYS`); ``tracker config set`` refuses unknown keys
and values of the wrong type with one clear line.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predictions.errors import InputError, OperationalError

__all__ = ["KEYS", "Config", "Key", "config_path", "default_db_url", "load_config"]


@dataclass(frozen=True)
class Key:
    """A configuration key: its type, default and a line of help."""

    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()


KEYS: dict[str, Key] = {
    "database.url": Key(str, None, "SQLAlchemy URL: sqlite:///PATH or postgresql://USER@HOST/DB"),
    "forecaster": Key(str, None, "your name on estimates (default: the login name)"),
    "timezone": Key(str, "UTC", "IANA time zone for due dates and report times"),
    "email.to": Key(str, None, "where reports go (comma-separated for several)"),
    "email.from": Key(str, "tracker@localhost", "the From address of reports"),
    "email.outbox_dir": Key(str, None, "folder for .eml files when no SMTP host is set"),
    "email.lease_seconds": Key(
        int, None, "how long a notifier holds a claimed message (default: enough for a batch)"
    ),
    "smtp.host": Key(str, None, "SMTP server; unset means write .eml files instead"),
    "smtp.port": Key(int, 587, "SMTP port"),
    "smtp.security": Key(str, "starttls", "starttls, tls or none", ("starttls", "tls", "none")),
    "smtp.username": Key(str, None, "SMTP user (password from $TRACKER_SMTP_PASSWORD)"),
    "smtp.timeout": Key(float, 30.0, "seconds before an SMTP connection gives up"),
    "smtp.cafile": Key(str, None, "extra CA certificates (PEM) to trust, e.g. a private server's"),
    "notify.time": Key(str, "08:00", "local time of day the due report is sent (HH:MM)"),
    "notify.overdue_interval_days": Key(int, 7, "days between reminders of one overdue forecast"),
    "notify.interval_minutes": Key(int, 15, "how often the daemon looks for mail to send"),
    "resolvers.grace_days": Key(int, 7, "days after due before a NO is proposed"),
    "resolvers.allow_private": Key(bool, False, "allow checks of private/loopback addresses"),
    "resolvers.allowed_networks": Key(
        str, None, "private networks checks may reach, comma-separated CIDRs (10.1.0.0/16)"
    ),
    "resolvers.concurrency": Key(int, 16, "checks in flight at once during a sweep"),
    "resolvers.per_host": Key(int, 4, "requests in flight at once to one host"),
    "resolvers.timeout": Key(float, 20.0, "total seconds one request may take"),
    "resolvers.max_bytes": Key(int, 5_000_000, "largest response body read"),
    "resolvers.interval_minutes": Key(int, 60, "how often the daemon sweeps"),
    "resolvers.lease_seconds": Key(
        int, 600, "how long a sweep holds a claimed check; a killed sweep's checks wait this long"
    ),
}


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


def _coerce(name: str, key: Key, value: Any) -> Any:
    if value is None:
        return None
    if key.type is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise InputError(name, value, "true or false")
    if key.type is int:
        if isinstance(value, bool):
            raise InputError(name, value, "a whole number")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise InputError(name, value, "a whole number") from None
        if number < 0:
            raise InputError(name, value, "a whole number >= 0")
        return number
    if key.type is float:
        try:
            number_f = float(str(value).strip())
        except ValueError:
            raise InputError(name, value, "a number") from None
        if not number_f > 0:
            raise InputError(name, value, "a number > 0")
        return number_f
    text = str(value).strip()
    if key.choices and text not in key.choices:
        raise InputError(name, value, "one of " + ", ".join(key.choices))
    if name == "timezone":
        from predictions.validation import parse_timezone

        parse_timezone(text)
    if name == "notify.time":
        parts = text.split(":")
        if (
            len(parts) != 2
            or not all(p.isdigit() for p in parts)
            or int(parts[0]) > 23
            or int(parts[1]) > 59
        ):
            raise InputError(name, value, "a time of day HH:MM")
    return text


def _check_before_set(name: str, value: Any) -> None:
    """Refuse, at ``config set``, text that the commands using it would refuse: a forecaster name
    over several lines; addresses with line breaks, encoded words (``=?...?=``) or not plain
    ``local@domain`` (headers and the SMTP envelope are built from them), or several for
    ``email.from``. The same rules run where the values are used, so a file edited by hand is
    caught there without locking every other command out."""
    if name == "forecaster":
        from predictions.validation import require_text

        require_text(value, name, multiline=False)
    elif name in ("email.to", "email.from"):
        from reports.mail import parse_address, parse_addresses

        if name == "email.from":
            parse_address(value, name)
        elif not parse_addresses(value, name):
            raise InputError(name, value, "one or more email addresses such as me@example.org")


class Config:
    """The effective configuration: defaults, then the file, then the environment."""

    def __init__(self, values: dict[str, Any], path: Path) -> None:
        self._values = values
        self.path = path

    def get(self, name: str) -> Any:
        """The value of a known key (its default when unset)."""
        if name not in KEYS:
            raise InputError("key", name, "a known key (see `tracker config show`)")
        value = self._values.get(name)
        return KEYS[name].default if value is None else value

    def file_values(self) -> dict[str, Any]:
        """The keys set in the file."""
        return dict(self._values)

    @property
    def forecaster(self) -> str:
        """The name estimates are made under by default."""
        name = self.get("forecaster") or os.environ.get("TRACKER_FORECASTER")
        if name:
            return str(name)
        try:
            return getpass.getuser()
        except Exception:
            return "me"

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
        """Set a key in the file (validated) and return the stored value."""
        if name not in KEYS:
            raise InputError("key", name, "a known key (see `tracker config show`)")
        value = _coerce(name, KEYS[name], raw)
        _check_before_set(name, value)
        self._values[name] = value
        self._save()
        return value

    def unset(self, name: str) -> None:
        """Remove a key from the file."""
        if name not in KEYS:
            raise InputError("key", name, "a known key (see `tracker config show`)")
        self._values.pop(name, None)
        self._save()

    def _save(self) -> None:
        import tomli_w

        nested: dict[str, Any] = {}
        for name, value in sorted(self._values.items()):
            if value is None:
                continue
            *parents, leaf = name.split(".")
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
    values: dict[str, Any] = {}
    for name, value in _flatten(raw).items():
        if name not in KEYS:
            raise InputError(
                f"config file {path}: key", name, "a known key (see `tracker config show`)"
            )
        values[name] = _coerce(name, KEYS[name], value)
    return Config(values, path)
