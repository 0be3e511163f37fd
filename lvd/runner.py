"""`lvd run`: find or start the services, migrate, then run the Procfile's web and worker."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import honcho.manager
from honcho.environ import parse_procfile
from honcho.manager import Manager

from lvd.devservices.endpoints import redact_url
from lvd.devservices.services import DevServices

# The release step runs here, before the long-running processes, not beside them.
LONG_RUNNING = ("web", "worker")
# Web and worker stop within 10 s of SIGTERM (open requests, in-flight messages); honcho
# would SIGKILL them after 5. Its module setting is the only way to say so.
STOP_WAIT_SECONDS = 12


def run_everything(state_dir: Path) -> int:
    from web.assets import PROCFILE
    from web.core.db import prepare_database

    procfile = parse_procfile(PROCFILE.read_text(encoding="utf-8"))
    with DevServices(state_dir.resolve()) as services:
        endpoints = services.start()
        env = {
            **os.environ,
            "DATABASE_URL": endpoints.database_url,
            "REDIS_URL": endpoints.redis_url,
            "HOST": os.environ.get("HOST", "127.0.0.1"),
            "PORT": os.environ.get("PORT", "5001"),
            # The console scripts of this environment come first, activated or not.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }
        for line in endpoints.descriptions:
            print(f"lvd: {line}")
        applied = asyncio.run(prepare_database(endpoints.database_url))
        database = redact_url(endpoints.database_url)
        print(f"lvd: database {database} (migrations applied: {len(applied)})")
        print(f"lvd: broker   {redact_url(endpoints.redis_url)}")
        print(f"lvd: dashboard http://{env['HOST']}:{env['PORT']}/  (Ctrl-C stops everything)")

        honcho.manager.KILL_WAIT = STOP_WAIT_SECONDS
        manager = Manager()
        for name in LONG_RUNNING:
            manager.add_process(name, procfile.processes[name], env=env, cwd=str(Path.cwd()))
        manager.loop()
        return manager.returncode or 0
