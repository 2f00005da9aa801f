"""ConsumerGroupDescribe when the broker runs no consumer-group coordinator.

The handler answers every named group COORDINATOR_NOT_AVAILABLE with the same empty entry the
whole-request error shape uses, keeping the authorized operations the client asked for.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from firth.broker.groups import GroupConfig, GroupCoordinator
from firth.kafka.handlers.consumer_group import (
    GROUP_OPERATIONS,
    NOT_PROVIDED,
    consumer_group_describe,
)
from firth.kafka.handlers.context import RequestContext
from firth.kafka.protocol.error_responses import failed_consumer_group
from firth.kafka.protocol.errors import ErrorCode


class FakeContext:
    """Just what the handler reads: the decoded request, the broker, and `respond`."""

    def __init__(self, groups: GroupCoordinator, group_ids: list[str], operations: bool) -> None:
        self.request = SimpleNamespace(
            group_ids=group_ids, include_authorized_operations=operations
        )
        self.broker = SimpleNamespace(groups=groups, catalog=None)
        self.answered: dict[str, Any] = {}

    def decode(self) -> Any:
        return self.request

    def respond(self, fields: dict[str, Any]) -> bytes:
        self.answered = fields
        return b""


def describe(tmp_path: Path, group_ids: list[str], operations: bool) -> dict[str, Any]:
    async def body() -> dict[str, Any]:
        classic_only = GroupCoordinator.open(tmp_path, GroupConfig(fsync=False))
        try:
            ctx = FakeContext(classic_only, group_ids, operations)
            await consumer_group_describe(cast(RequestContext, ctx))
            return ctx.answered
        finally:
            await classic_only.close()

    return asyncio.run(body())


def test_every_group_is_answered_coordinator_not_available(tmp_path: Path) -> None:
    answered = describe(tmp_path, ["a", "b"], operations=False)
    code = int(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    assert answered["groups"] == [
        failed_consumer_group("a", code, operations=NOT_PROVIDED),
        failed_consumer_group("b", code, operations=NOT_PROVIDED),
    ]
    (first, _) = answered["groups"]
    assert (first["group_epoch"], first["members"], first["error_message"]) == (-1, [], None)


def test_the_asked_for_operations_are_kept(tmp_path: Path) -> None:
    answered = describe(tmp_path, ["a"], operations=True)
    assert [g["authorized_operations"] for g in answered["groups"]] == [GROUP_OPERATIONS]
