"""Where the status figures live in Redis: Dramatiq's keys for the events queue, and our own.

Dramatiq names its queue keys in its Lua script, not in Python. Where it exposes a name
(the delay and dead-letter queue suffixes), it is read from Dramatiq; the rest is checked
against the installed Dramatiq by tests/core/test_status_keys.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq.common import dq_name, xq_name

from web.core.queue.contract import EVENTS_QUEUE

# RedisBroker's default namespace, which build_broker keeps.
DRAMATIQ_NAMESPACE = "dramatiq"
# The hash of message bodies beside each queue list, "$namespace:$queue.msgs" in dispatch.lua.
DRAMATIQ_MESSAGES_SUFFIX = ".msgs"


@dataclass(frozen=True, slots=True)
class StatusKeys:
    """Where the figures live in Redis: Dramatiq's keys for the events queue, and our own."""

    dramatiq_namespace: str = DRAMATIQ_NAMESPACE
    prefix: str = "lvd:status"
    queue_name: str = EVENTS_QUEUE

    @property
    def queue(self) -> str:
        return f"{self.dramatiq_namespace}:{self.queue_name}"

    @property
    def queue_messages(self) -> str:
        return f"{self.queue}{DRAMATIQ_MESSAGES_SUFFIX}"

    @property
    def delayed_messages(self) -> str:
        return f"{self.dramatiq_namespace}:{dq_name(self.queue_name)}{DRAMATIQ_MESSAGES_SUFFIX}"

    @property
    def dead_set(self) -> str:
        return f"{self.dramatiq_namespace}:{xq_name(self.queue_name)}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def web(self) -> str:
        return f"{self.prefix}:web"

    @property
    def event_totals(self) -> str:
        return f"{self.prefix}:events"


DEFAULT_KEYS = StatusKeys()


def event_total_field(app_id: str, status: str) -> str:
    """The field of the event_totals hash that counts one app's events of one verdict."""
    return f"{app_id}\t{status}"


def parse_event_total_field(field: str) -> tuple[str, str]:
    """(app_id, status) from a field event_total_field wrote."""
    app_id, _, status = field.rpartition("\t")
    return app_id, status
