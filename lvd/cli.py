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
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from lvd import __version__
from lvd.env_file import load_env_file

if TYPE_CHECKING:  # the commands that use it import it when they run
    import asyncpg

# The server a client command (plan, alerts, loadtest) talks to unless --url or $LVD_URL says.
DEFAULT_URL = "http://127.0.0.1:5001"

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def main(argv: Sequence[str] | None = None) -> None:
    load_env_file()
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        raise SystemExit(2)
    raise SystemExit(args.command(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lvd", description="Live Validation Dashboard")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands")
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def _add_run(commands: Commands) -> None:
    run = commands.add_parser("run", help="find or start PostgreSQL and Redis, then web + worker")
    run.add_argument("--state-dir", type=Path, default=Path(".lvd"), help="embedded servers' data")
    run.set_defaults(command=_run)


def _add_web(commands: Commands) -> None:
    web = commands.add_parser("web", help="serve the web app (hypercorn)")
    web.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    web.set_defaults(command=_web)


def _add_worker(commands: Commands) -> None:
    worker = commands.add_parser("worker", help="check Redis and PostgreSQL, then run a worker")
    worker.add_argument(
        "--processes", type=int, default=int(os.environ.get("WORKER_PROCESSES", "1"))
    )
    worker.add_argument("--threads", type=int, default=int(os.environ.get("WORKER_THREADS", "8")))
    worker.set_defaults(command=_worker)


def _add_status(commands: Commands) -> None:
    status = commands.add_parser(
        "status", help="queue depths, workers, ingest rate: read from Redis and PostgreSQL"
    )
    status.add_argument("--json", action="store_true", help="print the figures as JSON")
    status.set_defaults(command=_status)


def _add_migrate(commands: Commands) -> None:
    migrate = commands.add_parser("migrate", help="create the database if missing and migrate it")
    migrate.set_defaults(command=_migrate)


def _add_plan(commands: Commands) -> None:
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
        _add_server_url(sub)


def _add_loadtest(commands: Commands) -> None:
    load = commands.add_parser("loadtest", help="open-loop load, then check every 202 was stored")
    load.add_argument("--url", default=os.environ.get("LVD_URL", DEFAULT_URL))
    _add_token_option(load, "to look the app's write key up where apps require one")
    load.add_argument("--app", required=True, help="the app id to send to")
    load.add_argument("--rate", required=True, help="requests per second or minute: 100/s, 500/min")
    load.add_argument("--duration", type=float, required=True, help="seconds")
    load.add_argument("--batch", type=int, default=1, help="events per request")
    load.add_argument("--invalid-share", type=float, default=0.0, help="0.1 = every tenth invalid")
    load.add_argument("--connections", type=int, default=64)
    load.add_argument(
        "--warmup", type=float, default=0.0, help="seconds of the same load first, not counted"
    )
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.add_argument("--no-verify", action="store_true", help="skip the database check")
    load.set_defaults(command=_loadtest)


def _add_create_user(commands: Commands) -> None:
    user = commands.add_parser("create-user", help="create a dashboard user (asks for a password)")
    user.add_argument("username")
    user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user.set_defaults(command=_create_user)


def _add_create_app(commands: Commands) -> None:
    create = commands.add_parser("create-app", help="create an app and print its write key")
    create.add_argument("app_id")
    create.add_argument("--name", default=None)
    create.set_defaults(command=_create_app)


def _add_alerts(commands: Commands) -> None:
    alerts = commands.add_parser(
        "alerts", help="an app's alerts: show or change them (over the API)"
    )
    alert_commands = alerts.add_subparsers(title="alerts commands", required=True)
    alerts_show = alert_commands.add_parser("show", help="print the app's alert settings")
    alerts_show.set_defaults(command=_alerts_show)
    alerts_set = alert_commands.add_parser(
        "set", help="change the given settings; the others stay as they are"
    )
    alerts_set.add_argument("--email", action="append", help="a recipient (repeat for more)")
    alerts_set.add_argument("--webhook", help="a Slack-compatible incoming webhook URL")
    alerts_set.add_argument(
        "--invalid-share", type=float, help="alert when this share of events is invalid (0.2)"
    )
    alerts_set.add_argument("--window", type=int, help="seconds the share is measured over")
    alerts_set.add_argument("--min-events", type=int, help="events a window needs to count")
    alerts_set.set_defaults(command=_alerts_set)
    for sub in (alerts_show, alerts_set):
        sub.add_argument("app_id")
        _add_server_url(sub)


def _add_token(commands: Commands) -> None:
    from lvd.token_cli import add_token_commands

    add_token_commands(commands, _in_database)


def _add_scenario(commands: Commands) -> None:
    from lvd.scenario_cli import add_scenario_commands

    add_scenario_commands(commands, _add_server_url)


def _add_purge(commands: Commands) -> None:
    purge = commands.add_parser(
        "purge", help="delete events older than each app's retention now (cron-friendly)"
    )
    purge.add_argument("--batch-size", type=int, default=None, help="rows per transaction")
    purge.set_defaults(command=_purge)


def _add_server_url(parser: argparse.ArgumentParser) -> None:
    """--url of a command that talks to a running server over its API."""
    parser.add_argument(
        "--url",
        default=os.environ.get("LVD_URL", DEFAULT_URL),
        help=f"the server (default $LVD_URL or {DEFAULT_URL})",
    )
    _add_token_option(parser, "where the server requires sign-in")


def _add_token_option(parser: argparse.ArgumentParser, why: str) -> None:
    """--token of a command that calls the API: sent as `Authorization: Bearer`."""
    parser.add_argument(
        "--token",
        default=os.environ.get("LVD_TOKEN") or None,
        help=f"an API token (default $LVD_TOKEN), {why}",
    )


def _api_headers(args: argparse.Namespace) -> dict[str, str]:
    return {"Authorization": f"Bearer {args.token}"} if args.token else {}


def _migrate(args: argparse.Namespace) -> int:
    from lvd.devservices.endpoints import redact_url
    from web.core.db import prepare_database
    from web.core.settings import Settings

    settings = Settings.from_env()
    applied = asyncio.run(prepare_database(settings.database_url))
    shown = ", ".join(f"{v:04d}" for v in applied) or "none (up to date)"
    print(f"Database {redact_url(settings.database_url)}: migrations applied: {shown}")
    return 0


def _create_app(args: argparse.Namespace) -> int:
    from web.core.apps import add_app

    async def create(conn: asyncpg.Connection) -> None:
        app = await add_app(conn, args.app_id, args.name)
        print(f"Created app {app.id} ({app.name})")
        print(f"Write key: {app.write_key}")
        print(f"Send events to: POST /api/logs/{app.id}")

    return _in_database("create-app", create)


def _in_database(command: str, work: Callable[[asyncpg.Connection], Awaitable[None]]) -> int:
    """Run `work` on a connection to the configured database; a refusal is the command's error."""
    import asyncpg

    from web.core.errors import Rejected
    from web.core.settings import Settings

    async def run() -> int:
        conn = await asyncpg.connect(Settings.from_env().database_url, timeout=10)
        try:
            await work(conn)
        except Rejected as exc:
            print(f"lvd {command}: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await conn.close()
        return 0

    return asyncio.run(run())


def _plan_push(args: argparse.Namespace) -> int:
    from lvd.plan_files import push_plan

    return push_plan(args.url, args.app_id, args.file, token=args.token)


def _plan_pull(args: argparse.Namespace) -> int:
    from lvd.plan_files import pull_plan

    return pull_plan(args.url, args.app_id, args.output, args.version, token=args.token)


def _loadtest(args: argparse.Namespace) -> int:
    import orjson

    from lvd import loadtest
    from web.core.settings import Settings

    async def run() -> dict[str, object]:
        headers = await loadtest.write_key_headers(args.url, args.app, args.token)
        report = await loadtest.send_load(
            args.url,
            args.app,
            loadtest.parse_rate(args.rate),
            args.duration,
            batch=args.batch,
            invalid_share=args.invalid_share,
            connections=args.connections,
            progress=not args.json,
            headers=headers,
            warmup=args.warmup,
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

    from web.core.users import create_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("lvd create-user: the passwords differ", file=sys.stderr)
            return 1

    async def create(conn: asyncpg.Connection) -> None:
        user = await create_user(conn, args.username, password)
        print(f"Created user {user.username}")

    return _in_database("create-user", create)


def _status(args: argparse.Namespace) -> int:
    from lvd.status_cli import print_status

    return print_status(as_json=args.json)


def _web(args: argparse.Namespace) -> int:
    from lvd.metrics_dir import prepare_metrics_dir
    from web.core.settings import Settings
    from web.server import serve

    settings = Settings.from_env()
    # Each hypercorn worker writes its metrics there; whichever answers /metrics sums them.
    # Set before the workers are spawned, so that they inherit it.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prepare_metrics_dir(settings.metrics_dir))
    return serve(settings, args.workers)


def _worker(args: argparse.Namespace) -> int:
    from lvd.checks import check_services
    from web.core.settings import Settings
    from workers.actors import actor_modules
    from workers.signals import SHUTDOWN_TIMEOUT_MS

    settings = Settings.from_env()
    problems = check_services(settings)
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
        # Every actor module: Dramatiq consumes the queues of the actors it imports
        # (events; emails for alerts; maintenance for the purge).
        *actor_modules(),
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        # After a stop signal: in-flight messages finish, prefetched ones go back.
        "--worker-shutdown-timeout",
        str(SHUTDOWN_TIMEOUT_MS),
    ]
    if settings.log_json:
        # Dramatiq would set up its own plain lines; the worker logs JSON instead
        # (web.core.logs.configure_worker_logging).
        command.append("--skip-logging")
    os.execvpe(command[0], command, env)


def _run(args: argparse.Namespace) -> int:
    from lvd.runner import run_everything

    return run_everything(args.state_dir)


def _alerts_show(args: argparse.Namespace) -> int:
    import httpx

    try:
        response = httpx.get(
            f"{args.url.rstrip('/')}/api/apps/{args.app_id}/alerts",
            headers=_api_headers(args),
            timeout=30,
        )
    except httpx.HTTPError as exc:
        print(f"lvd alerts: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    print(response.text)
    return 0 if response.status_code == 200 else 1


def _alerts_set(args: argparse.Namespace) -> int:
    import httpx
    import orjson

    url = f"{args.url.rstrip('/')}/api/apps/{args.app_id}/alerts"
    try:
        current = httpx.get(url, headers=_api_headers(args), timeout=30)
        if current.status_code != 200:
            print(f"lvd alerts: {current.text}", file=sys.stderr)
            return 1
        body = current.json()
        wanted = {key: body[key] for key in ("email", "webhook", "new_failures", "invalid_share")}
        if args.email is not None:
            wanted["email"] = {"enabled": True, "recipients": args.email}
        if args.webhook is not None:
            wanted["webhook"] = {"enabled": True, "url": args.webhook}
        share = wanted["invalid_share"]
        if args.invalid_share is not None:
            share.update(enabled=True, threshold=args.invalid_share)
        if args.window is not None:
            share["window_seconds"] = args.window
        if args.min_events is not None:
            share["min_events"] = args.min_events
        response = httpx.put(url, json=wanted, headers=_api_headers(args), timeout=30)
    except httpx.HTTPError as exc:
        print(f"lvd alerts: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"lvd alerts: {response.text}", file=sys.stderr)
        return 1
    print(orjson.dumps(response.json(), option=orjson.OPT_INDENT_2).decode())
    return 0


def _purge(args: argparse.Namespace) -> int:
    from web.core.db import create_pool
    from web.core.settings import Settings
    from workers.retention import purge_expired

    settings = Settings.from_env()

    async def purge() -> int:
        pool = await create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            report = await purge_expired(
                pool,
                default_days=settings.retention_days,
                batch_size=args.batch_size or settings.purge_batch_size,
                pause=settings.purge_pause_ms / 1000,
                budget=float("inf"),
            )
        finally:
            await pool.close()
        print(
            f"Purged {report.deleted} expired events in {report.chunks} chunks,"
            f" {report.seconds:.1f} s ({report.rows_per_second:.0f} rows/s)"
        )
        for app_id, deleted in sorted(report.per_app.items()):
            print(f"  {app_id}: {deleted}")
        partitions = report.partitions
        if partitions.opened:
            print(f"Opened the events partition {partitions.opened}")
        for name in partitions.dropped:
            print(f"Dropped the events partition {name}: its events had all expired")
        return 0

    return asyncio.run(purge())


def executable(name: str) -> str:
    """A console script of this environment, even when its bin folder is not on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


# `lvd --help` lists the commands in this order.
COMMANDS: tuple[Callable[[Commands], None], ...] = (
    _add_run,
    _add_web,
    _add_worker,
    _add_status,
    _add_migrate,
    _add_plan,
    _add_scenario,
    _add_loadtest,
    _add_create_user,
    _add_create_app,
    _add_alerts,
    _add_token,
    _add_purge,
)
