"""Recovery: after a crash the log keeps exactly the valid prefix; indexes are rebuilt.

A "crash" here is `flush()` then `abandon()`: the files are as a kill -9 leaves them after the
kernel wrote everything out; then the test damages them the way torn writes and bad disks do.
"""

from __future__ import annotations

import glob
import os
import random
import shutil

import pytest

from firth.log import Log, LogConfig
from firth.log.files import (
    CLEAN_SHUTDOWN_FILE,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    RECOVERY_POINT_FILE,
    TIME_INDEX_SUFFIX,
    TMP_SUFFIX,
    segment_file_name,
)
from tests.log.logbatches import make_batch

SMALL = LogConfig(segment_bytes=2048, index_interval_bytes=200)


@pytest.fixture
def no_fsync(monkeypatch):
    """For tests that reopen a log hundreds of times: what they check is the content recovery
    keeps, not durability, and fsyncs on a shared disk would make them slow."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    monkeypatch.setattr(os, "fdatasync", lambda fd: None)


def build(log_dir: str, count: int, config: LogConfig, seed: int, *, clean: bool = False):
    """Append `count` random batches; return [(base, bytes)] in order."""
    rng = random.Random(seed)
    batches: list[tuple[int, bytes]] = []
    log = Log.open(log_dir, config)
    ts = 5_000
    for _ in range(count):
        ts += rng.randint(0, 10)
        batch, header = make_batch(
            rng.randint(1, 4), timestamp=ts, payload_size=rng.randint(0, 150)
        )
        batches.append((log.append(batch, header), bytes(batch)))
    if clean:
        log.close()
    else:
        log.flush()
        log.abandon()
    return batches


def log_path(log_dir: str, base: int) -> str:
    return os.path.join(log_dir, segment_file_name(base, LOG_SUFFIX))


def contents(log: Log) -> bytes:
    return log.read(log.log_start_offset, 10**9).read_bytes() if log.log_end_offset else b""


def assert_prefix(log_dir: str, batches: list[tuple[int, bytes]], keep: int, config: LogConfig):
    """Reopen and check the log holds exactly batches[:keep] and accepts appends after them."""
    with Log.open(log_dir, config) as log:
        expected_end = batches[keep][0] if keep < len(batches) else _end(batches)
        assert log.log_end_offset == expected_end
        assert contents(log) == b"".join(data for _, data in batches[:keep])
        assert sum(os.path.getsize(p) for p in glob.glob(os.path.join(log_dir, "*.log"))) == sum(
            len(data) for _, data in batches[:keep]
        )
        assert log.append(*make_batch()) == expected_end
        report = log.load_report
    with Log.open(log_dir, config) as log:  # and what recovery left is itself a clean log
        assert log.log_end_offset == expected_end + 1
    return report


def _end(batches: list[tuple[int, bytes]]) -> int:
    from firth.wire.recordbatch import parse_header

    return parse_header(batches[-1][1]).next_offset


@pytest.mark.parametrize("length", [1, 11, 12, 60, 61, 200, 5000])
def test_garbage_after_the_last_batch_is_cut(tmp_path, length):
    log_dir = str(tmp_path / "p")
    batches = build(log_dir, 40, SMALL, seed=length)
    last = sorted(glob.glob(os.path.join(log_dir, "*.log")))[-1]
    with open(last, "ab") as file:
        file.write(random.Random(length).randbytes(length))
    report = assert_prefix(log_dir, batches, len(batches), SMALL)
    assert report.bytes_truncated == length


def test_zeros_after_the_last_batch_are_cut(log_dir):
    batches = build(log_dir, 10, LogConfig(), seed=1)
    with open(log_path(log_dir, 0), "ab") as file:
        file.write(bytes(4096))
    assert_prefix(log_dir, batches, len(batches), LogConfig())


def test_truncation_at_every_byte_of_the_last_batch(tmp_path, no_fsync):
    original = str(tmp_path / "original")
    batches = build(original, 12, LogConfig(index_interval_bytes=64), seed=2)
    total = sum(len(data) for _, data in batches)
    last_start = total - len(batches[-1][1])
    for cut in range(last_start, total):
        trial = str(tmp_path / f"cut-{cut}")
        shutil.copytree(original, trial)
        os.truncate(log_path(trial, 0), cut)
        report = assert_prefix(trial, batches, len(batches) - 1, LogConfig(index_interval_bytes=64))
        assert report.bytes_truncated == cut - last_start
        shutil.rmtree(trial)


def flip_positions(size: int) -> list[int]:
    """Every byte recovery must notice: all but partitionLeaderEpoch (12-15), which the
    format leaves outside the CRC and which the broker may rewrite."""
    return [p for p in range(size) if not 12 <= p < 16]


def test_flipped_bits_keep_exactly_the_batches_before(tmp_path, no_fsync):
    rng = random.Random(3)
    original = str(tmp_path / "original")
    config = LogConfig(index_interval_bytes=300)
    batches = build(original, 30, config, seed=3)
    starts = []
    position = 0
    for _, data in batches:
        starts.append(position)
        position += len(data)
    for trial_number in range(60):
        victim = rng.randrange(len(batches))
        byte = rng.choice(flip_positions(len(batches[victim][1])))
        trial = str(tmp_path / f"flip-{trial_number}")
        shutil.copytree(original, trial)
        with open(log_path(trial, 0), "r+b") as file:
            file.seek(starts[victim] + byte)
            value = file.read(1)[0]
            file.seek(starts[victim] + byte)
            file.write(bytes([value ^ (1 << rng.randrange(8))]))
        assert_prefix(trial, batches, victim, config)
        shutil.rmtree(trial)


def test_corruption_in_an_early_segment_drops_the_later_ones(log_dir):
    batches = build(log_dir, 60, SMALL, seed=4)
    os.unlink(os.path.join(log_dir, RECOVERY_POINT_FILE))  # no hint: verify from the start
    bases = sorted(int(os.path.basename(p)[:20]) for p in glob.glob(os.path.join(log_dir, "*.log")))
    assert len(bases) >= 4
    victim = next(i for i, (base, _) in enumerate(batches) if base > bases[1])  # inside segment 1
    offset_in_file = sum(len(d) for b, d in batches if bases[1] <= b < batches[victim][0])
    with open(log_path(log_dir, bases[1]), "r+b") as file:
        file.seek(offset_in_file + 40)
        file.write(b"\xff")
    report = assert_prefix(log_dir, batches, victim, SMALL)
    assert report.recovered_from == bases[0]
    assert report.segments_dropped == len(bases) - 2
    assert not os.path.exists(log_path(log_dir, bases[2]))


def test_recovery_starts_at_the_recovery_point_segment(log_dir):
    batches = build(log_dir, 60, SMALL, seed=5)
    bases = sorted(int(os.path.basename(p)[:20]) for p in glob.glob(os.path.join(log_dir, "*.log")))
    with Log.open(log_dir, SMALL) as log:
        report = log.load_report
        assert not report.clean_shutdown
        assert report.recovered_from == bases[-1]
        assert report.segments_verified == 1
        assert contents(log) == b"".join(d for _, d in batches)


def test_torn_tail_of_a_cleanly_closed_log_is_caught_by_the_tail_check(log_dir):
    batches = build(log_dir, 30, SMALL, seed=6, clean=True)
    last = sorted(glob.glob(os.path.join(log_dir, "*.log")))[-1]
    os.truncate(last, os.path.getsize(last) - 1)
    with Log.open(log_dir, SMALL) as log:
        assert log.load_report.clean_shutdown
        assert log.load_report.recovered_from is not None
        assert contents(log) == b"".join(d for _, d in batches[:-1])


def test_flipped_bit_in_last_batch_of_a_cleanly_closed_log(log_dir):
    batches = build(log_dir, 30, SMALL, seed=7, clean=True)
    last = sorted(glob.glob(os.path.join(log_dir, "*.log")))[-1]
    size = os.path.getsize(last)
    with open(last, "r+b") as file:
        file.seek(size - 3)
        file.write(b"\x00\x01\x02")
    assert_prefix(log_dir, batches, len(batches) - 1, SMALL)


def test_clean_marker_is_removed_while_open(log_dir):
    build(log_dir, 5, SMALL, seed=8, clean=True)
    marker = os.path.join(log_dir, CLEAN_SHUTDOWN_FILE)
    assert os.path.exists(marker)
    log = Log.open(log_dir, SMALL)
    assert not os.path.exists(marker)
    log.append(*make_batch())
    log.abandon()
    with Log.open(log_dir, SMALL) as reopened:
        assert not reopened.load_report.clean_shutdown
        assert reopened.log_end_offset == log.log_end_offset


def index_files(log_dir: str) -> dict[str, bytes]:
    out = {}
    for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
        for path in glob.glob(os.path.join(log_dir, "*" + suffix)):
            with open(path, "rb") as file:
                out[os.path.basename(path)] = file.read()
    return out


def probe(log: Log) -> tuple:
    """Observable answers that depend on the indexes."""
    reads = tuple(log.read(o, 700).read_bytes() for o in range(0, log.log_end_offset, 5))
    times = tuple(log.offset_for_timestamp(t) for t in range(4_990, 5_400, 7))
    return reads, times


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "empty"])
def test_damaged_index_files_are_rebuilt_identically(log_dir, damage):
    build(log_dir, 80, SMALL, seed=9, clean=True)
    before = index_files(log_dir)
    assert len(before) >= 8
    with Log.open(log_dir, SMALL) as log:
        answers = probe(log)
    rng = random.Random(damage)
    for name, data in before.items():
        path = os.path.join(log_dir, name)
        if damage == "missing":
            os.unlink(path)
        elif damage == "garbage":
            with open(path, "wb") as file:
                file.write(rng.randbytes(len(data) or 24))
        elif damage == "truncated" and data:
            os.truncate(path, len(data) - 3)
        elif damage == "empty" and data:
            os.truncate(path, 0)
    with Log.open(log_dir, SMALL) as log:
        assert log.load_report.indexes_rebuilt > 0
        assert probe(log) == answers
        assert index_files(log_dir) == before  # rewritten on open, byte for byte


def test_crash_without_any_flush_of_rolled_segments(log_dir):
    """Rolled segments whose indexes were never saved are verified and indexed on open."""
    log = Log.open(log_dir, SMALL)
    batches = []
    for i in range(50):
        batch, header = make_batch(payload_size=100 + i)
        batches.append((log.append(batch, header), bytes(batch)))
    log.abandon()
    assert len(glob.glob(os.path.join(log_dir, "*.log"))) >= 5
    assert not glob.glob(os.path.join(log_dir, "*" + INDEX_SUFFIX))
    report = assert_prefix(log_dir, batches, len(batches), SMALL)
    assert report.recovered_from == 0


def test_missing_middle_segment_ends_the_log_before_it(log_dir):
    batches = build(log_dir, 60, SMALL, seed=10, clean=True)
    bases = sorted(int(os.path.basename(p)[:20]) for p in glob.glob(os.path.join(log_dir, "*.log")))
    os.unlink(log_path(log_dir, bases[2]))
    keep = next(i for i, (base, _) in enumerate(batches) if base == bases[2])
    assert_prefix(log_dir, batches, keep, SMALL)


def test_garbage_files_are_swept(log_dir):
    build(log_dir, 5, SMALL, seed=11, clean=True)
    strays = [
        os.path.join(log_dir, segment_file_name(999, INDEX_SUFFIX)),  # index without a log
        os.path.join(log_dir, RECOVERY_POINT_FILE + TMP_SUFFIX),
    ]
    for path in strays:
        with open(path, "wb") as file:
            file.write(b"junk")
    with Log.open(log_dir, SMALL) as log:
        assert log.load_report.garbage_files_removed == 2
    assert not any(os.path.exists(p) for p in strays)


def test_garbage_checkpoint_files_read_as_absent(log_dir):
    batches = build(log_dir, 20, SMALL, seed=12)
    with open(os.path.join(log_dir, RECOVERY_POINT_FILE), "wb") as file:
        file.write(b"\x00garbage\n")
    with open(os.path.join(log_dir, CLEAN_SHUTDOWN_FILE), "wb") as file:
        file.write(b"not a marker")
    with Log.open(log_dir, SMALL) as log:
        assert not log.load_report.clean_shutdown
        assert log.load_report.recovered_from == 0  # no usable hint: verify everything
        assert contents(log) == b"".join(d for _, d in batches)


def test_inactive_index_damage_the_probe_cannot_see_is_caught_at_first_use(log_dir):
    """Inactive segments' index files are read lazily; an entry damaged in the middle (the
    probe reads only the last one) is found at the first lookup and the index rebuilt."""
    build(log_dir, 80, SMALL, seed=13, clean=True)
    before = index_files(log_dir)
    with Log.open(log_dir, SMALL) as log:
        answers = probe(log)
        bases = log.segment_base_offsets
    name = segment_file_name(bases[1], INDEX_SUFFIX)
    original = before[name]
    assert len(original) >= 3 * 8
    damaged = bytearray(original)
    damaged[8:16] = bytes.fromhex("7fffffff 7fffffff")  # entry 1: absurd offset and position
    with open(os.path.join(log_dir, name), "wb") as file:
        file.write(damaged)
    with Log.open(log_dir, SMALL) as log:
        assert log.load_report.clean_shutdown
        assert log.load_report.indexes_rebuilt == 0  # the probe accepted the file
        assert probe(log) == answers  # the first lookup rejected it and rebuilt the index
    assert index_files(log_dir) == before  # the rebuilt index was saved at close


@pytest.mark.slow
def test_soak_random_tail_damage(tmp_path, no_fsync):
    """Many random logs, each damaged once in its last segment (truncation anywhere, garbage
    appended, or a bit flipped in a CRC-covered byte); recovery keeps exactly the prefix of
    batches that lie wholly before the damage."""
    rng = random.Random(2026)
    for trial in range(300):
        log_dir = str(tmp_path / f"t{trial}")
        batches = build(log_dir, rng.randint(1, 80), SMALL, seed=trial)
        last = sorted(glob.glob(os.path.join(log_dir, "*.log")))[-1]
        last_base = int(os.path.basename(last)[:20])
        first = next(i for i, (base, _) in enumerate(batches) if base >= last_base)
        starts, position = [], 0
        for _, data in batches[first:]:
            starts.append(position)
            position += len(data)
        size = position
        kind = rng.choice(["truncate", "garbage", "flip"]) if size else "garbage"
        if kind == "truncate":
            cut = rng.randrange(size)
            os.truncate(last, cut)
            keep = first + sum(
                1 for s, (_, d) in zip(starts, batches[first:], strict=True) if s + len(d) <= cut
            )
        elif kind == "garbage":
            with open(last, "ab") as file:
                file.write(rng.randbytes(rng.randint(1, 3000)))
            keep = len(batches)
        else:
            victim = rng.randrange(len(starts))
            byte = rng.choice(flip_positions(len(batches[first + victim][1])))
            with open(last, "r+b") as file:
                file.seek(starts[victim] + byte)
                value = file.read(1)[0]
                file.seek(starts[victim] + byte)
                file.write(bytes([value ^ (1 << rng.randrange(8))]))
            keep = first + victim
        assert_prefix(log_dir, batches, keep, SMALL)
        shutil.rmtree(log_dir)
