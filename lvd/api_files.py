"""Documents kept as JSON files in git and sent over the API: `lvd plan` and `lvd scenario`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

TIMEOUT_SECONDS = 30.0


class Unreadable(Exception):
    """The file could not be read as JSON (said on stderr already)."""


def read_document(command: str, path: Path) -> Any:
    """The file's JSON; Unreadable, said on stderr as `command`, when it cannot be read."""
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"{command}: cannot read {path}: {exc}", file=sys.stderr)
        raise Unreadable(str(path)) from exc


def call(
    command: str, method: str, url: str, token: str | None, document: Any = None
) -> httpx.Response | None:
    """The server's answer, or None (said on stderr) when it cannot be reached. A token goes
    as `Authorization: Bearer`, for a server that requires sign-in."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    content = None
    if document is not None:
        content = orjson.dumps(document)
        headers["Content-Type"] = "application/json"
    try:
        return httpx.request(method, url, headers=headers, content=content, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        print(f"{command}: cannot reach {url}: {exc}", file=sys.stderr)
        return None


def print_refusal(command: str, response: httpx.Response) -> int:
    """Say why the server refused, each problem of the document at its path; returns 1."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    print(f"{command}: {error.get('message', response.text)}", file=sys.stderr)
    for problem in error.get("problems", []):
        print(f"  {problem['path'] or '/'}: {problem['message']}", file=sys.stderr)
    return 1


def write_document(document: Any, output: Path | None) -> None:
    """The document as a file in git keeps it: indented, with a final newline; to stdout
    when no output is named."""
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
