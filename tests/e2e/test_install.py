"""Installed as a team installs it: the built wheel in a fresh venv, and `make run` as root.

The wheel test builds from a copy of the checkout, installs into a venv outside it, and runs
`lvd run` from a folder of its own whose `.env` names the machine's services. The root test
clones the repository into a fresh `mktemp -d` (mode 700) and runs `make run` there where no
PostgreSQL or Redis answers (a network namespace of its own: the machine's servers stay up
for the rest of the suite, but are out of reach), so it must start the embedded ones.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import (
    PROJECT_ROOT,
    free_port,
    last_json_line,
    skip_or_fail,
    wait_for_http,
)
from web.core.db import drop_database, with_database

pytestmark = pytest.mark.e2e

# A Redis database no other test uses: a worker started here must not take their events.
INSTALL_REDIS_DB = 10
START_SECONDS = 90.0
# What a copy of the checkout leaves out: environments, state, caches, history.
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".lvd", ".git", "node_modules", "__pycache__", "*.egg-info", "build", "artifacts",
    ".pytest_cache", ".mypy_cache", ".ruff_cache",
)  # fmt: skip
SHIPPED = (
    "web/shipped/Procfile",
    "web/shipped/templates/base.html",
    "web/shipped/static/app.css",
    "web/core/migrations/0001_initial.sql",
)


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _bare_env(**extra: str) -> dict[str, str]:
    """A user's shell: no project settings, no PYTHONPATH pointing into the checkout."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PIP_FIND_LINKS", "PIP_CERT")
    return {**{k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}, **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout (a build leaves nothing in the tree)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=NOT_SOURCE)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", root / "dist", source],
        cwd=root,
        env=_bare_env(),
    )
    [built] = (root / "dist").glob("live_validation_dashboard-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with the wheel and its dependencies, nothing else."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", venv], cwd=venv, env=_bare_env())
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], cwd=venv, env=_bare_env())
    return venv


def test_the_wheel_ships_templates_static_files_procfile_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED) <= names
    templates = {n for n in names if n.startswith("web/shipped/templates/")}
    assert len(templates) == len(list((PROJECT_ROOT / "templates").glob("*.html")))
    assert not {n for n in names if n.startswith(("tests/", "bench/", "web/shipped/tests"))}
    assert any(n.endswith("licenses/LICENSE") for n in names)


def test_installed_lvd_answers_version_from_both_entry_points(installed: Path) -> None:
    env = _bare_env()
    outside = installed.parent
    by_script = _run([installed / "bin" / "lvd", "--version"], cwd=outside, env=env)
    by_module = _run([installed / "bin" / "python", "-m", "lvd", "--version"], cwd=outside, env=env)
    assert by_script.startswith("lvd ") and by_script == by_module
    show_web = "import web; print(web.__file__)"
    where = _run([installed / "bin" / "python", "-c", show_web], cwd=outside, env=env)
    assert where.startswith(str(installed)), "the installed package, not the checkout"


@pytest.fixture
def site(
    installed: Path, service_urls: tuple[str, str], tmp_path: Path
) -> Iterator[tuple[Path, str, str]]:
    """A folder with a .env naming a fresh database and Redis db; (folder, database, redis)."""
    server_url, redis_url = service_urls
    database_url = with_database(server_url, f"lvd_wheel_{os.getpid()}")
    redis_db = urlunsplit(urlsplit(redis_url)._replace(path=f"/{INSTALL_REDIS_DB}"))
    folder = tmp_path / "site"
    folder.mkdir()
    yield folder, database_url, redis_db
    asyncio.run(drop_database(database_url))


def test_installed_wheel_runs_the_dashboard_and_stores_an_event(
    installed: Path, site: tuple[Path, str, str]
) -> None:
    folder, database_url, redis_url = site
    port = free_port()
    # Settings from a .env file, as a team keeps them; the environment names none.
    (folder / ".env").write_text(
        f"DATABASE_URL={database_url}\nREDIS_URL={redis_url}\nPORT={port}\n", encoding="utf-8"
    )
    env = _bare_env(PATH=f"{installed / 'bin'}{os.pathsep}{os.environ['PATH']}")
    log_path = folder / "lvd-run.log"
    with log_path.open("wb") as log:
        run = subprocess.Popen(
            [str(installed / "bin" / "lvd"), "run"],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{base}/healthz", run, timeout=START_SECONDS)
        except RuntimeError as exc:
            raise AssertionError(log_path.read_text(errors="replace")[-3000:]) from exc
        created = _run([installed / "bin" / "lvd", "create-app", "wheel-app"], cwd=folder, env=env)
        assert "Write key:" in created
        with httpx.Client(base_url=base, timeout=10) as client:
            home = client.get("/")
            assert home.status_code == 200 and "wheel-app" in home.text
            css = client.get("/static/app.css")
            assert css.status_code == 200 and css.text.strip()
            posted = client.post("/api/logs/wheel-app", json={"event": "wheel_installed"})
            assert posted.status_code == 202, posted.text
            waited = client.get(
                "/api/logs/wheel-app/wait", params={"event_name": "wheel_installed", "timeout": 20}
            )
            assert waited.status_code == 200 and waited.json()["reached"], waited.text
            page = client.get("/apps/wheel-app")
            assert page.status_code == 200 and "wheel_installed" in page.text
    finally:
        os.killpg(run.pid, signal.SIGINT)
        run.wait(30)
    output = log_path.read_text(errors="replace")
    assert "Logging error" not in output
    assert "Web server stopped" in output


# The driver runs inside the network namespace: start `make run`, check, stop it.
MAKE_RUN_DRIVER = """
import json, os, signal, subprocess, sys, time, urllib.request
subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
log = open("make-run.log", "wb")
run = subprocess.Popen(["make", "run"], stdout=log, stderr=subprocess.STDOUT,
                       start_new_session=True)
result = {"dashboard": None, "stored": None}
def get(path, data=None):
    request = urllib.request.Request("http://127.0.0.1:5001" + path, data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.read().decode()
deadline = time.monotonic() + 120
while time.monotonic() < deadline and run.poll() is None:
    try:
        result["dashboard"] = get("/")[0]
        break
    except OSError:
        time.sleep(0.5)
if result["dashboard"] == 200:
    get("/api/apps", json.dumps({"id": "root-app"}).encode())
    get("/api/logs/root-app", json.dumps({"event": "made_as_root"}).encode())
    body = get("/api/logs/root-app/wait?event_name=made_as_root&timeout=20")[1]
    result["stored"] = json.loads(body)["reached"]
os.killpg(run.pid, signal.SIGINT)
run.wait(60)
print(json.dumps(result))
"""


@pytest.fixture
def private_clone() -> Iterator[Path]:
    """A fresh clone of what has landed, in a `mktemp -d` other users cannot enter."""
    folder = Path(tempfile.mkdtemp(prefix="lvd-root-"))
    assert folder.stat().st_mode & 0o777 == 0o700
    clone = folder / "checkout"
    try:
        _run(["git", "clone", "--quiet", PROJECT_ROOT, clone], cwd=folder, env=_bare_env())
        yield clone
    finally:
        # The embedded PostgreSQL kept its files where its OS user could reach them.
        pointer = clone / ".lvd" / "postgres-home"
        if pointer.is_file():
            shutil.rmtree(pointer.read_text(encoding="utf-8").strip(), ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_make_run_as_root_in_a_private_fresh_clone(private_clone: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("runs as root only (CI and containers do)")
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        skip_or_fail("unshare and ip (util-linux, iproute2) are needed to hide the services")
    env = _bare_env()
    # The dependencies come from the package index: install before the network is cut.
    _run(["make", "install"], cwd=private_clone, env=env)
    output = _run(
        ["unshare", "--net", sys.executable, "-c", MAKE_RUN_DRIVER],
        cwd=private_clone,
        env=env,
        timeout=300,
    )
    result = last_json_line(output)
    log = (private_clone / "make-run.log").read_text(errors="replace")
    assert result["dashboard"] == 200, log[-4000:]
    assert result["stored"] is True, log[-4000:]
    assert log.count("started embedded server") == 2, "PostgreSQL and Redis were not hidden"
    # PostgreSQL runs as another user, who cannot enter the clone: its files went elsewhere.
    assert (private_clone / ".lvd" / "postgres-home").is_file(), log[-4000:]
    # make passes on the Ctrl-C and reports the interrupt; lvd itself stopped cleanly.
    assert "Web server stopped" in log, log[-4000:]
