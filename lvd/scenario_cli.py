"""`lvd scenario push/pull`: scenarios kept as JSON files in git, sent to a server over its API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias
from urllib.parse import quote

from lvd.api_files import Unreadable, call, print_refusal, read_document, write_document

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_scenario_commands(
    commands: Commands, add_server_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """`lvd scenario push <file> --app A` and `lvd scenario pull <name> --app A [-o file]`;
    add_server_options adds --url and --token as every API command has them."""
    scenario = commands.add_parser("scenario", help="scenarios as code: push and pull over the API")
    scenario_commands = scenario.add_subparsers(title="scenario commands", required=True)
    push = scenario_commands.add_parser("push", help="save a scenario file (its name inside)")
    push.add_argument("file", type=Path)
    push.set_defaults(command=_push)
    pull = scenario_commands.add_parser("pull", help="print (or write) a scenario as a file")
    pull.add_argument("name")
    pull.add_argument("--output", "-o", type=Path, default=None)
    pull.set_defaults(command=_pull)
    for sub in (push, pull):
        sub.add_argument("--app", dest="app_id", required=True, help="the app's id")
        add_server_options(sub)


def _push(args: argparse.Namespace) -> int:
    return push_scenario(args.url, args.app_id, args.file, token=args.token)


def _pull(args: argparse.Namespace) -> int:
    return pull_scenario(args.url, args.app_id, args.name, args.output, token=args.token)


def push_scenario(url: str, app_id: str, path: Path, *, token: str | None = None) -> int:
    """Save the file as the app's scenario of the name it holds (else the file's stem)."""
    command = "lvd scenario push"
    try:
        document = read_document(command, path)
    except Unreadable:
        return 1
    name = document.get("name", path.stem) if isinstance(document, dict) else path.stem
    response = call(command, "PUT", _scenario_url(url, app_id, str(name)), token, document)
    if response is None:
        return 1
    if response.status_code not in (200, 201):
        return print_refusal(command, response)
    body = response.json()
    print(f"Saved {path} as revision {body['revision']} of {app_id}'s scenario {body['name']}")
    return 0


def pull_scenario(
    url: str, app_id: str, name: str, output: Path | None, *, token: str | None = None
) -> int:
    command = "lvd scenario pull"
    response = call(command, "GET", _scenario_url(url, app_id, name), token)
    if response is None:
        return 1
    if response.status_code != 200:
        return print_refusal(command, response)
    body = response.json()
    write_document(body["scenario"], output)
    if output is not None:
        print(
            f"Wrote revision {body['revision']} of {app_id}'s scenario {name} to {output}",
            file=sys.stderr,
        )
    return 0


def _scenario_url(url: str, app_id: str, name: str) -> str:
    return f"{url.rstrip('/')}/api/apps/{quote(app_id, safe='')}/scenarios/{quote(name, safe='')}"
