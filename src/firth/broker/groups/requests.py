"""Value types the coordinator takes: what a front end asks of it, wire-neutral.

The mirror of `results`: a front end decodes its own request into one of these and hands it to
the coordinator as one argument, so that the parameter list is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from firth.broker.groups.member import Protocols


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A JoinGroup: who asks (empty `member_id` for a new member) and what it supports.

    `rebalance_timeout_ms` below zero means none was sent (JoinGroup v0); the coordinator uses
    the session timeout then. `require_known_member_id` (JoinGroup v4+) makes a new member
    without an instance id first get its id with MEMBER_ID_REQUIRED, then join with it.
    """

    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    require_known_member_id: bool
