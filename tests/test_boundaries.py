"""The import rules of ARCHITECTURE.md, each checked in a fresh interpreter, and who reads env."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from tests.conftest import last_json_line, run_fresh_python

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGES = ("web", "workers", "lvd")
# Valid URLs nothing has to answer: importing must not connect anywhere.
IMPORT_ENV = {
    "DATABASE_URL": "postgresql://127.0.0.1:9/lvd_boundaries",
    "REDIS_URL": "redis://127.0.0.1:9/0",
}
QUART_SIDE = ("quart", "hypercorn", "werkzeug", "flask")
QUEUE_MODULES = ("contract", "brokers", "depth", "enqueuer")
# Every SQL module, read from the folder so that a new one is checked too.
QUERY_MODULES = tuple(
    f"web.core.queries.{path.stem}"
    for path in sorted((PROJECT_ROOT / "web" / "core" / "queries").glob("*.py"))
    if path.stem != "__init__"
)
CORE_MODULES = (
    "web.core.parsing",
    "web.core.validation",
    "web.core.filters",
    "web.core.queries",
    *QUERY_MODULES,
    "web.core.queue.contract",
    "web.core.queue.brokers",
    "web.core.queue.depth",
    "web.core.queue.enqueuer",
    "web.core.status.keys",
    "web.core.status.records",
    "web.core.status.readers",
    "web.core.status.formatting",
    "web.core.settings",
    "web.core.db",
    "web.core.apps",
    "web.core.plans",
    "web.core.insights",
    "web.core.directory",
    "web.core.errors",
    "web.core.logs",
    "web.core.outage_log",
    "web.core.ingest.registry",
    "web.core.ingest.accept",
    "web.core.snowplow_micro",
)


@functools.cache
def modules_after_import(module: str) -> frozenset[str]:
    """Every module in sys.modules after a fresh interpreter imports `module`."""
    code = f"import json, sys, {module}\nprint(json.dumps(sorted(sys.modules)))"
    return frozenset(last_json_line(run_fresh_python(code, IMPORT_ENV)))


def in_package(modules: frozenset[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages)


def web_outside_core(modules: frozenset[str]) -> list[str]:
    return sorted(
        m
        for m in modules
        if m.startswith("web.") and m != "web.core" and not m.startswith("web.core.")
    )


def test_boundaries_web_app_imports_no_workers() -> None:
    modules = modules_after_import("web.app")
    assert "web.app" in modules and "quart" in modules  # the probe sees what it should
    assert in_package(modules, "workers") == []


@pytest.mark.parametrize(
    "module",
    [
        "workers.actors.events",
        "workers.actors.alerts",
        "workers.actors.maintenance",
        "workers.store",
        "workers.broker",
    ],
)
def test_boundaries_workers_import_no_quart_and_only_web_core(module: str) -> None:
    modules = modules_after_import(module)
    assert module in modules and "web.core.queue.contract" in modules
    assert in_package(modules, *QUART_SIDE) == []
    assert web_outside_core(modules) == []


@pytest.mark.parametrize("module", CORE_MODULES)
def test_boundaries_web_core_imports_no_quart_and_no_workers(module: str) -> None:
    modules = modules_after_import(module)
    assert module in modules
    assert in_package(modules, *QUART_SIDE) == []
    assert in_package(modules, "workers") == []
    assert web_outside_core(modules) == []


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        # The engine does no I/O: no driver, no queue, no event loop.
        ("web.core.validation", ("asyncio", "asyncpg", "redis", "dramatiq")),
        ("web.core.parsing", ("asyncio", "asyncpg", "redis", "dramatiq")),
        ("web.core.settings", ("asyncio", "asyncpg", "redis", "dramatiq")),
        # Which events to show is plain data; its SQL lives in web.core.queries.filtering.
        ("web.core.filters", ("asyncio", "asyncpg", "redis", "dramatiq")),
        # Logging an outage once is plain logging, for threads and event loops alike.
        ("web.core.outage_log", ("asyncio", "asyncpg", "redis", "dramatiq")),
        # Status records and their formatting are plain data: the readers do the I/O.
        ("web.core.status.records", ("asyncio", "asyncpg", "redis", "dramatiq")),
        ("web.core.status.formatting", ("asyncio", "asyncpg", "redis", "dramatiq")),
        # The queue contract names and builds messages; only the brokers module talks to one.
        ("web.core.queue.contract", ("asyncpg", "redis", "pika")),
        # pika is imported only when RabbitMQ is the broker.
        ("web.core.queue.brokers", ("pika",)),
    ],
)
def test_boundaries_pure_core_modules_load_no_io_libraries(
    module: str, absent: tuple[str, ...]
) -> None:
    assert in_package(modules_after_import(module), *absent) == []


def test_boundaries_queries_package_exports_nothing() -> None:
    # Callers import the subject module (queries.events, queries.alerts...), not the package.
    modules = modules_after_import("web.core.queries")
    assert [m for m in modules if m.startswith("web.core.queries.")] == []
    assert len(QUERY_MODULES) > 10  # the probe found the folder's modules


def test_boundaries_importing_the_queue_leaves_dramatiq_global_state_alone() -> None:
    # build_broker is the one place that sets Dramatiq's encoder; importing sets nothing.
    modules = ", ".join(f"web.core.queue.{name}" for name in QUEUE_MODULES)
    code = (
        f"import dramatiq, dramatiq.broker, {modules}\n"
        "print(type(dramatiq.get_encoder()).__name__, dramatiq.broker.global_broker)"
    )
    assert run_fresh_python(code, IMPORT_ENV).split() == ["JSONEncoder", "None"]


# Worker modules other than workers.broker have no global effect: they never build the broker.
WORKER_SUPPORT_MODULES = (
    "workers.scheduler",
    "workers.event_loop",
    "workers.failures",
    "workers.status",
    "workers.dead_letters",
    "workers.database",
    "workers.memory",
)


@pytest.mark.parametrize("module", WORKER_SUPPORT_MODULES)
def test_boundaries_worker_support_modules_build_no_broker(module: str) -> None:
    modules = modules_after_import(module)
    assert module in modules
    assert "workers.broker" not in modules
    assert in_package(modules, *QUART_SIDE) == []
    assert web_outside_core(modules) == []


def test_boundaries_actor_listing_loads_no_actor() -> None:
    # `lvd worker` lists the actor modules for `dramatiq` without importing them or Dramatiq.
    modules = modules_after_import("workers.actors")
    assert in_package(modules, "dramatiq", *QUART_SIDE) == []
    assert sorted(m for m in modules if m.startswith("workers.")) == ["workers.actors"]


@pytest.mark.parametrize("module", ["lvd.cli", "lvd.metrics_dir", "lvd.status_cli"])
def test_boundaries_cli_modules_import_no_quart_and_no_workers(module: str) -> None:
    # Each command imports what it needs when it runs: `lvd worker` never loads Quart.
    modules = modules_after_import(module)
    assert module in modules
    assert in_package(modules, *QUART_SIDE, "workers") == []
    assert web_outside_core(modules) == []


def test_boundaries_web_package_import_is_empty() -> None:
    modules = modules_after_import("web")
    assert in_package(modules, *QUART_SIDE, "workers") == []
    assert (PROJECT_ROOT / "web" / "__init__.py").read_text(encoding="utf-8").strip() == ""


# ---------------------------------------------------------------- who reads the environment

# lvd/ is the command line: it launches processes and hands them the environment. Reading
# these launcher knobs (and passing os.environ on) is its job; app settings are not.
LAUNCHER_FILES = {
    "lvd/cli.py",
    "lvd/runner.py",
    "lvd/devservices/services.py",
    "lvd/env_file.py",  # puts a .env file's settings into the environment, before any reader
}
LAUNCHER_VARIABLES = {
    "WEB_CONCURRENCY",  # lvd web --workers
    "WORKER_PROCESSES",  # lvd worker --processes
    "WORKER_THREADS",  # lvd worker --threads
    "HOST",  # lvd run: passed on to the Procfile's processes
    "PORT",
    "PATH",  # lvd run: this environment's console scripts first
    "LVD_URL",  # lvd plan / lvd loadtest: the server a client command talks to
    "LVD_TOKEN",  # lvd plan / alerts / loadtest: the API token a client command sends
    "LVD_ENV_FILE",  # the .env file to read instead of ./.env
    "PROMETHEUS_MULTIPROC_DIR",  # lvd web: the metrics folder its spawned workers share
}
ENV_FUNCTIONS = {"getenv", "getenvb", "putenv", "unsetenv"}
ENV_MAPPINGS = {"environ", "environb"}


def env_reads(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, what, variable name when literal) for every environment access in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, str | None]] = []
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name in ENV_FUNCTIONS | ENV_MAPPINGS:
                    found.append((node.lineno, f"from os import {alias.name}", None))
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        if node.value.id != "os" or node.attr not in ENV_FUNCTIONS | ENV_MAPPINGS:
            continue
        found.append((node.lineno, f"os.{node.attr}", _variable_name(node, parents)))
    return found


def _variable_name(node: ast.Attribute, parents: dict[ast.AST, ast.AST]) -> str | None:
    parent = parents.get(node)
    if isinstance(parent, ast.Subscript) and isinstance(parent.slice, ast.Constant):
        return str(parent.slice.value)
    if isinstance(parent, ast.Call) and parent.args and isinstance(parent.args[0], ast.Constant):
        return str(parent.args[0].value)  # os.getenv("X")
    if isinstance(parent, ast.Attribute) and parent.attr == "get":
        call = parents.get(parent)
        if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant):
            return str(call.args[0].value)  # os.environ.get("X")
    return None


@functools.cache
def all_env_reads() -> dict[str, list[tuple[int, str, str | None]]]:
    reads = {}
    for package in SOURCE_PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            found = env_reads(path)
            if found:
                reads[path.relative_to(PROJECT_ROOT).as_posix()] = found
    return reads


def test_boundaries_env_detector_finds_settings() -> None:
    reads = all_env_reads()
    assert [what for _, what, _ in reads["web/core/settings.py"]] == ["os.environ"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os\nos.environ['A']\n", [(2, "os.environ", "A")]),
        ("import os\nos.environ.get('B', 'x')\n", [(2, "os.environ", "B")]),
        ("import os\nos.getenv('C')\n", [(2, "os.getenv", "C")]),
        ("from os import environ\n", [(1, "from os import environ", None)]),
        ("from os import getenv as g\n", [(1, "from os import getenv", None)]),
        ("import os\ndict(os.environ)\n", [(2, "os.environ", None)]),
        ("import os\nos.path.join('a')\n", []),
    ],
)
def test_boundaries_env_detector_patterns(
    tmp_path: Path, source: str, expected: list[tuple[int, str, str | None]]
) -> None:
    path = tmp_path / "sample.py"
    path.write_text(source, encoding="utf-8")
    assert env_reads(path) == expected


def test_boundaries_only_settings_reads_env_in_web_and_workers() -> None:
    readers = {path for path in all_env_reads() if not path.startswith("lvd/")}
    assert readers == {"web/core/settings.py"}


def test_boundaries_lvd_reads_env_only_in_launcher_files() -> None:
    readers = {path for path in all_env_reads() if path.startswith("lvd/")}
    assert readers <= LAUNCHER_FILES, readers - LAUNCHER_FILES


def test_boundaries_lvd_reads_only_launcher_variables() -> None:
    named = {
        name
        for path, reads in all_env_reads().items()
        if path.startswith("lvd/")
        for _, _, name in reads
        if name is not None
    }
    assert named <= LAUNCHER_VARIABLES, named - LAUNCHER_VARIABLES
