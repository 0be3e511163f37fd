"""Fault injection: every test gets its own PostgreSQL, Redis, web and worker processes.

The servers are throwaway ones that lvd.devservices starts from the system binaries in a
fresh state dir on free ports; only they, and the processes started here, are ever
signalled. The machine's own PostgreSQL (5432) and Redis (6379) are never touched.

Measured figures (recovery times, memory) are printed as lines starting with `FIGURE:`;
run with `pytest -s` to collect them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import redis

from lvd.devservices.processes import pid_alive
from lvd.devservices.services import DevServices
from lvd.loadtest import Report, format_report, send_load, verify_storage
from tests.conftest import PROJECT_ROOT, free_port
from web.core.apps import add_app
from web.core.db import prepare_database

APP_ID = "fault-app"
VENV_BIN = Path(sys.executable).parent
LVD = str(VENV_BIN / "lvd")
# Dramatiq's Redis keys for the events queue: the list of ids waiting, the hash of message
# bodies (a message stays there until acked), the delay queue (retries) and its own
# dead-letter set.
QUEUE_LIST = "dramatiq:events"
QUEUE_MESSAGES = "dramatiq:events.msgs"
DELAY_MESSAGES = "dramatiq:events.DQ.msgs"
DRAMATIQ_DEAD_MESSAGES = "dramatiq:events.XQ.msgs"
# How long a process may take to become ready, and a server to stop.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
_ROW_EVENT_ID = re.compile(r'data-event-id="([^"]*)"')


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "faults: fault injection with its own PostgreSQL, Redis, web and worker processes",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


def figure(test: str, name: str, value: float | int | str, unit: str = "") -> None:
    """One measured figure, in a form `grep ^FIGURE:` collects."""
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    print(f"FIGURE: {test}: {name} = {shown}{(' ' + unit) if unit else ''}", flush=True)


async def wait_until(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    within: float,
    interval: float = 0.1,
    message: str = "condition",
) -> float:
    """Poll `check` until true; returns the seconds it took. Fails after `within` seconds."""
    started = time.monotonic()
    deadline = started + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}: not reached within {within:g} s")
        await asyncio.sleep(interval)


# --- processes --------------------------------------------------------------------------


@dataclass
class Process:
    """A process started here, in its own process group so the group can be signalled."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: signal.Signals) -> None:
        """Signal the process and its children (dramatiq and hypercorn fork workers)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)
        self.popen.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# How a stop reaches a process: `kill <pid>`; systemd's default stop, supervisord's
# stopasgroup or `kill -TERM -- -<pgid>` (its children get it from the group and again from
# their parent); Ctrl-C in a terminal (SIGINT to the group).
STOPS = {
    "sigterm-to-process": (signal.SIGTERM, False),
    "sigterm-to-group": (signal.SIGTERM, True),
    "sigint-to-group": (signal.SIGINT, True),
}


# Requests per second (one event each) while a process is being stopped.
STOP_LOAD_RATE = 250.0


def deliver_stop(process: Process, how: str) -> None:
    sig, to_group = STOPS[how]
    if to_group:
        process.signal_group(sig)
    else:
        os.kill(process.pid, sig)


def group_gone(process: Process) -> bool:
    """Whether no process of its group is left (hypercorn's and Dramatiq's children too)."""
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return True
    return False


def spawn(name: str, args: list[str], env: dict[str, str], log_path: Path) -> Process:
    # Unlike tests.conftest.start_process, the parent's copy of the log file is closed at
    # once (no ResourceWarning), and the process gets its own group (killpg reaches its
    # forked children too).
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(
            args,
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, popen, log_path)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (hypercorn serves in a child)."""
    total = 0
    for each in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    children_of: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            children_of.setdefault(ppid, []).append(int(entry.name))
    todo = [pid]
    while todo:
        for child in children_of.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# --- the stack --------------------------------------------------------------------------


@dataclass
class Stack:
    """PostgreSQL + Redis of this test alone, the app, and the web and worker processes."""

    state_dir: Path
    log_dir: Path
    services: DevServices
    database_url: str
    redis_url: str
    port: int
    env: dict[str, str]
    pg_data_dir: Path
    pg_bin_dir: Path
    redis_argv: list[str]
    app_id: str = APP_ID
    web: Process | None = None
    workers: list[Process] = field(default_factory=list)
    retired: list[Process] = field(default_factory=list)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    redis_pid_at_start: int = 0
    redis_stopped: bool = False
    _counter: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # processes

    def _log_path(self, name: str) -> Path:
        self._counter += 1
        return self.log_dir / f"{self._counter:02d}-{name}.log"

    async def start_web(self) -> Process:
        """`lvd web` on this stack's port; returns once /healthz answers."""
        self.web = spawn("web", [LVD, "web"], self.env, self._log_path("web"))
        await wait_for_http(f"{self.base_url}/healthz", self.web)
        return self.web

    async def start_worker(self) -> Process:
        """`lvd worker --threads 4`; returns once its worker process consumes."""
        process = spawn(
            "worker", [LVD, "worker", "--threads", "4"], self.env, self._log_path("worker")
        )
        self.workers.append(process)
        await wait_for_worker(process)
        return process

    def retire(self, process: Process) -> None:
        """Forget a process that was stopped or killed (its log stays for the report)."""
        if process in self.workers:
            self.workers.remove(process)
        if process is self.web:
            self.web = None
        self.retired.append(process)

    def logs(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    # PostgreSQL

    def postmaster_pid(self) -> int | None:
        try:
            pid = int((self.pg_data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def pg_ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run pg_ctl on this test's cluster, as the user that owns its data dir."""
        log_path = self.state_dir / "pg_ctl.log"
        log_path.touch()
        owner = self.pg_data_dir.stat().st_uid
        user_kwargs: dict[str, Any] = {}
        if os.geteuid() == 0 and owner != 0:
            entry = pwd.getpwuid(owner)
            os.chown(log_path, entry.pw_uid, entry.pw_gid)
            user_kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [
                str(self.pg_bin_dir / "pg_ctl"),
                "-D",
                str(self.pg_data_dir),
                "-l",
                str(log_path),
                "-w",
                "-t",
                str(int(timeout)),
                *args,
            ],
            cwd=self.state_dir,
            capture_output=True,
            text=True,
            timeout=timeout + 10,
            check=False,
            **user_kwargs,
        )
        assert result.returncode == 0, (
            f"pg_ctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
        return str(result.stdout)

    def pg_start(self) -> None:
        socket_dir = self.state_dir / "postgres-socket"
        options = f"-h 127.0.0.1 -p {self.pg_port} -k {socket_dir}"
        self.pg_ctl("start", "-o", options)

    @property
    def pg_port(self) -> int:
        port = self.database_url.rsplit(":", 1)[1].split("/")[0]
        return int(port)

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url, timeout=10)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        conn = await self.connect()
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await self.connect()
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()

    async def dead_letters(self) -> list[asyncpg.Record]:
        return await self.fetch(
            "SELECT message_id, app_id, event_id, event, reason, attempts FROM dead_letters"
            " ORDER BY id"
        )

    # Redis

    def redis_client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis.from_url(
            self.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def redis_info(self, section: str) -> dict[str, Any]:
        with self.redis_client() as client:
            info: dict[str, Any] = client.info(section)
            return info

    def redis_pid(self) -> int:
        return int(self.redis_info("server")["process_id"])

    def queue_state(self) -> dict[str, int]:
        with self.redis_client() as client:
            return {
                "waiting": int(client.llen(QUEUE_LIST)),
                "unacked": int(client.hlen(QUEUE_MESSAGES)),
                "delayed": int(client.hlen(DELAY_MESSAGES)),
                "dramatiq_dead": int(client.hlen(DRAMATIQ_DEAD_MESSAGES)),
            }

    def message_ids(self) -> set[bytes]:
        """Ids of the messages Redis holds for the events queue (waiting or unacked)."""
        with self.redis_client() as client:
            return set(client.hkeys(QUEUE_MESSAGES))

    def describe_queue(self) -> list[str]:
        """Each message body Redis still holds: where it sits, and its first event ids."""
        lines: list[str] = []
        with self.redis_client() as client:
            holders: dict[bytes, str] = {}
            for key in client.scan_iter("dramatiq:__acks__.*"):
                for message_id in client.smembers(key):
                    holders[message_id] = key.decode()
            waiting = set(client.lrange(QUEUE_LIST, 0, -1))
            heartbeats = client.zrange("dramatiq:__heartbeats__", 0, -1, withscores=True)
            for message_id, body in client.hgetall(QUEUE_MESSAGES).items():
                where = holders.get(message_id) or ("waiting" if message_id in waiting else "?")
                decoded = orjson.loads(body)
                events = decoded["args"][0] if decoded["args"] else []
                first = [e.get("event_id") for e in events[:3] if isinstance(e, dict)]
                lines.append(f"{message_id.decode()} in {where}: {len(events)} events {first}")
        lines.append(f"heartbeats: {heartbeats}")
        return lines

    def queued_event_ids(self) -> list[str]:
        """Event ids in every message body Redis holds (waiting, unacked or delayed)."""
        found: list[str] = []
        with self.redis_client() as client:
            bodies = [*client.hvals(QUEUE_MESSAGES), *client.hvals(DELAY_MESSAGES)]
        for body in bodies:
            args = orjson.loads(body)["args"]
            events = args[0] if args and isinstance(args[0], list) else []
            found += [e["event_id"] for e in events if isinstance(e, dict) and "event_id" in e]
        return found

    def held_message_ids(self) -> set[bytes]:
        """Ids of messages that workers fetched and have not acked yet."""
        with self.redis_client() as client:
            held: set[bytes] = set()
            for key in client.scan_iter("dramatiq:__acks__.*.events"):
                held |= client.smembers(key)
            return held

    def held_event_ids(self) -> list[str]:
        """Event ids in messages that workers fetched and have not acked yet."""
        with self.redis_client() as client:
            message_ids: list[bytes] = []
            for key in client.scan_iter("dramatiq:__acks__.*.events"):
                message_ids += client.smembers(key)
            bodies = client.hmget(QUEUE_MESSAGES, message_ids) if message_ids else []
        held: list[str] = []
        for body in bodies:
            if body is not None:
                held += [event["event_id"] for event in orjson.loads(body)["args"][0]]
        return held

    def relaunch_redis(self) -> subprocess.Popen[bytes]:
        """Start Redis again exactly as devservices did: same port, same data dir (its AOF)."""
        with (self.state_dir / "redis.log").open("ab") as log:
            popen = subprocess.Popen(
                self.redis_argv,
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append(popen)
        return popen

    # teardown

    def cleanup(self) -> list[str]:
        problems: list[str] = []
        if self.redis_stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.redis_pid_at_start, signal.SIGCONT)
        # The servers are thrown away: no graceful shutdown needed (tests that want one
        # do it themselves).
        for process in [*self.workers, *([self.web] if self.web else []), *self.retired]:
            try:
                process.kill()
            except OSError as exc:
                problems.append(f"{process.name} {process.pid}: {exc}")
        for popen in self.servers:
            if popen.poll() is None:
                popen.terminate()
                try:
                    popen.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    popen.kill()
            popen.wait()
        try:
            self.services.stop()
        except RuntimeError as exc:
            problems.append(str(exc))
        # A postmaster that pg_ctl (re)started is not devservices' child: stop it here.
        pid = self.postmaster_pid()
        if pid is not None:
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_TIMEOUT
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        return problems


async def wait_for_http(url: str, process: Process, within: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(
                    f"{process.name} exited with {process.popen.returncode}:\n"
                    + process.log()[-3000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {within:g} s:\n" + process.log()[-3000:])


async def wait_for_worker(process: Process, within: float = START_TIMEOUT) -> None:
    """Dramatiq logs this line once the worker process consumes (after our boot hooks)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if "Worker process is ready for action" in process.log():
            return
        if not process.alive():
            raise RuntimeError(
                f"worker exited with {process.popen.returncode}:\n" + process.log()[-3000:]
            )
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the worker was not ready within {within:g} s:\n" + process.log()[-3000:])


def _state_dir() -> Path:
    # Not tmp_path: pytest makes its parents 0700, and as root PostgreSQL runs as the
    # `postgres` user, which must reach the data dir.
    path = Path(tempfile.mkdtemp(prefix="lvd-faults-", dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture
async def bare_stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """Fresh PostgreSQL and Redis, migrated, with the app created; no web, no worker yet."""
    state_dir = _state_dir()
    services = DevServices(state_dir, probe_defaults=False, env={})
    stack: Stack | None = None
    try:
        endpoints = services.start()
        await prepare_database(endpoints.database_url)
        conn = await asyncpg.connect(endpoints.database_url, timeout=10)
        try:
            await add_app(conn, APP_ID, "Fault injection")
            data_dir = Path(await conn.fetchval("SHOW data_directory"))
        finally:
            await conn.close()
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
        pg_bin_dir = Path(os.readlink(f"/proc/{postmaster}/exe")).parent
        with redis.Redis.from_url(
            endpoints.redis_url, socket_timeout=5, decode_responses=True
        ) as client:
            info = client.info("server")
            redis_pid = int(info["process_id"])
            # Redis rewrites its /proc cmdline, so its launch command is rebuilt from its
            # own configuration (what devservices passed on the command line).
            config = {
                name: client.config_get(name)[name]
                for name in (
                    "port",
                    "bind",
                    "dir",
                    "appendonly",
                    "appendfsync",
                    "aof-use-rdb-preamble",
                    "save",
                )
            }
        redis_argv = [str(info["executable"])]
        for name, value in config.items():
            redis_argv += [f"--{name}", value]
        redis_argv += ["--daemonize", "no", "--logfile", ""]
        port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            # Only this test's servers and the product's defaults.
            if not key.startswith(("LVD_", "dramatiq_", "WORKER_", "WEB_", "PROMETHEUS_"))
            and key not in ("BROKER_URL", "REDIS_URL", "DATABASE_URL")
        }
        env.update(
            DATABASE_URL=endpoints.database_url,
            REDIS_URL=endpoints.redis_url,
            HOST="127.0.0.1",
            PORT=str(port),
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
        )
        log_dir = tmp_path / "logs"
        log_dir.mkdir()
        stack = Stack(
            state_dir=state_dir,
            log_dir=log_dir,
            services=services,
            database_url=endpoints.database_url,
            redis_url=endpoints.redis_url,
            port=port,
            env=env,
            pg_data_dir=data_dir,
            pg_bin_dir=pg_bin_dir,
            redis_argv=redis_argv,
        )
        stack.redis_pid_at_start = redis_pid
        yield stack
    finally:
        problems: list[str] = []
        if stack is not None:
            problems = stack.cleanup()
        else:
            services.stop()
        if stack is not None and request.node.stash.get(_CALL_FAILED, False):
            print(f"Process logs of {request.node.name}:\n{stack.logs()}")
            for name in ("postgres.log", "redis.log", "pg_ctl.log"):
                path = state_dir / name
                if path.exists():
                    print(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}")
        shutil.rmtree(state_dir, ignore_errors=True)
        assert not problems, problems


@pytest.fixture
async def stack(bare_stack: Stack) -> Stack:
    """The fresh stack with its web process and one worker running."""
    await asyncio.gather(bare_stack.start_web(), bare_stack.start_worker())
    return bare_stack


# --- the load and the oracle ------------------------------------------------------------


def start_load(stack: Stack, rate: float, seconds: float, name: str) -> asyncio.Task[Report]:
    """`lvd loadtest` against the stack in the background, one event a request, under a
    fresh run id (`name-xxxxxxxx`); its report is the task's result."""
    return asyncio.create_task(
        send_load(
            stack.base_url,
            APP_ID,
            rate,
            seconds,
            run_id=f"{name}-{uuid.uuid4().hex[:8]}",
            progress=False,
        )
    )


async def check_oracle(stack: Stack, report: Report, *, test: str, drain_limit: float) -> None:
    """Every 202'd id stored exactly once, nothing refused stored; prints the load report."""
    await verify_storage(report, stack.database_url, stack.app_id, drain_limit=drain_limit)
    summary = report.summary()
    print(f"{test}: load report\n{format_report(summary)}", flush=True)
    assert summary["accepted_events"] > 0, f"nothing was accepted: {summary}\n{stack.logs()}"
    assert (report.lost[:5], report.doubled[:5], report.stored_but_refused[:5]) == ([], [], []), (
        f"{len(report.lost)} lost, {len(report.doubled)} doubled,"
        f" {len(report.stored_but_refused)} stored though refused: {summary}\n"
        + "\n".join(stack.describe_queue())
    )


async def assert_no_dead_letters(stack: Stack) -> None:
    parked = await stack.dead_letters()
    assert parked == [], [dict(row) for row in parked]
    assert stack.queue_state()["dramatiq_dead"] == 0


async def queue_drains(stack: Stack, within: float) -> float | None:
    """Seconds until Redis holds no message of the events queue; None if it never does."""

    def empty() -> bool:
        state = stack.queue_state()
        return state["waiting"] == state["unacked"] == state["delayed"] == 0

    try:
        return await wait_until(empty, within=within, message="the Redis queue empty")
    except AssertionError:
        return None


async def assert_queue_drained(stack: Stack, within: float = 10.0) -> float:
    """Every message was acked in the end: none is stranded in a worker's ack set."""
    drained = await queue_drains(stack, within)
    assert drained is not None, "messages left in Redis:\n" + "\n".join(stack.describe_queue())
    return drained


def assert_all_alive(stack: Stack) -> None:
    """The web process and every worker came through the fault."""
    assert stack.web is not None
    assert stack.web.alive(), stack.logs()
    assert stack.workers
    assert all(worker.alive() for worker in stack.workers), stack.logs()


def statuses(report: Report) -> dict[int, int]:
    counts: dict[int, int] = {}
    for outcome in report.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


# --- SSE --------------------------------------------------------------------------------


@dataclass
class SseMessage:
    id: int | None
    event: str | None
    data: str

    @property
    def event_id(self) -> str | None:
        """The app's event id in a row fragment (the row's data-event-id attribute)."""
        match = _ROW_EVENT_ID.search(self.data)
        return match.group(1) if match else None


@dataclass
class SseClient:
    """A minimal EventSource: reads /apps/<id>/stream and reconnects with Last-Event-ID."""

    base_url: str
    path: str
    messages: list[SseMessage] = field(default_factory=list)
    connects: int = 0
    ends: int = 0
    last_event_id: int | None = None
    history: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self, *, reconnect: bool = True, max_seconds: float = 120.0) -> None:
        self._task = asyncio.create_task(self._run(reconnect, max_seconds))

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def rows(self) -> list[SseMessage]:
        return [m for m in self.messages if m.event == "event"]

    async def _run(self, reconnect: bool, max_seconds: float) -> None:
        started = time.monotonic()
        deadline = started + max_seconds
        timeout = httpx.Timeout(5.0, read=30.0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                headers = {"Accept": "text/event-stream"}
                if self.last_event_id is not None:
                    headers["Last-Event-ID"] = str(self.last_event_id)
                at = f"{time.monotonic() - started:.2f}s"
                try:
                    async with client.stream("GET", self.path, headers=headers) as response:
                        if response.status_code == 200:
                            self.connects += 1
                            self.connected.set()
                            self.history.append(f"{at} connected after id {self.last_event_id}")
                            await self._read(response)
                            self.ends += 1
                            self.history.append(
                                f"{time.monotonic() - started:.2f}s ended at id"
                                f" {self.last_event_id} ({len(self.messages)} messages)"
                            )
                        else:
                            self.history.append(f"{at} answered {response.status_code}")
                except httpx.HTTPError as exc:
                    self.history.append(f"{at} {type(exc).__name__}")
                self.connected.clear()
                if not reconnect:
                    return
                await asyncio.sleep(0.2)

    async def _read(self, response: httpx.Response) -> None:
        fields: dict[str, list[str]] = {}
        async for line in response.aiter_lines():
            if line == "":
                if "data" in fields or "id" in fields:
                    raw_id = fields.get("id", [""])[-1]
                    event = fields.get("event")
                    message = SseMessage(
                        int(raw_id) if raw_id.isdigit() else None,
                        event[-1] if event else None,
                        "\n".join(fields.get("data", [])),
                    )
                    if message.id is not None:
                        self.last_event_id = message.id
                    self.messages.append(message)
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))


# --- direct queue and storage access ----------------------------------------------------


def message_event(app_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
    """One event as a queue message carries it (web.core.queue.contract.QueuedEvent)."""
    return {
        "app_id": app_id,
        "event_id": event_id,
        "event_name": "fault_event",
        "payload": orjson.dumps({"eventName": "fault_event", "event_id": event_id}).decode(),
        "status": "valid",
        "errors": "[]",
        "plan_version": None,
        "session": None,
        "received_at": datetime.now(UTC).isoformat(),
        **fields,
    }
