"""create_app(): the Quart app of a web process: settings, blueprints, hooks, lifespan."""

from __future__ import annotations

from quart import Quart

from web import (
    alerts,
    api_docs,
    apps,
    auth,
    coverage,
    dashboard,
    dead_letters,
    detail,
    export,
    health,
    hygiene,
    metrics,
    openapi,
    pairing,
    parity,
    plan_editor,
    plan_pages,
    plans,
    query_api,
    retention,
    scenario_pages,
    scenarios_api,
    snowplow_micro,
    status,
    stream,
    tokens,
    violations,
)
from web.assets import STATIC_DIR, TEMPLATES_DIR
from web.auth import install_auth
from web.core.logs import configure_logging
from web.core.settings import Settings
from web.errors import register_error_handlers
from web.ingest import install_ingest
from web.lifespan import install_lifespan
from web.proxy import install_proxy_headers
from web.security import install_security


def create_app(settings: Settings | None = None) -> Quart:
    settings = settings or Settings.from_env()
    configure_logging(json=settings.log_json, level=settings.log_level)
    app = Quart(__name__, template_folder=str(TEMPLATES_DIR), static_folder=str(STATIC_DIR))
    app.config.update(
        MAX_CONTENT_LENGTH=settings.limits.max_request_bytes,
        BODY_TIMEOUT=settings.limits.body_timeout_seconds,
        SESSION_COOKIE_NAME="lvd_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep documents in their order
    # Ingest has no blueprint: install_ingest answers its routes in front of Quart.
    for module in (
        health,
        auth,
        query_api,
        openapi,
        api_docs,
        apps,
        plans,
        plan_pages,
        plan_editor,
        dashboard,
        stream,
        dead_letters,
        detail,
        violations,
        coverage,
        export,
        snowplow_micro,
        status,
        metrics,
        alerts,
        retention,
        hygiene,
        tokens,
        pairing,
        parity,
        scenarios_api,
        scenario_pages,
    ):
        app.register_blueprint(module.blueprint)
    metrics.prepare_metrics_dir(settings)
    register_error_handlers(app)
    install_security(app)
    install_auth(app)
    install_ingest(app)
    # Last, so outermost: ingest and every page see the scheme, host and client it sets.
    install_proxy_headers(app, settings)
    install_lifespan(app, settings)
    return app
