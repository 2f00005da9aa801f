"""Kafka API handlers: the dispatch table from API key to handler.

Each module registers its handlers with `@handles(ApiKey)`; importing this package imports them
all, so `HANDLERS` is complete. The versions advertised in ApiVersions come from
firth.kafka.protocol.apis, and every advertised API must have a handler here (a test checks it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from firth.kafka.handlers.context import RequestContext, Response

Handler = Callable[[RequestContext], Awaitable[Response]]

HANDLERS: dict[int, Handler] = {}


def handles(api_key: int) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if api_key in HANDLERS:
            raise RuntimeError(f"two handlers for API key {api_key}")
        HANDLERS[api_key] = handler
        return handler

    return register


def _load_all() -> None:
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        if module.name != "context":
            importlib.import_module(f"{__name__}.{module.name}")


_load_all()

__all__ = ["HANDLERS", "Handler", "RequestContext", "Response", "handles"]
