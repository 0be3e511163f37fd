"""The lvd command line: run, web, worker, migrate, create-app.

Each command imports what it needs when it runs, so `lvd worker` never loads Quart and
`lvd web` never loads the worker's actors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        raise SystemExit(2)
    raise SystemExit(args.command(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lvd", description="Live Validation Dashboard")
    commands = parser.add_subparsers(title="commands")

    run = commands.add_parser("run", help="find or start PostgreSQL and Redis, then web + worker")
    run.add_argument("--state-dir", type=Path, default=Path(".lvd"), help="embedded servers' data")
    run.set_defaults(command=_run)

    web = commands.add_parser("web", help="serve the web app (hypercorn)")
    web.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    web.set_defaults(command=_web)

    worker = commands.add_parser("worker", help="check Redis and PostgreSQL, then run a worker")
    worker.add_argument(
        "--processes", type=int, default=int(os.environ.get("WORKER_PROCESSES", "1"))
    )
    worker.add_argument("--threads", type=int, default=int(os.environ.get("WORKER_THREADS", "8")))
    worker.set_defaults(command=_worker)

    migrate = commands.add_parser("migrate", help="create the database if missing and migrate it")
    migrate.set_defaults(command=_migrate)

    plan = commands.add_parser("plan", help="tracking plans as code: push and pull over the API")
    plan_commands = plan.add_subparsers(title="plan commands", required=True)
    push = plan_commands.add_parser("push", help="save a plan file as the app's next version")
    push.add_argument("app_id")
    push.add_argument("file", type=Path)
    push.set_defaults(command=_plan_push)
    pull = plan_commands.add_parser("pull", help="print (or write) the app's current plan")
    pull.add_argument("app_id")
    pull.add_argument("--output", "-o", type=Path, default=None)
    pull.add_argument("--version", type=int, default=None)
    pull.set_defaults(command=_plan_pull)
    for sub in (push, pull):
        sub.add_argument(
            "--url",
            default=os.environ.get("LVD_URL", "http://127.0.0.1:5001"),
            help="the server (default $LVD_URL or http://127.0.0.1:5001)",
        )

    load = commands.add_parser("loadtest", help="open-loop load, then check every 202 was stored")
    load.add_argument("--url", default=os.environ.get("LVD_URL", "http://127.0.0.1:5001"))
    load.add_argument("--app", required=True, help="the app id to send to")
    load.add_argument("--rate", required=True, help="requests per second or minute: 100/s, 500/min")
    load.add_argument("--duration", type=float, required=True, help="seconds")
    load.add_argument("--batch", type=int, default=1, help="events per request")
    load.add_argument("--invalid-share", type=float, default=0.0, help="0.1 = every tenth invalid")
    load.add_argument("--connections", type=int, default=64)
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.add_argument("--no-verify", action="store_true", help="skip the database check")
    load.set_defaults(command=_loadtest)

    user = commands.add_parser("create-user", help="create a dashboard user (asks for a password)")
    user.add_argument("username")
    user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user.set_defaults(command=_create_user)

    create = commands.add_parser("create-app", help="create an app and print its write key")
    create.add_argument("app_id")
    create.add_argument("--name", default=None)
    create.set_defaults(command=_create_app)
    return parser


def _migrate(args: argparse.Namespace) -> int:
    from lvd.devservices import redact_url
    from web.core.db import prepare_database
    from web.core.settings import Settings

    settings = Settings.from_env()
    applied = asyncio.run(prepare_database(settings.database_url))
    shown = ", ".join(f"{v:04d}" for v in applied) or "none (up to date)"
    print(f"Database {redact_url(settings.database_url)}: migrations applied: {shown}")
    return 0


def _create_app(args: argparse.Namespace) -> int:
    import asyncpg

    from web.core.apps import create_app
    from web.core.errors import Rejected
    from web.core.settings import Settings

    async def create() -> int:
        conn = await asyncpg.connect(Settings.from_env().database_url, timeout=10)
        try:
            app = await create_app(conn, args.app_id, args.name)
        except Rejected as exc:
            print(f"lvd create-app: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await conn.close()
        print(f"Created app {app.id} ({app.name})")
        print(f"Write key: {app.write_key}")
        print(f"Send events to: POST /api/logs/{app.id}")
        return 0

    return asyncio.run(create())


def _plan_push(args: argparse.Namespace) -> int:
    from lvd.plan_files import push_plan

    return push_plan(args.url, args.app_id, args.file)


def _plan_pull(args: argparse.Namespace) -> int:
    from lvd.plan_files import pull_plan

    return pull_plan(args.url, args.app_id, args.output, args.version)


def _loadtest(args: argparse.Namespace) -> int:
    import orjson

    from lvd import loadtest
    from web.core.settings import Settings

    async def run() -> dict[str, object]:
        report = await loadtest.send_load(
            args.url,
            args.app,
            loadtest.parse_rate(args.rate),
            args.duration,
            batch=args.batch,
            invalid_share=args.invalid_share,
            connections=args.connections,
            progress=not args.json,
        )
        if not args.no_verify:
            await loadtest.verify_storage(report, Settings.from_env().database_url, args.app)
        return report.summary()

    summary = asyncio.run(run())
    if args.json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        print(loadtest.format_report(summary))
    failed = summary["lost"] or summary["doubled"] or summary["stored_but_refused"]
    return 1 if failed and not args.no_verify else 0


def _create_user(args: argparse.Namespace) -> int:
    import getpass

    import asyncpg

    from web.core.errors import Rejected
    from web.core.settings import Settings
    from web.core.users import create_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("lvd create-user: the passwords differ", file=sys.stderr)
            return 1

    async def create() -> int:
        conn = await asyncpg.connect(Settings.from_env().database_url, timeout=10)
        try:
            user = await create_user(conn, args.username, password)
        except Rejected as exc:
            print(f"lvd create-user: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await conn.close()
        print(f"Created user {user.username}")
        return 0

    return asyncio.run(create())


def _web(args: argparse.Namespace) -> int:
    from web.core.settings import Settings

    settings = Settings.from_env()
    command = [
        executable("hypercorn"),
        "web.app:create_app()",
        "--bind",
        f"{settings.host}:{settings.port}",
        "--worker-class",
        "uvloop",
        "--workers",
        str(args.workers),
    ]
    os.execvp(command[0], command)


def _worker(args: argparse.Namespace) -> int:
    from lvd.checks import check_services
    from web.core.settings import Settings

    problems = check_services(Settings.from_env())
    if problems:
        for problem in problems:
            print(f"lvd worker: {problem}", file=sys.stderr)
        return 1
    env = dict(os.environ)
    # An idle consumer backs off up to worker_timeout: 50 ms keeps the first event after
    # a quiet spell fast. A deeper prefetch keeps the threads busy under load.
    env.setdefault("dramatiq_worker_timeout", "50")
    env.setdefault("dramatiq_queue_prefetch", "64")
    command = [
        executable("dramatiq"),
        "workers.actors",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
    ]
    os.execvpe(command[0], command, env)


def _run(args: argparse.Namespace) -> int:
    from lvd.runner import run_everything

    return run_everything(PROJECT_ROOT, args.state_dir)


def executable(name: str) -> str:
    """A console script of this environment, even when its bin folder is not on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)
