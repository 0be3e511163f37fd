"""DevServices: finds or starts the PostgreSQL and Redis that `make run` and `make test` need."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from lvd.devservices.endpoints import ServiceEndpoints
from lvd.devservices.postgres import PostgresService
from lvd.devservices.processes import ServerProcesses, ServerSearch
from lvd.devservices.redis import RedisService


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
        environment = dict(os.environ if env is None else env)
        self._processes = ServerProcesses(
            Path(state_dir).absolute(), startup_timeout=startup_timeout, stop_timeout=stop_timeout
        )
        search = ServerSearch(self._processes, environment, probe_defaults, prefer_system_binaries)
        self._postgres = PostgresService(search, database_name)
        self._redis = RedisService(search)
        self._endpoints: ServiceEndpoints | None = None

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
            database_url, database_desc = self._postgres.find_or_start()
            redis_url, redis_desc = self._redis.find_or_start()
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
        self._endpoints = None
        self._processes.stop_all()
