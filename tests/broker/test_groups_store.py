"""The offsets store: record codec, torn tails, compaction, group commit and real crashes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from firth.broker.groups import records as rec
from firth.broker.groups.errors import GroupStoreError
from firth.broker.groups.results import TopicPartition
from firth.broker.groups.store import OffsetStore


def sample_records() -> list[rec.Record]:
    return [
        rec.CommitRecord(
            "group-é",
            1_700_000_000_123,
            (
                rec.OffsetEntry("orders", 0, 42, 3, "meta"),
                rec.OffsetEntry("orders", 1, 0, -1, ""),
            ),
        ),
        rec.DeleteOffsetsRecord("group-é", (TopicPartition("orders", 1),)),
        rec.DeleteGroupRecord("other"),
        rec.CommitRecord("", 5, (rec.OffsetEntry("t" * 300, 2**31 - 1, 2**62, 0, "x" * 4096),)),
        rec.SnapshotEndRecord(4),
    ]


# ---------------------------------------------------------------- codec


def test_records_round_trip() -> None:
    records = sample_records()
    data = b"".join(rec.encode(r) for r in records)
    decoded, end = rec.decode(data)
    assert decoded == records and end == len(data)


def test_every_prefix_decodes_to_the_whole_records_it_contains() -> None:
    records = sample_records()
    encoded = [rec.encode(r) for r in records]
    boundaries = [0]
    for chunk in encoded:
        boundaries.append(boundaries[-1] + len(chunk))
    data = b"".join(encoded)
    for cut in range(len(data) + 1):
        decoded, end = rec.decode(data[:cut])
        complete = max(i for i, b in enumerate(boundaries) if b <= cut)
        assert decoded == records[:complete]
        assert end == boundaries[complete]


def test_garbage_after_good_records_is_excluded_exactly() -> None:
    rng = random.Random(7)
    data = b"".join(rec.encode(r) for r in sample_records())
    for _ in range(200):
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        decoded, end = rec.decode(data + garbage)
        assert end == len(data)
        assert decoded == sample_records()


def test_a_flipped_bit_stops_decoding_at_that_record() -> None:
    encoded = [rec.encode(r) for r in sample_records()]
    data = bytearray(b"".join(encoded))
    second_start = len(encoded[0])
    data[second_start + 9] ^= 0x10  # inside the second record's body
    decoded, end = rec.decode(bytes(data))
    assert decoded == sample_records()[:1] and end == second_start


def test_file_names() -> None:
    name = rec.file_name(12, rec.LOG_SUFFIX)
    assert name == "offsets-00000000000000000012.log"
    assert rec.parse_file_name(name) == (12, rec.LOG_SUFFIX)
    assert rec.parse_file_name("offsets-12.log") is None
    assert rec.parse_file_name("other.snapshot") is None


# ---------------------------------------------------------------- store


def entries(n: int, offset: int = 0) -> list[rec.OffsetEntry]:
    return [rec.OffsetEntry("t", p, offset + p, -1, f"m{p}") for p in range(n)]


def snapshot_of(store: OffsetStore) -> dict[str, dict[tuple[str, int], tuple[int, str]]]:
    return {
        g: {k: (v.offset, v.metadata) for k, v in store.offsets(g).items()}
        for g in store.group_ids()
    }


def test_commit_delete_and_reload(tmp_path: Path) -> None:
    async def write() -> dict[str, dict[tuple[str, int], tuple[int, str]]]:
        store = OffsetStore.open(tmp_path)
        await store.commit("a", entries(3), 1)
        await store.commit("a", [rec.OffsetEntry("t", 0, 100, 2, "new")], 2)
        await store.commit("b", entries(2), 3)
        await store.commit("c", entries(1), 4)
        await store.delete_offsets("a", [("t", 1)])
        await store.delete_group("b")
        state = snapshot_of(store)
        await store.close()
        return state

    before = asyncio.run(write())
    assert before == {
        "a": {("t", 0): (100, "new"), ("t", 2): (2, "m2")},
        "c": {("t", 0): (0, "m0")},
    }
    reopened = OffsetStore.open(tmp_path)
    assert snapshot_of(reopened) == before
    assert reopened.offsets("a")[("t", 0)].leader_epoch == 2
    assert reopened.offsets("a")[("t", 0)].commit_timestamp_ms == 2
    assert reopened.load_report.records_replayed == 6
    # Each start leaves one snapshot and one (fresh) log.
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [rec.parse_file_name(n)[1] for n in names] == [rec.LOG_SUFFIX, rec.SNAPSHOT_SUFFIX]  # type: ignore[index]
    asyncio.run(reopened.close())


def _current_log(directory: Path) -> Path:
    return max(directory.glob("*.log"))


@pytest.mark.parametrize("tail", [b"\x00\x00\x01", b"garbage!" * 10, "cut"])
def test_torn_tail_is_dropped_and_the_good_prefix_kept(tmp_path: Path, tail: object) -> None:
    async def write() -> None:
        store = OffsetStore.open(tmp_path)
        for i in range(10):
            await store.commit("g", [rec.OffsetEntry("t", 0, i, -1, "")], i)
        await store.close()

    asyncio.run(write())
    log = _current_log(tmp_path)
    if tail == "cut":
        # A record that was being written when the power went: only part of it is on disk.
        partial = rec.encode(rec.CommitRecord("g", 99, (rec.OffsetEntry("t", 0, 999, -1, ""),)))
        with log.open("ab") as out:
            out.write(partial[: len(partial) // 2])
    else:
        with log.open("ab") as out:
            out.write(tail)  # type: ignore[arg-type]
    store = OffsetStore.open(tmp_path)
    assert store.offsets("g")[("t", 0)].offset == 9
    assert store.load_report.records_replayed == 10
    assert store.load_report.truncated_bytes > 0
    asyncio.run(store.close())
    # The next start finds a clean state.
    again = OffsetStore.open(tmp_path)
    assert again.load_report.truncated_bytes == 0
    assert again.offsets("g")[("t", 0)].offset == 9


def test_compaction_bounds_the_files_and_keeps_the_state(tmp_path: Path) -> None:
    async def write() -> tuple[dict[str, dict[tuple[str, int], tuple[int, str]]], int]:
        store = OffsetStore.open(tmp_path, compact_after_bytes=4096)
        for i in range(300):
            await store.commit(f"g{i % 7}", entries(4, offset=i), i)
        await store.delete_group("g3")
        state = snapshot_of(store)
        await store.close()
        return state, store._sequence

    state, sequence = asyncio.run(write())
    assert sequence > 5  # it rotated many times
    assert len(list(tmp_path.glob("offsets-*"))) <= 3
    reopened = OffsetStore.open(tmp_path)
    assert snapshot_of(reopened) == state
    assert "g3" not in state and state["g6"][("t", 0)] == (293, "m0")
    asyncio.run(reopened.close())


def test_a_crash_between_snapshot_and_log_deletion_replays_idempotently(tmp_path: Path) -> None:
    async def write() -> None:
        store = OffsetStore.open(tmp_path)
        await store.commit("g", entries(2), 1)
        await store.delete_group("g")
        await store.commit("g", [rec.OffsetEntry("t", 5, 50, -1, "")], 2)
        await store.close()

    asyncio.run(write())
    log = _current_log(tmp_path)
    saved = log.read_bytes()
    first = OffsetStore.open(tmp_path)  # writes a snapshot covering the log, deletes the log
    expected = snapshot_of(first)
    asyncio.run(first.close())
    # Put the superseded log back, as if the crash came before its deletion.
    log.write_bytes(saved)
    second = OffsetStore.open(tmp_path)
    assert snapshot_of(second) == expected == {"g": {("t", 5): (50, "")}}
    asyncio.run(second.close())


def test_a_corrupt_newest_snapshot_falls_back_to_an_older_one(tmp_path: Path) -> None:
    async def write() -> None:
        store = OffsetStore.open(tmp_path)
        await store.commit("g", entries(1), 1)
        await store.close()

    asyncio.run(write())
    OffsetStore.open(tmp_path)  # snapshot N now holds g
    newest = max(tmp_path.glob("*.snapshot"))
    bogus = newest.with_name(rec.file_name(10**6, rec.SNAPSHOT_SUFFIX))
    bogus.write_bytes(rec.MAGIC + b"\x00" * 20)
    store = OffsetStore.open(tmp_path)
    assert store.load_report.corrupt_snapshots == 1
    assert store.offsets("g")[("t", 0)].offset == 0
    asyncio.run(store.close())


def test_concurrent_commits_share_fsyncs(tmp_path: Path) -> None:
    async def write() -> tuple[int, OffsetStore]:
        store = OffsetStore.open(tmp_path, fsync=True)
        await asyncio.gather(
            *[store.commit(f"g{i}", [rec.OffsetEntry("t", 0, i, -1, "")], i) for i in range(500)]
        )
        await store.close()
        return store.fsyncs, store

    fsyncs, store = asyncio.run(write())
    assert fsyncs < 100  # 500 commits; the first goes alone, the rest batch behind it
    assert len(store.group_ids()) == 500
    reopened = OffsetStore.open(tmp_path)
    assert reopened.offsets("g499")[("t", 0)].offset == 499
    asyncio.run(reopened.close())


def test_values_are_applied_only_once_durable(tmp_path: Path) -> None:
    async def body() -> None:
        store = OffsetStore.open(tmp_path)
        task = asyncio.ensure_future(store.commit("g", entries(1), 1))
        await asyncio.sleep(0)
        assert not store.has_offsets("g") or task.done()
        await task
        assert store.has_offsets("g")
        await store.close()

    asyncio.run(body())


def test_a_batch_shares_one_future_and_a_cancelled_waiter_leaves_it_alone(tmp_path: Path) -> None:
    async def body() -> None:
        store = OffsetStore.open(tmp_path)
        first = store.submit_commit("a", entries(1), 1)
        await asyncio.sleep(0)  # the flusher takes that batch and starts writing it
        second = store.submit_commit("b", entries(1), 2)
        third = store.submit_commit("c", entries(1), 3)
        assert second is third  # queued behind the write in flight: one batch, one future
        assert second is not first
        # Two callers in one batch; one goes away. Had it cancelled the shared future, the
        # other's wait would end in CancelledError.
        waiters = [asyncio.ensure_future(store.commit(g, entries(1), 4)) for g in "de"]
        await asyncio.sleep(0)
        waiters[0].cancel()
        await asyncio.gather(first, second, waiters[1])
        assert waiters[0].cancelled()
        await store.close()

    asyncio.run(body())
    reopened = OffsetStore.open(tmp_path)
    # The cancelled caller only stopped waiting: its record was submitted and made durable.
    assert sorted(reopened.group_ids()) == ["a", "b", "c", "d", "e"]
    asyncio.run(reopened.close())


def test_a_failed_write_fails_its_whole_batch_and_the_store_goes_on(tmp_path: Path) -> None:
    async def body() -> None:
        store = OffsetStore.open(tmp_path)
        real_write = store._write_batch

        def failing(data: bytes) -> None:
            store._write_batch = real_write  # type: ignore[method-assign]
            raise OSError(28, "No space left on device")

        store._write_batch = failing  # type: ignore[method-assign]
        failed = store.submit_commit("a", entries(1), 1)
        with pytest.raises(GroupStoreError):
            await asyncio.gather(store.commit("b", entries(1), 1), failed)
        assert failed.done() and isinstance(failed.exception(), GroupStoreError)
        assert not store.has_offsets("a") and not store.has_offsets("b")
        await store.commit("c", entries(1), 2)
        assert store.has_offsets("c")
        await store.close()

    asyncio.run(body())


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from firth.broker.groups import records as rec
    from firth.broker.groups.store import OffsetStore

    async def main():
        store = OffsetStore.open(Path(sys.argv[1]))
        i = 0
        while True:
            batch = [
                store.commit("g%d" % (k % 3), [rec.OffsetEntry("t", k % 3, i + k, -1, "")], i)
                for k in range(8)
            ]
            await asyncio.gather(*batch)
            i += 8
            print(i, flush=True)

    asyncio.run(main())
    """
)


def test_acknowledged_commits_survive_sigkill(tmp_path: Path) -> None:
    directory = tmp_path / "offsets"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= 400:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert acknowledged >= 400
    store = OffsetStore.open(directory)
    # Commit number k of round i wrote offset i+k to group g(k%3), partition k%3: every value
    # acknowledged before the kill must be there (or a later one).
    last_round = acknowledged - 8
    for k in range(3):
        expected = max(last_round + j for j in range(8) if j % 3 == k)
        assert store.offsets(f"g{k}")[("t", k)].offset >= expected
    asyncio.run(store.close())
