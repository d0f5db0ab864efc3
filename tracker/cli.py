"""The ``tracker`` command line: a thin shell over predictions, resolvers and reports.

Commands live in ``tracker/*_commands.py`` modules, one per task, registered on :data:`main`. This
module owns the app context (config, engine), and turns every error into one ``Error: ...`` line
and an exit code (2 bad input, 1 operational failure), never a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import click

from predictions.errors import ImportProblems, InputError, TrackerError
from predictions.validation import parse_timezone
from tracker import __version__
from tracker.config import Config, load_config

if TYPE_CHECKING:
    import sqlite3

    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from tracker.client import Client
    from tracker.operations import Operations

__all__ = [
    "App",
    "TrackerGroup",
    "by_option",
    "forecast_argument",
    "format_option",
    "json_option",
    "limit_option",
    "main",
    "output_option",
    "pass_app",
    "proposal_option",
]

#: Each command module with the commands it defines, in the order ``tracker --help`` lists them.
#: Commands load lazily: ``tracker list`` imports only ``tracker.forecast_commands``.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "tracker.forecast_commands": (
        "add",
        "update",
        "list",
        "show",
        "resolve",
        "annul",
        "amend",
        "withdraw",
        "reopen",
    ),
    "tracker.check_commands": ("check", "sweep", "review", "confirm", "dispute", "evidence"),
    "tracker.report_commands": ("report",),
    "tracker.mail_commands": ("notify", "outbox", "run"),
    "tracker.data_commands": ("import", "export"),
    "tracker.demo_commands": ("demo",),
    "tracker.admin_commands": ("verify", "db", "config"),
    "tracker.user_commands": ("user", "token"),
    "tracker.serve_commands": ("serve",),
    "tracker.login_commands": ("login", "logout"),
}


class App:
    """What every command needs: the configuration and, lazily, the database or the server."""

    def __init__(self, db: str | None, server: str | None = None) -> None:
        self._db = db
        self._server = server
        self.config: Config = load_config()

    @cached_property
    def client(self) -> Client | None:
        """The server this CLI is a client of (:func:`tracker.client.connect`), or None."""
        from tracker.client import connect

        return connect(self._server, self._db, self.config.get("server.url"))

    @property
    def ops(self) -> Operations:
        """The forecast operations (:mod:`tracker.operations`): on the server when there is one,
        else on the database."""
        from tracker.operations import Local, Remote

        return Local(self) if self.client is None else Remote(self.client, self.tz)

    def _here(self) -> None:
        """Refuse to open a database while this CLI is a server's client: the commands that
        need one (sweep, notify, run, db, verify, demo, user, token, serve) run on the server."""
        if self.client is None:
            return
        ctx = click.get_current_context(silent=True)
        words = ctx.command_path.split()[1:] if ctx is not None else []
        raise click.UsageError(
            f"`{' '.join(['tracker', *words])}` runs where the database is (on the server), "
            f"not through {self.client.url}: run it there, or give --db"
        )

    @property
    def db_url(self) -> str:
        return self.config.db_url(self._db)

    @cached_property
    def engine(self) -> Engine:
        """The engine, with the schema checked (a SQLite file is created and migrated here)."""
        from predictions.db import ensure_schema, make_engine

        self._here()
        engine = make_engine(self.db_url)
        ensure_schema(engine)
        return engine

    def raw_engine(self) -> Engine:
        """The engine without the schema check (for ``tracker db``)."""
        from predictions.db import make_engine

        self._here()
        return make_engine(self.db_url)

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[Session]:
        """A session in one writing transaction (committed at the end of the block); ``bulk``
        for an import (see :func:`predictions.db.write_session`)."""
        from predictions.db import write_session

        with write_session(self.engine, bulk=bulk) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session."""
        from predictions.db import read_session

        with read_session(self.engine) as session:
            yield session

    @contextmanager
    def lite(self) -> Iterator[sqlite3.Connection | None]:
        """A bare sqlite3 connection for the fast path (:mod:`predictions.lite`), or None to use
        SQLAlchemy: None unless the database is an existing SQLite file at the current schema."""
        from predictions import lite

        self._here()
        path = lite.sqlite_file(self.db_url)
        conn = lite.connect(path) if path is not None else None
        try:
            yield conn
        finally:
            if conn is not None:
                lite.close(conn)

    @contextmanager
    def forecasts(self, *, write: bool = False) -> Iterator[Session | sqlite3.Connection]:
        """The database the forecast commands hand the store, in one transaction: the fast
        path's connection when :meth:`lite` gives one (no SQLAlchemy import), else a Session."""
        with self.lite() as conn:
            if conn is not None:
                from predictions.lite import transaction

                with transaction(conn, write=write):
                    yield conn
                return
        with self.write() if write else self.read() as session:
            yield session

    @property
    def forecaster(self) -> str:
        """Who "you" are: the signed-in user of the server, else the configured forecaster."""
        return self.config.forecaster if self.client is None else self.client.name

    def writer(self, by: str | None = None) -> str:
        """The name a change is recorded under: ``by``, else :attr:`forecaster`. While no name is
        configured (the login name is used), a note on stderr says which. A server records the
        signed-in user: a ``by`` naming anyone else is refused; without one, the user's name if
        known yet (the stored sign-in; else "": no request is made just to learn it)."""
        if self.client is not None:
            if by and by != self.client.name:
                raise InputError(
                    "--by", by, f"your own name ({self.client.name}): the server records who "
                    "is signed in"
                )  # fmt: skip
            return by or self.client.known_name or ""
        if by:
            return by
        if self.config.configured_forecaster is None:
            click.echo(
                f'Note: recording as "{self.forecaster}" '
                "(set your name: tracker config set forecaster NAME)",
                err=True,
            )
        return self.forecaster

    @cached_property
    def tz(self) -> ZoneInfo:
        return parse_timezone(self.config.get("timezone"))


pass_app = click.make_pass_decorator(App)

# --- arguments and options several commands share ------------------------------------------------

_F = TypeVar("_F", bound=Callable[..., Any])

#: The forecast a command acts on.
forecast_argument = click.argument("forecast_id", metavar="ID")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
#: Which of a forecast's pending proposals (``confirm``, ``dispute``).
proposal_option = click.option(
    "--proposal", "proposal_id", type=int, help="Which proposal, if several wait."
)


def by_option(verb: str) -> Callable[[_F], _F]:
    """``--by NAME``: who ``verb`` (resolves, annuls, ...); by default the user."""
    return click.option("--by", help=f"Who {verb} (default: you).")


def format_option(choices: Sequence[str], default: str, help: str) -> Callable[[_F], _F]:
    """``--format``: which of ``choices`` a command writes."""
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default=default, show_default=True, help=help
    )


def limit_option(default: int, help: str) -> Callable[[_F], _F]:
    """``--limit N``: at most N rows (0: all)."""
    return click.option(
        "--limit",
        type=click.IntRange(min=0, max=2**31 - 1, clamp=True),
        default=default,
        show_default=True,
        help=help,
    )


def output_option(help: str) -> Callable[[_F], _F]:
    """``-o/--output FILE``: the file a command writes (see :func:`tracker.display.output_file`)."""
    return click.option(
        "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help=help
    )


#: What may not reach a terminal raw from an error message: line breaks and other control
#: characters (escape sequences), and the bidirectional controls that reorder what is shown.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _printable(message: str) -> str:
    """``message`` on one line, each unprintable character as its escape (``\\n``, ``\\x1b``):
    click's own usage errors quote the arguments as given."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), message)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {_printable(message)}", err=True)
    sys.exit(code)


def _is_database_error(exc: BaseException) -> bool:
    """A SQLAlchemy or sqlite3 error, recognised without importing SQLAlchemy."""
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        return True
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.SQLAlchemyError)


def _database_message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    hint = ""
    lowered = first.lower()
    if "unable to open database file" in lowered:
        hint = " (is the folder there and writable?)"
    elif "readonly" in lowered or "read-only" in lowered:
        hint = " (the database file or its folder is read-only)"
    elif "full" in lowered:
        hint = " (free some disk space and try again; nothing was written)"
    elif "connection" in lowered and "refused" in lowered:
        hint = " (is PostgreSQL running?)"
    return f"database: {first}{hint}"


#: The task each command module's commands are listed under in ``tracker --help``.
SECTIONS = {
    "tracker.forecast_commands": "Forecasts",
    "tracker.data_commands": "Import and export",
    "tracker.check_commands": "Evidence and resolution",
    "tracker.report_commands": "Reports",
    "tracker.mail_commands": "Email and the daemon",
    "tracker.demo_commands": "Getting started",
    "tracker.admin_commands": "Administration",
    "tracker.user_commands": "The service",
    "tracker.serve_commands": "The service",
    "tracker.login_commands": "The service",
}


#: What click (8.2 and later) raises for a group given no command; click 8.1 printed the help.
_NO_ARGS_IS_HELP: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_NeverRaised", (click.UsageError,), {})
)


class TrackerGroup(click.Group):
    """A click group that prints one ``Error:`` line for every failure and lists commands by task."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Commands in the order of :data:`COMMAND_MODULES` (the order of a user's day), not A-Z."""
        return [
            name
            for names in COMMAND_MODULES.values()
            for name in names
            if self.get_command(ctx, name)
        ]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Load the module that defines ``cmd_name`` on first use."""
        if cmd_name not in self.commands:
            for module_name, names in COMMAND_MODULES.items():
                if cmd_name in names:
                    _load(module_name)
                    break
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands under the task they serve, in the order of :data:`SECTIONS`."""
        order = list(dict.fromkeys(SECTIONS.values()))
        grouped: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            section = next(
                (SECTIONS[m] for m, names in COMMAND_MODULES.items() if name in names), "Other"
            )
            grouped.setdefault(section, []).append((name, command.get_short_help_str(limit=70)))
        for section in sorted(grouped, key=lambda s: order.index(s) if s in order else len(order)):
            with formatter.section(section):
                formatter.write_dl(grouped[section])

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except _NO_ARGS_IS_HELP as exc:
            # A group typed without a command (``tracker``, ``tracker db``): its help, as help.
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            sys.exit(0)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except ImportProblems as exc:
            click.echo(f"Error: {exc.headline}", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(exc.exit_code)
        except TrackerError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as exc:
            _fail(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}", 1)
        except Exception as exc:  # the last guard: no traceback reaches a user
            if _is_database_error(exc):
                _fail(_database_message(exc), 1)
            if os.environ.get("TRACKER_DEBUG"):
                raise
            _fail(
                f"internal error: {type(exc).__name__}: {exc} (set TRACKER_DEBUG=1 for details)", 1
            )
        if isinstance(result, int) and result:
            sys.exit(result)
        sys.exit(0)


@click.group(cls=TrackerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db",
    metavar="URL",
    help="Database URL or SQLite path (default: $TRACKER_DB, config, user data dir).",
)
@click.option(
    "--server",
    metavar="URL",
    help="Work through the tracker service at URL (default: server.url, or `tracker login`'s).",
)
@click.version_option(__version__, prog_name="tracker")
@click.pass_context
def main(ctx: click.Context, db: str | None, server: str | None) -> None:
    """Register forecasts, check the evidence, get reminded, and learn how calibrated you are."""
    ctx.obj = App(db, server)


def _load(module_name: str) -> None:
    """Import a command module and register its commands (a module not installed is skipped)."""
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return
    for command in module.COMMANDS:
        main.add_command(command)
