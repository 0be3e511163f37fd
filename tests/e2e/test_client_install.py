"""The client-only distribution (clients/python): built, installed alone, its plugin run.

The wheel is built from a copy of clients/python and installed with `--no-deps` into a fresh
venv outside the checkout, beside httpx and pytest only; a small suite then runs there with
the plugin against the live server.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT_ROOT, LiveServer

from .helpers import unique
from .test_install import NOT_SOURCE, _bare_env, _run, wheel  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e

# What a team's test environment gets besides the wheel: the client's one dependency, and
# pytest, which is what imports the plugin.
BESIDE = ("httpx", "pytest")
SERVER_SIDE = ("lvd", "web", "workers", "quart", "hypercorn", "asyncpg", "dramatiq", "redis")
WHERE = """
import importlib.util, json, lvd_client, lvd_client.plugin
print(json.dumps({"client": lvd_client.__file__,
                  "found": [m for m in %r if importlib.util.find_spec(m)]}))
"""
SUITE = """
def test_checkout(lvd):
    lvd.send({"eventName": "installed_alone"})
    [event] = lvd.assert_seen("installed_alone")
    assert event.session == lvd.session == lvd.session_header["X-LVD-Session"]
"""


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("client-wheel")
    source = root / "source"
    # The copy follows clients/python/LICENSE, a link to the repository's.
    shutil.copytree(PROJECT_ROOT / "clients" / "python", source, ignore=NOT_SOURCE)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", root / "dist", source],
        cwd=root,
        env=_bare_env(),
    )
    [built] = (root / "dist").glob("lvd_client-*.whl")
    return built


@pytest.fixture(scope="module")
def client_venv(client_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("client-venv")
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    _run([sys.executable, "-m", "venv", venv], cwd=venv, env=_bare_env())
    _run([*pip, "--no-deps", client_wheel], cwd=venv, env=_bare_env())
    _run([*pip, *BESIDE], cwd=venv, env=_bare_env())
    return venv


def test_client_wheel_holds_the_client_typed_with_its_plugin_and_needs_only_httpx(
    client_wheel: Path,
) -> None:
    wheel = zipfile.ZipFile(client_wheel)
    names = set(wheel.namelist())
    [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]

    assert {"lvd_client/py.typed", "lvd_client/plugin.py", "lvd_client/aio.py"} <= names
    assert {n.split("/")[0] for n in names if not n.startswith("lvd_client-")} == {"lvd_client"}
    requires = [
        line for line in wheel.read(metadata).decode().splitlines() if line.startswith("Requires")
    ]
    assert requires == ["Requires-Python: >=3.11", "Requires-Dist: httpx>=0.27"]
    assert "[pytest11]\nlvd = lvd_client.plugin" in wheel.read(entry_points).decode()


def test_client_installed_alone_runs_a_suite_with_its_plugin(
    client_venv: Path, live_server: LiveServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=live_server.base_url) as http:
        app_id = http.post("/api/apps", json={"id": unique("alone")}).json()["id"]
    (tmp_path / "test_alone.py").write_text(SUITE, encoding="utf-8")
    env = _bare_env()

    where = json.loads(
        _run([client_venv / "bin" / "python", "-c", WHERE % (SERVER_SIDE,)], cwd=tmp_path, env=env)
    )
    ran = _run(
        [client_venv / "bin" / "pytest", "-p", "no:cacheprovider", "-rA", "test_alone.py"],
        cwd=tmp_path,
        env={**env, "LVD_URL": live_server.base_url, "LVD_APP": app_id},
    )

    assert where["client"].startswith(str(client_venv)), "the installed client, not the checkout"
    assert where["found"] == [], "none of the server's packages is installed"
    assert f"lvd: {live_server.base_url} app {app_id}" in ran
    assert "1 passed" in ran


def test_server_wheel_ships_the_same_client_typed_with_its_plugin(wheel: Path) -> None:
    server = zipfile.ZipFile(wheel)
    names = set(server.namelist())
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    client = {
        path.relative_to(PROJECT_ROOT / "clients" / "python").as_posix()
        for path in (PROJECT_ROOT / "clients" / "python" / "lvd_client").iterdir()
        if path.suffix in (".py", ".typed")
    }

    assert client <= names
    assert {"lvd/client.py", "lvd/py.typed"} <= names
    assert "[pytest11]\nlvd = lvd_client.plugin" in server.read(entry_points).decode()
