"""`lvd token create/list/revoke`: API tokens, managed in the database directly like users.

`create` prints the token alone on standard output (and what it is on standard error), so
`LVD_TOKEN=$(lvd token create --name ci)` keeps it and nothing else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeAlias

from web.core.scopes import DEFAULT_SCOPE, READ, SCOPES

if TYPE_CHECKING:  # the commands import what they use when they run
    import asyncpg

    from web.core.queries.tokens import ApiToken

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Work: TypeAlias = "Callable[[asyncpg.Connection], Awaitable[None]]"
InDatabase: TypeAlias = Callable[[str, Work], int]
# Recorded as the creator of tokens made here (the API records the user or token instead).
CREATED_BY = "cli"


def add_token_commands(commands: Commands, in_database: InDatabase) -> None:
    """`lvd token ...`; in_database(command, work) runs work on a database connection."""
    token = commands.add_parser("token", help="API tokens for CI and scripts: create, list, revoke")
    token_commands = token.add_subparsers(title="token commands", required=True)
    create = token_commands.add_parser("create", help="create a token and print it, this once")
    create.add_argument("--name", required=True, help="what it is for, such as ci")
    create.add_argument("--app", default=None, help="limit the token to this app's id")
    scope = create.add_mutually_exclusive_group()
    scope.add_argument(
        "--scope", choices=SCOPES, default=DEFAULT_SCOPE, help=f"default: {DEFAULT_SCOPE}"
    )
    scope.add_argument(
        "--read-only", dest="scope", action="store_const", const=READ, help=f"--scope {READ}"
    )
    create.set_defaults(command=lambda args: in_database("token create", _create(args)))
    listing = token_commands.add_parser("list", help="every token, without the tokens")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    listing.set_defaults(command=lambda args: in_database("token list", _list(args)))
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", type=int)
    revoke.set_defaults(command=lambda args: in_database("token revoke", _revoke(args)))


def _create(args: argparse.Namespace) -> Work:
    async def work(conn: asyncpg.Connection) -> None:
        from web.core.tokens import create_token

        new = await create_token(conn, args.name, args.scope, args.app, created_by=CREATED_BY)
        print(new.token)
        print(
            f"Created token {new.stored.id} ({_describe(new.stored)}). It is shown this once:"
            " keep it now, as LVD_TOKEN or in your CI's secrets.",
            file=sys.stderr,
        )

    return work


def _list(args: argparse.Namespace) -> Work:
    async def work(conn: asyncpg.Connection) -> None:
        import orjson

        from web.core.tokens import list_tokens, token_as_json

        tokens = await list_tokens(conn)
        if args.json:
            document = {"tokens": [token_as_json(token) for token in tokens]}
            print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        else:
            print(format_tokens(tokens))

    return work


def _revoke(args: argparse.Namespace) -> Work:
    async def work(conn: asyncpg.Connection) -> None:
        from web.core.tokens import revoke

        await revoke(conn, args.token_id)
        print(f"Revoked token {args.token_id}")

    return work


def _describe(token: ApiToken) -> str:
    return f"{token.name}, scope {token.scope}, {token.app_id or 'every app'}"


def format_tokens(tokens: list[ApiToken]) -> str:
    """A table of tokens for the terminal; times in UTC."""
    if not tokens:
        return "No tokens. Create one with: lvd token create --name ci"
    header = ("ID", "NAME", "TOKEN", "SCOPE", "APP", "CREATED", "LAST USED", "REVOKED")
    rows = [header] + [
        (
            str(token.id),
            token.name,
            f"lvd_{token.prefix}...",
            token.scope,
            token.app_id or "*",
            _when(token.created_at),
            _when(token.last_used_at) or "never",
            _when(token.revoked_at) or "-",
        )
        for token in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
