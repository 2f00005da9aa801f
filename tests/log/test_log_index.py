"""Offset and time index: lookups against a bisect model, file round trips, consistency."""

from __future__ import annotations

import bisect
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from firth.log.offset_index import OffsetIndex
from firth.log.positions import OffsetPosition, TimestampOffset
from firth.log.time_index import NO_TIMESTAMP, TimeIndex

BASE = 1_000_000

increasing = st.lists(st.integers(0, 2**31 - 2), unique=True, max_size=300).map(sorted)


def build_offset_index(offsets: list[int], positions: list[int]) -> OffsetIndex:
    index = OffsetIndex(BASE, 10_000)
    for offset, position in zip(offsets, positions, strict=True):
        index.append(BASE + offset, position)
    return index


@settings(max_examples=200, deadline=None)
@given(data=st.data(), offsets=increasing)
def test_offset_lookup_matches_bisect_model(data, offsets):
    positions = sorted(
        data.draw(
            st.lists(
                st.integers(0, 2**31 - 1), unique=True, min_size=len(offsets), max_size=len(offsets)
            )
        )
    )
    index = build_offset_index(offsets, positions)
    targets = data.draw(st.lists(st.integers(-5, 2**31), max_size=50))
    targets += offsets + [o + 1 for o in offsets] + [o - 1 for o in offsets]
    for target in targets:
        i = bisect.bisect_right(offsets, target) - 1
        expected = (
            OffsetPosition(BASE, 0) if i < 0 else OffsetPosition(BASE + offsets[i], positions[i])
        )
        assert index.lookup(BASE + target) == expected
    for target in data.draw(st.lists(st.integers(-5, 2**31), max_size=50)) + positions:
        i = bisect.bisect_right(positions, target) - 1
        expected = (
            OffsetPosition(BASE, 0) if i < 0 else OffsetPosition(BASE + offsets[i], positions[i])
        )
        assert index.lookup_position(target) == expected


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    timestamps=st.lists(st.integers(0, 2**62), unique=True, max_size=300).map(sorted),
)
def test_time_lookup_matches_bisect_model(data, timestamps):
    offsets = sorted(
        data.draw(
            st.lists(
                st.integers(0, 2**31 - 1),
                unique=True,
                min_size=len(timestamps),
                max_size=len(timestamps),
            )
        )
    )
    index = TimeIndex(BASE, 10_000)
    for timestamp, offset in zip(timestamps, offsets, strict=True):
        index.maybe_append(timestamp, BASE + offset)
    assert len(index) == len(timestamps)
    targets = data.draw(st.lists(st.integers(-5, 2**62), max_size=50))
    targets += timestamps + [t + 1 for t in timestamps] + [t - 1 for t in timestamps]
    for target in targets:
        i = bisect.bisect_right(timestamps, target) - 1
        expected = (
            TimestampOffset(NO_TIMESTAMP, BASE)
            if i < 0
            else TimestampOffset(timestamps[i], BASE + offsets[i])
        )
        assert index.lookup(target) == expected


def test_time_index_skips_entries_that_do_not_increase():
    index = TimeIndex(0, 100)
    index.maybe_append(10, 5)
    index.maybe_append(10, 7)  # same timestamp
    index.maybe_append(9, 8)  # older timestamp
    index.maybe_append(11, 5)  # same offset
    index.maybe_append(12, 9)
    assert [index.lookup(t) for t in (10, 11, 12)] == [
        TimestampOffset(10, 5),
        TimestampOffset(10, 5),
        TimestampOffset(12, 9),
    ]
    assert len(index) == 2


@settings(max_examples=100, deadline=None)
@given(offsets=increasing)
def test_offset_index_file_round_trip(offsets):
    positions = [o * 3 for o in offsets] if offsets and offsets[-1] * 3 < 2**31 else offsets
    index = build_offset_index(offsets, positions)
    data = index.to_bytes()
    assert len(data) == 8 * len(offsets)
    loaded = OffsetIndex.from_bytes(BASE, data, 10_000)
    assert loaded is not None
    assert [loaded.entry(i) for i in range(len(loaded))] == [
        index.entry(i) for i in range(len(index))
    ]


def test_offset_index_file_is_big_endian_rows():
    index = OffsetIndex(100, 10)
    index.append(101, 4096)
    index.append(300, 0x01020304)
    assert index.to_bytes() == bytes.fromhex("00000001 00001000 000000c8 01020304")


def test_time_index_file_round_trip_and_layout():
    index = TimeIndex(100, 10)
    index.maybe_append(1_700_000_000_000, 105)
    index.maybe_append(1_700_000_000_001, 300)
    data = index.to_bytes()
    assert data[:12] == (1_700_000_000_000).to_bytes(8, "big") + (5).to_bytes(4, "big")
    loaded = TimeIndex.from_bytes(100, data, 10)
    assert loaded is not None
    assert loaded.last_entry() == TimestampOffset(1_700_000_000_001, 300)


def test_from_bytes_rejects_partial_rows():
    assert OffsetIndex.from_bytes(0, b"\x00" * 12, 10) is None
    assert TimeIndex.from_bytes(0, b"\x00" * 13, 10) is None


def test_truncate_drops_entries_at_and_after_offset():
    index = build_offset_index([1, 5, 9], [10, 50, 90])
    index.truncate_to(BASE + 5)
    assert index.last_entry() == OffsetPosition(BASE + 1, 10)
    times = TimeIndex(BASE, 10)
    for ts, off in ((1, 1), (2, 5), (3, 9)):
        times.maybe_append(ts, BASE + off)
    times.truncate_to(BASE + 6)
    assert times.last_entry() == TimestampOffset(2, BASE + 5)


def test_consistency_checks_reject_garbage():
    rng = random.Random(7)
    rejected = 0
    for _ in range(200):
        garbage = rng.randbytes(8 * rng.randint(2, 50))
        index = OffsetIndex.from_bytes(BASE, garbage, 10_000)
        assert index is not None
        rejected += not index.is_consistent(log_size=1 << 20)
    assert rejected == 200
    good = build_offset_index([1, 2, 3], [100, 200, 300])
    assert good.is_consistent(log_size=301)
    assert not good.is_consistent(log_size=300)  # an entry past the end of the log
    full = OffsetIndex(BASE, 2)
    full.append(BASE + 1, 1)
    full.append(BASE + 2, 2)
    assert full.is_full
