"""`lvd scenario push/pull`: scenarios kept as JSON files in git, sent to a server over its API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import quote

import httpx
import orjson

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
TIMEOUT_SECONDS = 30.0


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
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"lvd scenario push: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    name = document.get("name", path.stem) if isinstance(document, dict) else path.stem
    response = _request("PUT", _scenario_url(url, app_id, str(name)), token, document)
    if response is None:
        return 1
    body = response.json()
    if response.status_code not in (200, 201):
        error = body.get("error", {})
        print(f"lvd scenario push: {error.get('message', response.text)}", file=sys.stderr)
        for problem in error.get("problems", []):
            print(f"  {problem['path'] or '/'}: {problem['message']}", file=sys.stderr)
        return 1
    print(f"Saved {path} as revision {body['revision']} of {app_id}'s scenario {body['name']}")
    return 0


def pull_scenario(
    url: str, app_id: str, name: str, output: Path | None, *, token: str | None = None
) -> int:
    response = _request("GET", _scenario_url(url, app_id, name), token)
    if response is None:
        return 1
    body = response.json()
    if response.status_code != 200:
        message = body.get("error", {}).get("message", response.text)
        print(f"lvd scenario pull: {message}", file=sys.stderr)
        return 1
    text = orjson.dumps(body["scenario"], option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        print(
            f"Wrote revision {body['revision']} of {app_id}'s scenario {name} to {output}",
            file=sys.stderr,
        )
    return 0


def _scenario_url(url: str, app_id: str, name: str) -> str:
    return f"{url.rstrip('/')}/api/apps/{quote(app_id, safe='')}/scenarios/{quote(name, safe='')}"


def _request(method: str, url: str, token: str | None, body: Any = None) -> httpx.Response | None:
    """The server's answer, or None (said on stderr) when it cannot be reached."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    content = orjson.dumps(body) if body is not None else None
    if content is not None:
        headers["Content-Type"] = "application/json"
    try:
        return httpx.request(method, url, headers=headers, content=content, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        print(f"lvd scenario: cannot reach {url}: {exc}", file=sys.stderr)
        return None
