"""A `.env` file's settings, for every lvd command: the environment wins over the file."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

DEFAULT_ENV_FILE = ".env"


class EnvFileMissing(SystemExit):
    """LVD_ENV_FILE names a file that does not exist: stop rather than run with defaults."""


def load_env_file() -> Path | None:
    """Put the file's settings into os.environ where the environment has none; the file read."""
    # LVD_ENV_FILE names another file; a missing default file is fine, a missing named one not.
    named = os.environ.get("LVD_ENV_FILE")
    path = Path(named) if named else Path.cwd() / DEFAULT_ENV_FILE
    if not path.is_file():
        if named:
            raise EnvFileMissing(f"lvd: LVD_ENV_FILE={named} does not exist")
        return None
    # Children (lvd run's web and worker, hypercorn's workers) inherit os.environ, so one
    # read here serves them all.
    load_dotenv(path, override=False)
    return path
