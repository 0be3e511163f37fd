"""lvd/env_file.py: a .env file fills in settings the environment lacks; the environment wins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lvd.env_file import EnvFileMissing, load_env_file

NAMES = ("LVD_TEST_FROM_FILE", "LVD_TEST_BOTH", "LVD_ENV_FILE")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No test variable set, the working directory a fresh folder; os.environ restored after."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    saved = dict(os.environ)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def test_a_dotenv_in_the_working_directory_fills_in_what_the_environment_lacks(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / ".env").write_text(
        "# comment\nLVD_TEST_FROM_FILE=from-file\nLVD_TEST_BOTH='from file'\n", encoding="utf-8"
    )
    monkeypatch.setenv("LVD_TEST_BOTH", "from-environment")

    assert load_env_file() == clean_environment / ".env"

    assert os.environ["LVD_TEST_FROM_FILE"] == "from-file"
    assert os.environ["LVD_TEST_BOTH"] == "from-environment"


def test_no_dotenv_is_fine_and_changes_nothing(clean_environment: Path) -> None:
    before = dict(os.environ)
    assert load_env_file() is None
    assert dict(os.environ) == before


def test_lvd_env_file_names_another_file(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = clean_environment / "conf" / "lvd.env"
    elsewhere.parent.mkdir()
    elsewhere.write_text("LVD_TEST_FROM_FILE=named\n", encoding="utf-8")
    (clean_environment / ".env").write_text("LVD_TEST_FROM_FILE=default\n", encoding="utf-8")
    monkeypatch.setenv("LVD_ENV_FILE", str(elsewhere))

    assert load_env_file() == elsewhere
    assert os.environ["LVD_TEST_FROM_FILE"] == "named"


def test_a_named_file_that_is_missing_stops_the_command(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LVD_ENV_FILE", str(clean_environment / "missing.env"))
    with pytest.raises(EnvFileMissing, match=r"missing\.env does not exist"):
        load_env_file()
