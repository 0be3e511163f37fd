"""Startup of a web process: once serving, its startup objects are out of the collector's way."""

from __future__ import annotations

import gc

from web.app import create_app
from web.core.settings import Settings


async def test_the_app_and_its_services_are_frozen_once_serving(web_settings: Settings) -> None:
    app = create_app(web_settings)
    async with app.test_app():  # tests/conftest.py unfreezes after the test
        services = app.extensions["lvd"]
        tracked = gc.get_objects()  # generations 0-2: everything not frozen
        assert not any(each is app or each is services for each in tracked)
