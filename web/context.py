"""The per-process services every blueprint uses, created by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from quart import current_app

from web.core.directory import AppDirectory
from web.core.ingest.budget import JudgingBudget
from web.core.queue.enqueuer import BatchingEnqueuer
from web.core.ratelimit import RateLimiter
from web.core.settings import Settings
from web.hub import Hub


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    enqueuer: BatchingEnqueuer
    apps: AppDirectory
    hub: Hub
    limiter: RateLimiter
    judging: JudgingBudget


def services() -> Services:
    found: Services = current_app.extensions["lvd"]
    return found
