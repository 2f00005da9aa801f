"""ApiVersions (18): which APIs and versions this broker serves.

The list comes from firth.kafka.protocol.apis, filtered to APIs that have a handler, so nothing
is advertised that is not implemented. Unknown ApiVersions versions never reach here: the server
answers them in the v0 format with UNSUPPORTED_VERSION.
"""

from __future__ import annotations

from firth.kafka.handlers import handles
from firth.kafka.handlers.context import RequestContext
from firth.kafka.protocol.apis import supported_apis


def advertised_apis() -> dict[int, tuple[int, int]]:
    from firth.kafka.handlers import HANDLERS

    return {key: rng for key, rng in supported_apis().items() if key in HANDLERS}


@handles(18)
async def api_versions(ctx: RequestContext) -> bytes:
    return ctx.respond(
        {
            "error_code": 0,
            "api_keys": [
                {"api_key": key, "min_version": low, "max_version": high}
                for key, (low, high) in advertised_apis().items()
            ],
            "throttle_time": 0,
            "supported_features": [],
            "finalized_features_epoch": -1,
            "finalized_features": [],
            "zk_migration_ready": False,
        }
    )
