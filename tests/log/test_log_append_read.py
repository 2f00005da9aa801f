"""Log append/read: round trips across segment rolls, read bounds, timestamps, threads."""

from __future__ import annotations

import os
import random
import threading

import pytest

from firth.log import (
    CorruptBatch,
    Log,
    LogClosed,
    LogConfig,
    OffsetOutOfRange,
    RecordTooLarge,
    StorageError,
    TimestampOffset,
)
from firth.log.files import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, segment_file_name
from firth.wire.recordbatch import parse_header, validate
from tests.log.logbatches import make_batch

SMALL = LogConfig(segment_bytes=4096, index_interval_bytes=256)


class Model:
    """What a log should hold: every appended batch's final bytes, in order."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, bytes]] = []  # (base offset, next offset, bytes)

    def add(self, base: int, batch: bytearray) -> None:
        header = parse_header(batch)
        self.batches.append((base, header.next_offset, bytes(batch)))

    def index_of(self, offset: int) -> int:
        return next(i for i, (b, n, _) in enumerate(self.batches) if b <= offset < n)

    def expected_read(self, offset: int, max_bytes: int) -> bytes:
        i = self.index_of(offset)
        out = [self.batches[i][2]]
        total = len(out[0])
        for _, _, data in self.batches[i + 1 :]:
            if total + len(data) > max_bytes:
                break
            out.append(data)
            total += len(data)
        return b"".join(out)


def fill(log: Log, count: int, rng: random.Random, model: Model, *, ts: int = 1_000) -> None:
    for _ in range(count):
        batch, header = make_batch(
            rng.randint(1, 5), timestamp=ts, payload_size=rng.randint(0, 300)
        )
        base = log.append(batch, header)
        model.add(base, batch)
        ts += rng.randint(0, 3)


def test_append_assigns_contiguous_offsets_and_patches_base_offset(log_dir):
    with Log.open(log_dir) as log:
        bases = []
        for records in (1, 3, 2):
            batch, header = make_batch(records)
            bases.append(log.append(batch, header))
            assert validate(batch).base_offset == bases[-1]  # patched, CRC still valid
        assert bases == [0, 1, 4]
        assert log.log_end_offset == 6
        assert log.log_start_offset == 0


def test_round_trip_across_size_rolls(log_dir):
    rng = random.Random(1)
    model = Model()
    with Log.open(log_dir, SMALL) as log:
        fill(log, 300, rng, model)
        assert len(log.segment_base_offsets) > 10
        for name_base in log.segment_base_offsets:
            size = os.path.getsize(os.path.join(log_dir, segment_file_name(name_base, LOG_SUFFIX)))
            assert size <= SMALL.segment_bytes
        # each segment starts at a batch boundary and segments chain
        bases = {b for b, _, _ in model.batches}
        assert set(log.segment_base_offsets) <= bases
        for offset in range(0, log.log_end_offset, 7):
            for max_bytes in (1, 500, 5000, 20_000):
                assert log.read(offset, max_bytes).read_bytes() == model.expected_read(
                    offset, max_bytes
                )
        everything = log.read(0, 10**9)
        assert len(everything.slices) == len(log.segment_base_offsets)
        assert everything.read_bytes() == b"".join(d for _, _, d in model.batches)


def test_read_from_middle_of_batch_returns_whole_batch(log_dir):
    with Log.open(log_dir) as log:
        first, h1 = make_batch(10)
        second, h2 = make_batch(10, fill=0x62)
        log.append(first, h1)
        log.append(second, h2)
        for offset in range(10, 20):
            data = log.read(offset, 1).read_bytes()
            assert data == bytes(second)  # whole batch although max_bytes is 1
        assert log.read(3, len(first) + len(second)).read_bytes() == bytes(first + second)
        assert log.read(3, len(first) + len(second) - 1).read_bytes() == bytes(first)


def test_read_bounds(log_dir):
    with Log.open(log_dir, SMALL) as log:
        assert not log.read(0, 100)  # empty log, at the end
        batch, header = make_batch(4)
        log.append(batch, header)
        assert log.read(4, 100).slices == []  # at log end: empty
        with pytest.raises(OffsetOutOfRange) as raised:
            log.read(5, 100)
        assert raised.value.error_code == 1
        with pytest.raises(OffsetOutOfRange):
            log.read(-1, 100)
        with pytest.raises(OffsetOutOfRange):
            list(log.batches(6))


def test_read_before_log_start_after_retention(log_dir, clock):
    config = LogConfig(segment_bytes=1024, retention_bytes=0, index_interval_bytes=128)
    with Log.open(log_dir, config, clock=clock) as log:
        fill(log, 50, random.Random(2), Model())
        assert log.enforce_retention() > 0
        start = log.log_start_offset
        assert start > 0
        with pytest.raises(OffsetOutOfRange):
            log.read(start - 1, 100)
        assert log.read(start, 100).slices[0].size > 0


def test_roll_by_age_of_record_timestamps(log_dir, clock):
    config = LogConfig(segment_ms=1000)
    with Log.open(log_dir, config, clock=clock) as log:
        for ts in (10_000, 10_500, 11_000):  # 11_000 - 10_000 is not > 1000
            log.append(*make_batch(timestamp=ts))
        assert log.segment_base_offsets == [0]
        log.append(*make_batch(timestamp=11_001))
        assert log.segment_base_offsets == [0, 3]
        log.append(*make_batch(timestamp=11_500))
        assert log.segment_base_offsets == [0, 3]


def test_roll_by_age_of_creation_with_injected_clock(log_dir, clock):
    config = LogConfig(segment_ms=1000)
    with Log.open(log_dir, config, clock=clock) as log:
        log.append(*make_batch(timestamp=-1))  # no timestamps: creation time decides
        clock.advance(1000)
        log.append(*make_batch(timestamp=-1))
        assert log.segment_base_offsets == [0]
        clock.advance(1)
        log.append(*make_batch(timestamp=-1))
        assert log.segment_base_offsets == [0, 2]


def test_first_batch_larger_than_segment_is_accepted_alone(log_dir):
    config = LogConfig(segment_bytes=200, max_message_bytes=10_000)
    with Log.open(log_dir, config) as log:
        big, h = make_batch(payload_size=500)
        log.append(big, h)
        log.append(*make_batch(payload_size=500))
        assert log.segment_base_offsets == [0, 1]
        assert log.read(0, 10).read_bytes() == bytes(big)


def test_append_rejects_oversized_and_inconsistent_batches(log_dir):
    with Log.open(log_dir, LogConfig(max_message_bytes=200)) as log:
        batch, header = make_batch(payload_size=200)
        with pytest.raises(RecordTooLarge) as raised:
            log.append(batch, header)
        assert raised.value.error_code == 10
        batch, header = make_batch()
        with pytest.raises(CorruptBatch):
            log.append(batch + b"x", header)
        assert log.log_end_offset == 0
    with pytest.raises(LogClosed):
        log.append(*make_batch())


def test_batches_iterates_from_containing_batch(log_dir):
    model = Model()
    with Log.open(log_dir, SMALL) as log:
        fill(log, 100, random.Random(3), model)
        got = list(log.batches(5))
        i = model.index_of(5)
        assert [data for _, data in got] == [d for _, _, d in model.batches[i:]]
        assert [h.base_offset for h, _ in got] == [b for b, _, _ in model.batches[i:]]
        assert list(log.batches(log.log_end_offset)) == []


def test_offset_for_timestamp_is_first_batch_reaching_it(log_dir):
    with Log.open(log_dir, SMALL) as log:
        expected: list[tuple[int, int]] = []  # (max timestamp, base offset)
        rng = random.Random(4)
        ts = 1_000
        for _ in range(200):
            ts += rng.randint(0, 20)
            # timestamps mostly rise but sometimes dip (CreateTime from producers)
            max_ts = ts - rng.choice([0, 0, 0, 50])
            batch, header = make_batch(2, timestamp=max_ts - 1, max_timestamp=max_ts)
            expected.append((max_ts, log.append(batch, header)))
        assert len(log.segment_base_offsets) > 3

        def model(target: int) -> TimestampOffset | None:
            for max_ts, base in expected:
                if max_ts >= target:
                    return TimestampOffset(max_ts, base)
            return None

        for target in range(900, ts + 30, 3):
            assert log.offset_for_timestamp(target) == model(target), target


def test_max_timestamp_is_first_batch_with_the_largest(log_dir):
    with Log.open(log_dir, SMALL) as log:
        assert log.max_timestamp() is None
        log.append(*make_batch(timestamp=-1))
        assert log.max_timestamp() is None
        expected = None
        rng = random.Random(9)
        for _ in range(120):
            ts = rng.randint(0, 1000)
            base = log.append(*make_batch(2, timestamp=ts, payload_size=rng.randint(0, 200)))
            if expected is None or ts > expected.timestamp:
                expected = TimestampOffset(ts, base)
        assert len(log.segment_base_offsets) > 3
        assert log.max_timestamp() == expected
    with Log.open(log_dir, SMALL) as log:
        assert log.max_timestamp() == expected


def test_flush_from_a_thread_while_appending(log_dir):
    config = LogConfig(segment_bytes=64 * 1024)
    with Log.open(log_dir, config) as log:
        stop = threading.Event()
        results: list[tuple[int, int]] = []  # (returned flushed offset, end after return)
        errors: list[BaseException] = []

        def flusher() -> None:
            try:
                while not stop.is_set():
                    flushed = log.flush()
                    results.append((flushed, log.log_end_offset))
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        thread = threading.Thread(target=flusher)
        thread.start()
        for _ in range(3000):
            log.append(*make_batch(3, payload_size=100))
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert not errors
        assert len(results) > 1
        flushed = [f for f, _ in results]
        assert flushed == sorted(flushed)
        assert all(f <= end for f, end in results)
        assert log.flush() == log.log_end_offset == 9000
        assert log.flushed_offset == 9000


def test_close_and_reopen_keeps_everything(log_dir, clock):
    model = Model()
    with Log.open(log_dir, SMALL, clock=clock) as log:
        fill(log, 200, random.Random(5), model)
        segments = log.segment_base_offsets
        end = log.log_end_offset
        probe = log.offset_for_timestamp(1_100)
    assert os.path.exists(os.path.join(log_dir, segment_file_name(0, INDEX_SUFFIX)))
    assert os.path.exists(os.path.join(log_dir, segment_file_name(0, TIME_INDEX_SUFFIX)))
    with Log.open(log_dir, SMALL, clock=clock) as log:
        report = log.load_report
        assert report.clean_shutdown
        assert report.segments_verified == 0 and report.indexes_rebuilt == 0
        assert log.segment_base_offsets == segments
        assert log.log_end_offset == end == log.flushed_offset
        assert log.offset_for_timestamp(1_100) == probe
        assert log.read(0, 10**9).read_bytes() == b"".join(d for _, _, d in model.batches)
        fill(log, 50, random.Random(6), model)  # appending continues after a reopen
    with Log.open(log_dir, SMALL, clock=clock) as log:
        assert log.read(0, 10**9).read_bytes() == b"".join(d for _, _, d in model.batches)


def test_truncate_to_removes_the_containing_batch_and_after(log_dir):
    model = Model()
    with Log.open(log_dir, SMALL) as log:
        fill(log, 100, random.Random(8), model)
        i = len(model.batches) // 3
        base, nxt, _ = model.batches[i]
        assert log.truncate_to(nxt - 1) == base
        assert log.log_end_offset == base
        assert log.read(0, 10**9).read_bytes() == b"".join(d for _, _, d in model.batches[:i])
        assert log.segment_base_offsets[-1] <= base
        batch, header = make_batch()
        assert log.append(batch, header) == base
    with Log.open(log_dir, SMALL) as log:
        assert log.log_end_offset == base + 1


def test_delete_removes_directory(log_dir):
    log = Log.open(log_dir)
    log.append(*make_batch())
    log.delete()
    assert not os.path.exists(log_dir)


def test_failed_fsync_makes_the_log_refuse_appends_and_flushes(log_dir, monkeypatch):
    import errno

    log = Log.open(log_dir)
    log.append(*make_batch())
    assert log.flush() == 1
    log.append(*make_batch())

    def failing_fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(os, "fdatasync", failing_fdatasync)
    with pytest.raises(StorageError) as raised:
        log.flush()
    assert raised.value.error_code == 56
    monkeypatch.undo()
    assert log.flushed_offset == 1  # nothing claimed beyond the last good fsync
    with pytest.raises(StorageError):
        log.flush()  # a retry must not "succeed" after the kernel may have dropped the pages
    with pytest.raises(StorageError):
        log.append(*make_batch())
    log.close()  # releases without the clean-shutdown marker
    with Log.open(log_dir) as reopened:
        assert not reopened.load_report.clean_shutdown
        assert reopened.log_end_offset == 2  # recovered from what the files hold
