"""The API description's schemas, generated (pydantic) from the types the routes build with."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import CoreSchema

from web import alerts, apps, dead_letters, plans, query_api, retention, status
from web.openapi_hygiene import ANSWERS as HYGIENE_ANSWERS
from web.openapi_hygiene import REQUESTS as HYGIENE_REQUESTS
from web.openapi_micro import MicroCounts, MicroFilter
from web.openapi_parity import PARITY_TYPES
from web.openapi_plan_editor import PLAN_EDITOR_ANSWERS, PLAN_EDITOR_REQUESTS
from web.openapi_refs import Schema
from web.openapi_scenarios import ANSWERS as SCENARIO_ANSWERS
from web.openapi_scenarios import REQUESTS as SCENARIO_REQUESTS
from web.openapi_tokens import NewToken, NewTokenRequest, TokenList

REF_TEMPLATE = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]

# The request bodies, read as the routes validate them.
REQUESTS: tuple[Any, ...] = (
    apps.NewApp,
    alerts.AlertSettings,
    plans.TrackingPlan,
    plans.RevalidateOptions,
    retention.RetentionChange,
    dead_letters.RetryRequest,
    NewTokenRequest,
    MicroFilter,
    *HYGIENE_REQUESTS,
    *PLAN_EDITOR_REQUESTS,
    *SCENARIO_REQUESTS,
)
# The answers, written as the routes build them.
ANSWERS: tuple[Any, ...] = (
    apps.AppEntry,
    apps.AppList,
    alerts.AlertsAnswer,
    alerts.SavedAlertSettings,
    plans.SavedPlan,
    plans.PlanVersions,
    plans.PlanDiffAnswer,
    plans.PlanCheck,
    plans.PlanDraft,
    plans.Revalidation,
    retention.Retention,
    dead_letters.DeadLetterList,
    dead_letters.RetryResult,
    status.PipelineReading,
    query_api.StoredEvent,
    query_api.EventPage,
    query_api.Summary,
    query_api.WaitResult,
    query_api.ResetResult,
    NewToken,
    TokenList,
    MicroCounts,
    *HYGIENE_ANSWERS,
    *PLAN_EDITOR_ANSWERS,
    *PARITY_TYPES,
    *SCENARIO_ANSWERS,
)


class _Generator(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every field (the names say it)."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


def type_name(kind: Any) -> str:
    """The component a type's schema is under: its name, as pydantic names it."""
    return str(kind.__name__)


@cache
def generated_schemas() -> dict[str, Schema]:
    """Every request's and answer's schema, and the schemas they use, by type name."""
    inputs: list[tuple[Any, Mode, TypeAdapter[Any]]] = [
        (kind, "validation", TypeAdapter(kind)) for kind in REQUESTS
    ] + [(kind, "serialization", TypeAdapter(kind)) for kind in ANSWERS]
    _, found = TypeAdapter.json_schemas(
        inputs, ref_template=REF_TEMPLATE, schema_generator=_Generator
    )
    schemas: dict[str, Schema] = found.get("$defs", {})
    return schemas
