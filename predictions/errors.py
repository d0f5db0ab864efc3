"""Domain errors of the forecast tracker, in one place.

The CLI turns each into an exit code and one ``Error: ...`` line; no traceback reaches a user.

    TrackerError                 base of every error the tracker raises on purpose
    ├── InputError               bad input: names the field, the value and what was expected (exit 2)
    │   ├── NotFoundError        an id that does not exist (exit 2)
    │   ├── StateError           an action the forecast's state forbids, e.g. resolving twice (exit 2)
    │   └── ImportProblems       a file that imports nothing, with every problem listed (exit 2)
    └── OperationalError         the world failed: database, network, disk, SMTP (exit 1)
        ├── SchemaError          the database is missing or not at the current schema (exit 1)
        └── ChainError           the ledger does not verify; names the first bad entry (exit 1)
"""

from __future__ import annotations

__all__ = [
    "ChainError",
    "ImportProblems",
    "InputError",
    "NotFoundError",
    "OperationalError",
    "SchemaError",
    "StateError",
    "TrackerError",
]


class TrackerError(Exception):
    """Base of every error the tracker raises on purpose."""

    exit_code = 1


class InputError(TrackerError):
    """Bad input. The message names the field, the value given and what was expected."""

    exit_code = 2

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: got {_show(value)}, expected {expected}")


class NotFoundError(InputError):
    """An id (forecast, check, message) that does not exist."""

    def __init__(self, what: str, value: object) -> None:
        super().__init__(what, value, f"the id of an existing {what}")


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
        TrackerError.__init__(
            self,
            f"{source}: {len(problems)} problem(s), nothing imported:\n  " + "\n  ".join(problems),
        )
        self.field = source
        self.value = None
        self.expected = ""


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


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return text
