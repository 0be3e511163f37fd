"""The `alvd` fixture: the lvd fixture's AsyncLvdClient twin, where pytest-asyncio runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .aio import AsyncLvdClient
from .plugin import claim_session


@pytest_asyncio.fixture
async def alvd(request: pytest.FixtureRequest) -> AsyncIterator[AsyncLvdClient]:
    """An AsyncLvdClient in this test's own session (the same one `lvd` would get)."""
    found = claim_session(request)
    async with AsyncLvdClient(
        found.url, found.app, session=found.session, token=found.token
    ) as client:
        yield client
