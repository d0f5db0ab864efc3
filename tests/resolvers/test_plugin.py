"""A third-party resolver kind, installed the way a package installs one: the plugin guide's (docs/plugins.md)
example, written to a folder with its ``.dist-info`` entry points, found through
``tracker.resolvers`` in this process and in a fresh ``tracker`` process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from predictions import store
from predictions.checks import add_checks, proposals_of
from predictions.clock import now
from predictions.db import read_session, write_session
from predictions.errors import InputError
from resolvers import kinds, load_errors, registry, validate_check
from resolvers.http import HttpSettings
from resolvers.sweep import SweepSettings, sweep
from tests.resolvers.loopback import Loopback

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def _plugin_example() -> tuple[str, dict[str, str]]:
    section = GUIDE
    code = re.search(r"```python\n(.*?)```", section, re.S)
    toml = re.search(r"```toml\n(.*?)```", section, re.S)
    assert code and toml, "docs/plugins.md lost its python or toml block"
    entry_points = tomllib.loads(toml.group(1))["project"]["entry-points"]["tracker.resolvers"]
    return code.group(1), entry_points


def _install(site: Path, dist: str, module: str, source: str, entry_points: dict[str, str]) -> None:
    """What ``pip install`` leaves behind: the module and a .dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tracker.resolvers]\n{lines}", encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "site"
    folder.mkdir()
    code, entry_points = _plugin_example()
    _install(folder, "tracker_status_plugin", "tracker_status", code, entry_points)
    _install(
        folder,
        "tracker_broken_plugin",
        "tracker_broken",
        "raise ImportError('this plugin needs a library that is not installed')\n",
        {"broken": "tracker_broken:BrokenResolver"},
    )
    monkeypatch.syspath_prepend(str(folder))
    registry.reload()
    yield folder
    registry.reload()
    for name in ("tracker_status", "tracker_broken"):
        sys.modules.pop(name, None)


@pytest.fixture
def web() -> Iterator[Loopback]:
    with Loopback() as server:
        yield server


def test_plugin_kind_from_readme_is_found_through_entry_points(site: Path) -> None:
    found = kinds()
    assert found["status"].__module__ == "tracker_status"
    assert {"page", "json", "feed", "deadline"} <= set(found)
    assert validate_check({"kind": "status", "url": "https://example.org/status"}) == {
        "kind": "status",
        "params": {"url": "https://example.org/status"},
        "mode": "propose",
    }
    with pytest.raises(InputError) as caught:
        validate_check({"kind": "status", "url": "gopher://example.org"})
    assert caught.value.field == "status check url"


def test_plugin_that_fails_to_import_breaks_nothing_else(site: Path) -> None:
    assert "broken" not in kinds() and "status" in kinds()
    assert "not installed" in load_errors()["broken"]
    with pytest.raises(InputError, match="a kind that loads"):
        validate_check({"kind": "broken"})


def test_plugin_kind_runs_in_a_sweep(site: Path, engine: Engine, web: Loopback) -> None:
    web.route("/status", '{"status": "released"}', content_type="application/json")
    with write_session(engine) as session:
        f = store.add_forecast(
            session,
            title="Qwen4 is released",
            criteria="Resolves YES when the status endpoint says released.",
            due=now() + timedelta(days=30),
            author="alice",
        )
        add_checks(session, f, [validate_check({"kind": "status", "url": web.url + "/status"})])
        fid = f.id
    settings = SweepSettings(http=HttpSettings(timeout=5, allowed_networks=("127.0.0.0/8",)))
    report = sweep(engine, settings=settings)
    assert [(o.kind, o.verdict, o.value) for o in report.outcomes] == [
        ("status", "yes", "released")
    ]
    with read_session(engine) as session:
        [proposal] = proposals_of(session, fid)
    assert proposal.verdict == "yes"


def test_plugin_kind_usable_from_a_fresh_tracker_process(
    site: Path, web: Loopback, tracker_env: dict[str, str], tmp_path: Path
) -> None:
    web.route("/status", '{"status": "released"}', content_type="application/json")
    config = tmp_path / "plugin.toml"
    config.write_text("[resolvers]\nallow_private = true\n", encoding="utf-8")
    env = dict(tracker_env, TRACKER_CONFIG=str(config), PYTHONPATH=f"{site}:{ROOT}")

    def tracker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tracker", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = tracker(
        "add", "Qwen4 is released", "-p", "70%", "--due", "+1y", "--criteria", "c",
        "--check", f"status:url={web.url}/status", "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    fid = json.loads(added.stdout)["id"]
    checked = tracker("check", str(fid), "--json")
    assert checked.returncode == 0, checked.stderr
    [outcome] = json.loads(checked.stdout)["outcomes"]
    assert (outcome["kind"], outcome["verdict"], outcome["action"]) == (
        "status",
        "yes",
        "proposed YES",
    )
