"""Retention: whole old segments go by time and by size, never the active one."""

from __future__ import annotations

import os

from firth.log import Log, LogConfig
from firth.log.files import DELETED_SUFFIX, LOG_SUFFIX, segment_file_name
from tests.log.logbatches import make_batch

HOUR = 3_600_000


def one_batch_per_segment(log: Log, timestamps: list[int], payload_size: int = 100) -> None:
    for ts in timestamps:
        log.append(*make_batch(timestamp=ts, payload_size=payload_size))
        log.roll()


def test_retention_by_time_deletes_expired_prefix_only(log_dir, clock):
    config = LogConfig(retention_ms=HOUR)
    now = clock.now_ms
    with Log.open(log_dir, config, clock=clock) as log:
        # segments with newest timestamps: 3h ago, 2h ago, 10 min ago, 3h ago, then the active one
        one_batch_per_segment(
            log, [now - 3 * HOUR, now - 2 * HOUR, now - HOUR // 6, now - 3 * HOUR]
        )
        log.append(*make_batch(timestamp=now - 5 * HOUR))  # active segment, never deleted
        assert log.segment_base_offsets == [0, 1, 2, 3, 4]
        assert log.enforce_retention() == 2
        assert log.segment_base_offsets == [2, 3, 4]
        assert log.log_start_offset == 2
        clock.advance(HOUR)
        assert log.enforce_retention() == 2  # now the 10-minute one expired, then the next
        assert log.segment_base_offsets == [4]
        assert log.enforce_retention() == 0
        assert log.log_end_offset == 5


def test_retention_forever(log_dir, clock):
    with Log.open(log_dir, LogConfig(retention_ms=-1), clock=clock) as log:
        one_batch_per_segment(log, [0, 1, 2])
        assert log.enforce_retention(now_ms=10**15) == 0


def test_retention_by_size_keeps_at_least_the_limit(log_dir, clock):
    with Log.open(log_dir, LogConfig(retention_ms=-1), clock=clock) as log:
        one_batch_per_segment(log, [clock.now_ms] * 6)
        segment = log.size_bytes // 6
        log.update_config(LogConfig(retention_ms=-1, retention_bytes=int(segment * 2.5)))
        # 6 segments (the last empty active one after roll is not counted: roll made 7)
        assert log.enforce_retention() == 3
        assert log.size_bytes == 3 * segment
        assert log.log_start_offset == 3
        log.update_config(LogConfig(retention_ms=-1, retention_bytes=0))
        assert log.enforce_retention() == 3  # everything but the (empty) active segment
        assert log.log_start_offset == log.log_end_offset == 6
        assert log.read(6, 100).slices == []


def test_deleted_segments_are_renamed_then_unlinked_after_delay(log_dir, clock):
    config = LogConfig(retention_bytes=0, file_delete_delay_ms=60_000)
    with Log.open(log_dir, config, clock=clock) as log:
        one_batch_per_segment(log, [clock.now_ms] * 2)
        held = log.read(0, 100).slices[0]  # a fetch in flight holds segment 0's descriptor
        assert log.enforce_retention() == 2
        retired = os.path.join(log_dir, segment_file_name(0, LOG_SUFFIX) + DELETED_SUFFIX)
        assert os.path.exists(retired)
        assert not os.path.exists(os.path.join(log_dir, segment_file_name(0, LOG_SUFFIX)))
        assert len(held.read_bytes()) == held.size  # still readable
        clock.advance(59_999)
        log.enforce_retention()
        assert os.path.exists(retired)
        clock.advance(1)
        log.enforce_retention()
        assert not os.path.exists(retired)


def test_log_start_offset_survives_restart(log_dir, clock):
    config = LogConfig(retention_bytes=0)
    with Log.open(log_dir, config, clock=clock) as log:
        one_batch_per_segment(log, [clock.now_ms] * 4)
        log.append(*make_batch())
        log.enforce_retention()
        assert log.log_start_offset == 4
    # leftovers of a crash between retire and unlink are swept on open
    open(os.path.join(log_dir, segment_file_name(1, LOG_SUFFIX) + DELETED_SUFFIX), "wb").close()
    with Log.open(log_dir, config, clock=clock) as log:
        assert log.log_start_offset == 4
        assert log.log_end_offset == 5
        assert not any(name.endswith(DELETED_SUFFIX) for name in os.listdir(log_dir))
