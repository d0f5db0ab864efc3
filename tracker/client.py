"""The CLI as a client of ``tracker serve``: the server it talks to, the stored sign-in, and one
HTTP client whose failures read as the CLI's own.

Which server (first match wins): ``--server URL``; else, unless a database is named (``--db`` or
``$TRACKER_DB``), the ``server.url`` config key, else the URL ``tracker login`` stored. The token:
``$TRACKER_TOKEN`` (scripts), else the one ``tracker login`` stored for that URL.

``tracker login`` keeps the URL, the token and the user's name in ``credentials.json`` beside
``config.toml`` (mode 0600; never in the config file); ``tracker logout`` revokes the token on
the server and deletes the file.

Errors: the server's ``application/problem+json`` ``detail`` is the line the CLI prints after
``Error:``, raised as the domain error of its status (:data:`ERRORS`), so the exit code is the one
the same error has locally (bad input 2, not signed in or not allowed 1). A server that cannot be
reached is an :class:`~predictions.errors.OperationalError` naming the URL (exit 1).

httpx is imported here only, when a server is used: the local fast path never loads it.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from predictions.errors import (
    HTTP_STATUS,
    InputError,
    OperationalError,
    ThrottledError,
    TrackerError,
)
from tracker.config import config_path

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ERRORS",
    "TOKEN_ENV",
    "Client",
    "Credentials",
    "connect",
    "credentials_path",
    "delete_credentials",
    "load_credentials",
    "save_credentials",
]

#: The environment variable a script passes its API token in.
TOKEN_ENV = "TRACKER_TOKEN"

#: The domain error each HTTP status of the API stands for (:data:`~predictions.errors.HTTP_STATUS`
#: read back, and a 400 as bad input); any other failing status is an :class:`OperationalError`.
ERRORS: dict[int, type[TrackerError]] = {400: InputError, **{s: c for c, s in HTTP_STATUS}}

#: Seconds to wait for the server: to connect, and for an answer.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class Credentials:
    """What ``tracker login`` stored: the server, the token (its secret and id) and who it is."""

    url: str
    token: str
    token_id: int | None
    name: str


def credentials_path() -> Path:
    """``credentials.json`` beside the config file."""
    return config_path().parent / "credentials.json"


def load_credentials() -> Credentials | None:
    """The stored sign-in, or None. A file others may read is refused (it holds a secret)."""
    path = credentials_path()
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OperationalError(f"cannot read {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise OperationalError(
            f"{path} holds an API token but others may read it (chmod 600 {path}, or "
            "`tracker login` again)"
        )
    try:
        data = json.loads(text)
        return Credentials(
            str(data["url"]), str(data["token"]), data.get("token_id"), str(data["name"])
        )
    except (ValueError, KeyError, TypeError):
        raise InputError(str(path), "its content", "the file `tracker login` writes") from None


def save_credentials(credentials: Credentials) -> Path:
    """Write the sign-in, readable by the user only (0600), whole or not at all."""
    path = credentials_path()
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            json.dump(asdict(credentials), fh, indent=2)
            fh.write("\n")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OperationalError(f"cannot write {path}: {exc.strerror}") from exc
    return path


def delete_credentials() -> bool:
    """Remove the stored sign-in; whether there was one."""
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise OperationalError(f"cannot delete {credentials_path()}: {exc.strerror}") from exc
    return True


def connect(server: str | None, db: str | None, server_url: str | None) -> Client | None:
    """The client of the server this CLI talks to, or None (it opens a database): ``server``
    (``--server``); else none when a database is named (``db``: ``--db``, or ``$TRACKER_DB``);
    else ``server_url`` (the ``server.url`` key); else the server ``tracker login`` stored."""
    if server is not None and db is not None:
        raise InputError("--server", server, "either --server or --db, not both")
    if server is not None:
        from tracker.config import KEYS

        url = KEYS["server.url"].parse("--server", server)
    elif db is not None or os.environ.get("TRACKER_DB"):
        return None
    else:
        url = server_url
    stored = load_credentials()
    if url is None and stored is not None:
        url = stored.url
    if url is None:
        return None
    mine = stored is not None and stored.url == url.rstrip("/")
    token = os.environ.get(TOKEN_ENV) or (stored.token if mine and stored else None)
    name = stored.name if mine and stored and not os.environ.get(TOKEN_ENV) else None
    return Client(url, token, name=name)


def _error(status: int, detail: str) -> TrackerError:
    """The domain error of an API failure: its class by :data:`ERRORS`, its message the
    server's ``detail`` (the line the CLI prints locally for the same error)."""
    cls = ERRORS.get(status, OperationalError)
    error = cls.__new__(cls)
    TrackerError.__init__(error, detail)
    if isinstance(error, InputError):
        error.field, error.value, error.expected = "", None, ""
    if isinstance(error, ThrottledError):
        error.retry_after = 0
    return error


class Client:
    """One HTTP client of one server, signed in with ``token`` (None: not signed in)."""

    def __init__(self, url: str, token: str | None, *, name: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._name = name
        self._http: httpx.Client | None = None

    @property
    def name(self) -> str:
        """Who the token signs in: the stored sign-in or an answer said (:meth:`learn`); else
        ``GET /api/v1/me`` asks."""
        if self._name is None:
            self._name = str(self.call("GET", "/api/v1/me")["name"])
        return self._name

    @property
    def known_name(self) -> str | None:
        """:attr:`name` if known without asking."""
        return self._name

    def learn(self, record: dict[str, Any]) -> dict[str, Any]:
        """Note who is signed in from a change's answer (a record seen by the user who made the
        change: its ``forecaster``); returns the record."""
        if self._name is None and isinstance(record.get("forecaster"), str):
            self._name = record["forecaster"]
        return record

    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx

            headers = {"accept": "application/json", "user-agent": "tracker-cli"}
            if self.token:
                headers["authorization"] = f"Bearer {self.token}"
            https = self.url.startswith("https://")
            self._http = httpx.Client(
                base_url=self.url,
                headers=headers,
                timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                follow_redirects=False,
                # Over https the certificate is verified; plain http negotiates no TLS at all
                # (no redirect is followed), so no TLS context is built (tens of ms per command).
                verify=https,
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The server's answer to ``method path`` (a success); a failure as the domain error it
        stands for, carrying the problem's body in ``problem``."""
        import httpx

        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client().request(
                method, path, json=json, params=query, data=data, files=files
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.is_success:
            return response
        body = _problem(response)
        error = _error(response.status_code, self._detail(response, body))
        error.problem = body  # type: ignore[attr-defined]
        raise error

    def call(self, method: str, path: str, **options: Any) -> Any:
        """The JSON answer of ``method path`` (None for an empty one); see :meth:`send`."""
        response = self.send(method, path, **options)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise OperationalError(
                f"{self.url}{path} answered something other than JSON (is it a tracker server?)"
            ) from None

    def download(self, path: str, out: TextIO, params: dict[str, Any]) -> dict[str, str]:
        """Write the text answer of ``GET path`` to ``out`` as it arrives (an export); its
        headers. A failure as in :meth:`send`."""
        import httpx

        query = {k: v for k, v in params.items() if v is not None}
        try:
            with self._client().stream("GET", path, params=query) as response:
                if not response.is_success:
                    response.read()
                    body = _problem(response)
                    raise _error(response.status_code, self._detail(response, body))
                for chunk in response.iter_text():
                    out.write(chunk)
                return dict(response.headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def text(self, method: str, path: str, **options: Any) -> str:
        """The text answer of ``method path`` (a report, an export); see :meth:`send`."""
        return self.send(method, path, **options).text

    def _unreachable(self, exc: Exception) -> OperationalError:
        """A request that got no answer (refused, timed out, cut off), naming the server."""
        import httpx

        if isinstance(exc, httpx.ConnectError):
            return OperationalError(
                f"cannot reach the server at {self.url}: {_reason(exc)} (is `tracker serve` "
                "running there?)"
            )
        if isinstance(exc, httpx.TimeoutException):
            return OperationalError(
                f"the server at {self.url} did not answer in time (try again later)"
            )
        return OperationalError(f"talking to {self.url}: {_reason(exc)}")

    def _detail(self, response: httpx.Response, body: dict[str, Any]) -> str:
        """The failure's one line: the problem's ``detail``; for a 401, how to sign in."""
        detail = body.get("detail")
        if not isinstance(detail, str) or not detail:
            detail = f"{self.url} answered {response.status_code} {response.reason_phrase}"
        if response.status_code == 401 and response.request.url.path != "/api/v1/tokens":
            detail += f" (`tracker login {self.url}` signs you in)"
        return detail


def _problem(response: httpx.Response) -> dict[str, Any]:
    """An error response's problem+json body, or nothing."""
    if "json" not in response.headers.get("content-type", ""):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(exc: Exception) -> str:
    """An httpx error's cause in a few words (connection refused, name unknown...)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
