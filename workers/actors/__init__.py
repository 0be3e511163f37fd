"""Every Dramatiq actor: one module per subject in this package, each found and loaded here.

A new actor is one new module here; `lvd worker` hands every module to `dramatiq`, which
consumes the queues of the actors it imports. A periodic actor says so beside itself, with
`run_every` (workers.scheduler). Importing this package alone loads no actor and no broker.
"""

from __future__ import annotations

import importlib
import pkgutil


def actor_modules() -> list[str]:
    """The dotted names of the actor modules, for `dramatiq <modules>`."""
    return sorted(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__))


def load_actors() -> None:
    """Import every actor module (and so the worker's broker) in this process."""
    for name in actor_modules():
        importlib.import_module(name)
