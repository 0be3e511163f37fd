"""`lvd plan push/pull`: a tracking plan kept as a file in git, sent to a server over its API."""

from __future__ import annotations

import sys
from pathlib import Path

from lvd.api_files import Unreadable, call, print_refusal, read_document, write_document


def push_plan(url: str, app_id: str, path: Path, *, token: str | None = None) -> int:
    command = "lvd plan push"
    try:
        document = read_document(command, path)
    except Unreadable:
        return 1
    response = call(command, "PUT", f"{url.rstrip('/')}/api/apps/{app_id}/plan", token, document)
    if response is None:
        return 1
    if response.status_code != 200:
        return print_refusal(command, response)
    print(f"Saved {path} as version {response.json()['version']} of {app_id}'s plan")
    return 0


def pull_plan(
    url: str, app_id: str, output: Path | None, version: int | None, *, token: str | None = None
) -> int:
    command = "lvd plan pull"
    path = f"/api/apps/{app_id}/plan" + (f"/versions/{version}" if version else "")
    response = call(command, "GET", url.rstrip("/") + path, token)
    if response is None:
        return 1
    if response.status_code != 200:
        return print_refusal(command, response)
    body = response.json()
    write_document(body["plan"], output)
    if output is not None:
        print(f"Wrote version {body['version']} of {app_id}'s plan to {output}", file=sys.stderr)
    return 0
