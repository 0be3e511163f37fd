"""`lvd plan push/pull`: a tracking plan kept as a file in git, sent to a server over its API."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import orjson

TIMEOUT_SECONDS = 30.0


def push_plan(url: str, app_id: str, path: Path, *, token: str | None = None) -> int:
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"lvd plan push: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    response = _call("PUT", f"{url.rstrip('/')}/api/apps/{app_id}/plan", token, json=document)
    if response is None:
        return 1
    body = response.json()
    if response.status_code != 200:
        error = body.get("error", {})
        print(f"lvd plan push: {error.get('message', response.text)}", file=sys.stderr)
        for problem in error.get("problems", []):
            print(f"  {problem['path'] or '/'}: {problem['message']}", file=sys.stderr)
        return 1
    print(f"Saved {path} as version {body['version']} of {app_id}'s plan")
    return 0


def pull_plan(
    url: str, app_id: str, output: Path | None, version: int | None, *, token: str | None = None
) -> int:
    path = f"/api/apps/{app_id}/plan" + (f"/versions/{version}" if version else "")
    response = _call("GET", url.rstrip("/") + path, token)
    if response is None:
        return 1
    body = response.json()
    if response.status_code != 200:
        print(
            f"lvd plan pull: {body.get('error', {}).get('message', response.text)}", file=sys.stderr
        )
        return 1
    text = orjson.dumps(body["plan"], option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        print(f"Wrote version {body['version']} of {app_id}'s plan to {output}", file=sys.stderr)
    return 0


def _call(method: str, url: str, token: str | None, **kwargs: object) -> httpx.Response | None:
    """The server's answer, or None (said on stderr) when it cannot be reached. A token goes
    as `Authorization: Bearer`, for a server that requires sign-in."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.request(method, url, headers=headers, timeout=TIMEOUT_SECONDS, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        print(f"lvd plan: cannot reach {url}: {exc}", file=sys.stderr)
        return None
