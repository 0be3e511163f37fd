"""The server processes DevServices runs: free ports, spawning, readiness, state files, stopping."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

LOCALHOST = "127.0.0.1"
_PORT_ATTEMPTS = 3
_T = TypeVar("_T")


class _PortTaken(Exception):
    """The server lost the race for its port; try another."""


@dataclass
class Server:
    """A server process that ServerProcesses is responsible for stopping."""

    name: str
    pid: int
    popen: subprocess.Popen[bytes] | None  # None when adopted from an earlier run
    stop_signal: signal.Signals
    state_file: Path


class ServerProcesses:
    """The servers one DevServices started or adopted, and how to start and stop them."""

    def __init__(self, state_dir: Path, *, startup_timeout: float, stop_timeout: float) -> None:
        self.state_dir = state_dir
        self.startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._servers: list[Server] = []

    def launch_until_ready(
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
        deadline = time.monotonic() + self.startup_timeout
        while True:
            result = ready(port)
            if result is not None:
                return result
            if popen.poll() is not None:
                tail = log_tail(log_path, offset)
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
                    f"{self.startup_timeout:g} s; see {log_path}:\n" + log_tail(log_path, offset)
                )
            time.sleep(0.1)

    def adopt(self, server: Server, port: int) -> None:
        self._servers.append(server)
        _write_state(server.state_file, server.pid, port)

    def share_or_adopt(
        self, name: str, pid: int, stop_signal: signal.Signals, state_file: Path, port: int
    ) -> str:
        """Decide who stops a server found running on our data dir."""
        state = read_state(state_file)
        owner = state[2] if state is not None and state[0] == pid else None
        if owner is None:
            # Not started through us (e.g. by hand with pg_ctl): use it, leave it running.
            return f"using embedded server already running (pid {pid}, left running)"
        if owner == os.getpid():
            return "sharing embedded server started by this process"
        if pid_alive(owner):
            # Another `make run`/`make test` started it and will stop it.
            return f"sharing embedded server of process {owner}"
        # Its starter is gone (killed, crashed): take it over so it gets stopped.
        self.adopt(Server(name, pid, None, stop_signal, state_file), port)
        return "adopted embedded server left running by an earlier run"

    def stop_all(self) -> None:
        """Stop the servers this instance started or adopted, in reverse order."""
        servers, self._servers = self._servers, []
        errors: list[str] = []
        for server in reversed(servers):
            try:
                self._stop_server(server)
            except OSError as exc:
                errors.append(f"{server.name} (pid {server.pid}): {exc}")
        if errors:
            raise RuntimeError("could not stop " + "; ".join(errors))

    def _stop_server(self, server: Server) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, server.stop_signal)
        if not _wait_exit(server, self._stop_timeout):
            # It did not shut down in time: kill its whole group (postgres backends too).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            _wait_exit(server, 5.0)
        state = read_state(server.state_file)
        if state is not None and state[0] == server.pid:
            server.state_file.unlink()

    @contextlib.contextmanager
    def state_lock(self) -> Iterator[None]:
        """Serialise starts on one state dir, so two runs never init or start it twice."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "devservices.lock", "a") as lock:
            deadline = time.monotonic() + 2 * self.startup_timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"another process keeps {self.state_dir} locked"
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


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


def pid_alive(pid: int) -> bool:
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


def _wait_exit(server: Server, timeout: float) -> bool:
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
        return not pid_alive(pid)
    return reaped == pid


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


@dataclass(frozen=True)
class ServerSearch:
    """How DevServices looks for a server: its variable, the default port, binaries to start."""

    processes: ServerProcesses
    env: Mapping[str, str]
    # Try the default port (5432, 6379) before starting an embedded server.
    probe_defaults: bool
    # Start the system's binaries rather than a wheel's when both exist.
    prefer_system: bool


def spawn(
    command: list[str], log_path: Path, cwd: Path, os_user: pwd.struct_passwd | None
) -> subprocess.Popen[bytes]:
    with log_section(log_path, Path(command[0]).name) as (log, _):
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            # Own session and process group: a Ctrl-C in the parent's terminal must not reach
            # the servers before we stop them in order.
            start_new_session=True,
            **user_kwargs(os_user),
        )


def user_kwargs(os_user: pwd.struct_passwd | None) -> dict[str, Any]:
    if os_user is None:
        return {}
    return {"user": os_user.pw_uid, "group": os_user.pw_gid, "extra_groups": []}


@contextlib.contextmanager
def log_section(log_path: Path, title: str) -> Iterator[tuple[Any, int]]:
    with open(log_path, "ab") as log:
        offset = log.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n==== {stamp} lvd devservices: {title} ====\n".encode())
        log.flush()
        yield log, offset


def log_tail(log_path: Path, offset: int, lines: int = 20) -> str:
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def read_state(path: Path) -> tuple[int, int, int] | None:
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


def display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
