"""The metrics directory `lvd web` prepares for prometheus_client's multiprocess mode."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lvd.devservices.processes import pid_alive

METRICS_DIR_PREFIX = "lvd-metrics-"


def prepare_metrics_dir(configured: str | None) -> Path:
    """prometheus_client's multiprocess directory for a web server, without an earlier run's files.

    Counters summed from files a previous run left would start from its totals, so the
    directory is emptied at start, as prometheus_client requires. A configured directory
    (PROMETHEUS_MULTIPROC_DIR) loses its *.db files; otherwise each server gets its own
    temporary directory named after this process id (which the exec'd hypercorn keeps), and
    directories of servers no longer running are removed.
    """
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path
    root = Path(tempfile.gettempdir())
    for old in root.glob(f"{METRICS_DIR_PREFIX}*"):
        pid = old.name.removeprefix(METRICS_DIR_PREFIX)
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    path = root / f"{METRICS_DIR_PREFIX}{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path
