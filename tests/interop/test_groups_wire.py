"""The group handlers' hand-written encoder writes exactly what the generic kio path writes."""

from __future__ import annotations

import pytest

from firth.kafka.handlers.groups import OFFSET_COMMIT, encode_offset_commit_response
from firth.kafka.protocol.codec import build_response, encode_response
from firth.kafka.protocol.header import RequestHeader

TOPICS = [
    ("orders", [(0, 0), (1, 3), (7, 22)]),
    ("ünïcode-topic", [(2, 25)]),
    ("empty", []),
]


@pytest.mark.parametrize("version", range(2, 10))
@pytest.mark.parametrize("topics", [TOPICS, []], ids=["topics", "none"])
def test_offset_commit_response_matches_the_generic_encoder(
    version: int, topics: list[tuple[str, list[tuple[int, int]]]]
) -> None:
    header = RequestHeader(OFFSET_COMMIT, version, 123456, "client")
    generic = encode_response(
        header,
        build_response(
            OFFSET_COMMIT,
            version,
            {
                "throttle_time": 0,
                "topics": [
                    {
                        "name": name,
                        "partitions": [
                            {"partition_index": index, "error_code": error}
                            for index, error in partitions
                        ],
                    }
                    for name, partitions in topics
                ],
            },
        ),
    )
    assert encode_offset_commit_response(header, topics) == generic
