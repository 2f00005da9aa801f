"""Group requests on a broker that runs no group coordinator (it is still starting).

SyncGroup, LeaveGroup, OffsetDelete and ListGroups answer with only a top-level
COORDINATOR_NOT_AVAILABLE (their other response fields take kio's defaults), without touching
the request's members or partitions any further.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from firth.kafka.handlers.context import RequestContext
from firth.kafka.handlers.groups import leave_group, list_groups, offset_delete, sync_group
from firth.kafka.protocol.errors import ErrorCode


class NoCoordinatorContext:
    """Just what the handlers read: the decoded request, its version, the broker, `respond`."""

    def __init__(self, request: Any, version: int) -> None:
        self.request = request
        self.version = version
        self.broker = SimpleNamespace(groups=None)
        self.answered: dict[str, Any] | None = None

    def decode(self) -> Any:
        return self.request

    def respond(self, fields: dict[str, Any]) -> bytes:
        self.answered = fields
        return b"answered"


MEMBER = SimpleNamespace(member_id="m", group_instance_id=None)
TOPIC = SimpleNamespace(name="t", partitions=[SimpleNamespace(partition_index=0)])

CASES: dict[str, tuple[Callable[[RequestContext], Awaitable[bytes]], Any, int]] = {
    "SyncGroup": (sync_group, SimpleNamespace(group_id="g"), 5),
    "LeaveGroup v0": (leave_group, SimpleNamespace(group_id="g", member_id="m"), 0),
    "LeaveGroup v5": (leave_group, SimpleNamespace(group_id="g", members=[MEMBER]), 5),
    "OffsetDelete": (offset_delete, SimpleNamespace(group_id="g", topics=[TOPIC]), 0),
    "ListGroups": (list_groups, SimpleNamespace(), 4),
}


@pytest.mark.parametrize("case", list(CASES))
def test_answered_coordinator_not_available(case: str) -> None:
    handler, request, version = CASES[case]
    ctx = NoCoordinatorContext(request, version)
    assert asyncio.run(handler(cast(RequestContext, ctx))) == b"answered"
    assert ctx.answered == {
        "throttle_time": 0,
        "error_code": int(ErrorCode.COORDINATOR_NOT_AVAILABLE),
    }
