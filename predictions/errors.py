"""Domain errors of the forecast tracker, in one place.

The CLI turns each into an exit code and one ``Error: ...`` line; no traceback reaches a user.

    TrackerError                 base of every error the tracker raises on purpose
    ├── InputError               bad input: names the field, the value and what was expected (exit 2)
    │   ├── NotFoundError        an id that does not exist (exit 2)
    │   ├── StateError           an action the forecast's state forbids, e.g. resolving twice (exit 2)
    │   └── ImportProblems       a file that imports nothing, with every problem listed (exit 2)
    ├── AuthError                not signed in, or a wrong name, password or token (HTTP 401, exit 1)
    │   ├── ThrottledError       too many failed sign-ins: try again later (HTTP 429, exit 1)
    │   └── ForbiddenError       signed in, but the role or ownership does not allow it (HTTP 403)
    ├── OperationalError         the world failed: database, network, disk, SMTP (exit 1)
    │   ├── SchemaError          the database is missing or not at the current schema (exit 1)
    │   ├── ChainError           the ledger does not verify; names the first bad entry (exit 1)
    │   ├── ResolverError        a check could not conclude: temporary or permanent (resolvers)
    │   └── DeliveryError        a message could not be handed over: temporary or not (reports)
    └── Unchanged                not a failure: a source answered 304 to a conditional request

``ResolverError``, ``DeliveryError`` and ``Unchanged`` are raised and handled inside a sweep or a
delivery (the runner records them and backs off); they are defined here so that every error the
tracker raises on purpose has one home and one base. ``resolvers`` and ``reports`` re-export them.
"""

from __future__ import annotations

from predictions.wording import plural

__all__ = [
    "HTTP_STATUS",
    "AuthError",
    "ChainError",
    "DeliveryError",
    "ForbiddenError",
    "ImportProblems",
    "InputError",
    "NotFoundError",
    "OperationalError",
    "ResolverError",
    "SchemaError",
    "StateError",
    "ThrottledError",
    "TrackerError",
    "Unchanged",
]


class TrackerError(Exception):
    """Base of every error the tracker raises on purpose."""

    exit_code = 1


class InputError(TrackerError):
    """Bad input. The message names the field, the value given (``missing`` for None) and what was
    expected."""

    exit_code = 2

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        given = "missing" if value is None else f"got {_show(value)}"
        super().__init__(f"{field}: {given}, expected {expected}")


class NotFoundError(InputError):
    """An id (forecast, check, message), or another key (a user's name), that does not exist."""

    def __init__(self, what: str, value: object, key: str = "id") -> None:
        super().__init__(what, value, f"the {key} of an existing {what}")


class StateError(InputError):
    """An action that the current state forbids (resolve twice, update a resolved forecast)."""

    def __init__(self, message: str) -> None:
        TrackerError.__init__(self, message)
        self.field = ""
        self.value = None
        self.expected = ""


class ImportProblems(InputError):
    """An import refused whole; ``problems`` holds one line per problem (record/line, field, why)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        #: the first line, what the CLI's ``Error:`` and the API's ``detail`` say
        self.headline = f"{source}: {plural(len(problems), 'problem')}, nothing imported"
        TrackerError.__init__(self, "\n  ".join([self.headline, *problems]))
        self.field = source
        self.value = None
        self.expected = ""


class AuthError(TrackerError):
    """Not signed in, or a name, password, session or token that does not sign anyone in."""

    exit_code = 1


class ThrottledError(AuthError):
    """Too many failed sign-ins for a name or an address; ``retry_after``: seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ForbiddenError(AuthError):
    """Signed in, but the user's role (or not owning the forecast) does not allow the action."""


class OperationalError(TrackerError):
    """Something outside the user's input failed: database, network, disk, SMTP."""

    exit_code = 1


class SchemaError(OperationalError):
    """The database is missing, unreachable or not at the schema this version expects."""


class ChainError(OperationalError):
    """The ledger does not verify. ``seq`` is the first entry that does not match."""

    def __init__(self, seq: int | None, message: str) -> None:
        self.seq = seq
        super().__init__(message)


class ResolverError(OperationalError):
    """A check that could not conclude. ``temporary``: trying later may help (timeouts, 5xx, 429);
    permanent: it will not by itself (404, a page that is not a feed). ``retry_after``: seconds the
    source asked us to wait, if it said. Either way the runner records it and backs off; no error
    ever changes a forecast.
    """

    def __init__(self, message: str, temporary: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.temporary = temporary
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class DeliveryError(OperationalError):
    """A message could not be handed over. ``temporary`` ones are retried; ``connection`` ones
    mean the server could not be reached at all, so the rest of the batch waits too."""

    def __init__(self, text: str, *, temporary: bool, connection: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.temporary = temporary
        self.connection = connection


class Unchanged(TrackerError):
    """The source answered 304 Not Modified to a conditional request: nothing new to read.

    Resolver kinds let it propagate; the runner records an "unchanged" evidence row carrying the
    previous verdict.
    """

    def __init__(self, url: str) -> None:
        super().__init__(f"{url} is unchanged (304)")
        self.url = url


#: The HTTP status the service answers each error with, the most specific class first (any other
#: error is 500), and what the CLI, as the service's client, reads back from each status.
HTTP_STATUS: tuple[tuple[type[TrackerError], int], ...] = (
    (NotFoundError, 404),
    (StateError, 409),
    (InputError, 422),
    (ThrottledError, 429),
    (ForbiddenError, 403),
    (AuthError, 401),
    (OperationalError, 503),
)


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return text
