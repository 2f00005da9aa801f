"""OffsetCommit rate benchmark for a Firth broker (issue 3, "Benchmark").

Starts its own broker (`firth serve` through `firth.testing.broker_process`, default
durability: every commit answered only after its record is fsynced) with a fresh temporary data
folder, measures, stops it, and prints one table.

The load: `--connections` sockets (16), each keeping `--in-flight` (64) standalone OffsetCommit
v8 requests outstanding (generation -1, empty member id, one group per connection), each request
committing 1 or 10 partitions of one topic. The client is a raw pipelined asyncio protocol on
uvloop that sends pre-built frames and counts responses (checking every partition's error code
in a sample), so that the broker rather than the client is measured; it runs in this process,
the broker in its own.

Every configuration runs `--repeat` times (default 3) for `--seconds` (3) each, interleaved;
the table shows medians. Broker CPU per request is the broker process's (user + system) CPU
seconds during the run, from /proc/<pid>/stat, divided by the requests answered: steadier than
the rates on a shared machine. The per-run lines also show how many cores the broker kept busy
and the client's own CPU per request: a broker below one core was not the bottleneck.

    python bench/group_commits.py
    python bench/group_commits.py --partitions 1 --repeat 5 --json
    python bench/group_commits.py --profile /tmp/commit-profile   # plus py-spy collapsed stacks per run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import cast

from firth.kafka.protocol.framing import FrameReader
from firth.kafka.protocol.header import RequestHeader, encode_request_header
from firth.testing import broker_process

OFFSET_COMMIT, OFFSET_COMMIT_VERSION = 8, 8
CHECK_EVERY = 64
"""Decode and check every partition's error code of one response in this many."""

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _compact_string(text: str) -> bytes:
    raw = text.encode()
    return _uvarint(len(raw) + 1) + raw


def offset_commit_frame(group: str, topic: str, partitions: int, offset: int) -> bytes:
    """One framed standalone OffsetCommit v8 request (flexible: compact strings, tag buffers)."""
    header = encode_request_header(
        RequestHeader(OFFSET_COMMIT, OFFSET_COMMIT_VERSION, 1, "bench-commits")
    )
    body = [
        _compact_string(group),
        _I32.pack(-1),  # generation_id
        _compact_string(""),  # member_id
        b"\x00",  # group_instance_id: null
        _uvarint(2),  # one topic
        _compact_string(topic),
        _uvarint(partitions + 1),
    ]
    for index in range(partitions):
        # partition, committed_offset, committed_leader_epoch, metadata "" , tags
        body.append(_I32.pack(index) + _I64.pack(offset) + _I32.pack(-1) + b"\x01\x00")
    body.append(b"\x00\x00")  # topic tags, request tags
    payload = header + b"".join(body)
    return _I32.pack(len(payload)) + payload


def check_response(frame: bytes | memoryview, partitions: int) -> None:
    """Every partition of a v8 response (header v1) answered with error code 0."""
    data = bytes(frame)
    # correlation id (4), header tags (1), throttle (4), topics (uvarint 2), name, partitions
    pos = 4 + 1 + 4
    if data[pos] != 2:
        raise RuntimeError(f"unexpected topic count in {data!r}")
    pos += 1
    name_len = data[pos] - 1
    pos += 1 + name_len
    count = data[pos] - 1
    pos += 1
    if count != partitions:
        raise RuntimeError(f"{count} partitions answered, {partitions} committed")
    for _ in range(count):
        (error,) = _I16.unpack_from(data, pos + 4)
        if error != 0:
            raise RuntimeError(f"OffsetCommit error code {error}")
        pos += 7


class Committer(asyncio.Protocol):
    """Keeps `in_flight` copies of one frame outstanding until `stop`, counting answers."""

    def __init__(self, frame: bytes, in_flight: int, partitions: int, stop: float) -> None:
        self.frame = frame
        self.in_flight = in_flight
        self.partitions = partitions
        self.stop = stop
        self.reader = FrameReader()
        self.outstanding = 0
        self.answered = 0
        self.transport: asyncio.Transport | None = None
        self.finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.outstanding = self.in_flight
        self.transport.write(self.frame * self.in_flight)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        resend = 0
        now_ok = time.monotonic() < self.stop
        while (frame := self.reader.next_frame()) is not None:
            self.answered += 1
            self.outstanding -= 1
            if self.answered % CHECK_EVERY == 0:
                check_response(frame, self.partitions)
            if now_ok:
                resend += 1
        if resend:
            assert self.transport is not None
            self.outstanding += resend
            self.transport.write(self.frame * resend)
        if not self.outstanding and not self.finished.done():
            self.finished.set_result(self.answered)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_exception(exc or ConnectionError("the broker closed the socket"))


async def _load(
    host: str, port: int, frames: list[bytes], in_flight: int, partitions: int, seconds: float
) -> tuple[int, float]:
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    stop = started + seconds
    committers = []
    for frame in frames:
        _, committer = await loop.create_connection(
            partial(Committer, frame, in_flight, partitions, stop), host, port
        )
        committers.append(committer)
    counts = await asyncio.gather(*(c.finished for c in committers))
    elapsed = time.monotonic() - started
    for committer in committers:
        assert committer.transport is not None
        committer.transport.close()
    return sum(counts), elapsed


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    partitions: int
    requests: int
    seconds: float
    broker_cpu_s: float
    client_cpu_s: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.broker_cpu_s / self.requests * 1e6


def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--profile", type=Path, help="folder for py-spy collapsed stacks, one file per run"
    )
    args = parser.parse_args()

    import uvloop

    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp, broker_process(Path(tmp) / "data") as broker:
        host, _, port = broker.bootstrap.rpartition(":")
        topic = "bench-commits"
        _create_topic(broker.bootstrap, topic, max(args.partitions))
        for repeat in range(args.repeat):
            for partitions in args.partitions:
                frames = [
                    offset_commit_frame(f"bench-{c}", topic, partitions, repeat)
                    for c in range(args.connections)
                ]
                spy = None
                if args.profile:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    out = args.profile / f"commit-{partitions}p-{repeat}.txt"
                    spy = subprocess.Popen(
                        [
                            "py-spy",
                            "record",
                            "-r",
                            "200",
                            "-f",
                            "raw",
                            "-o",
                            str(out),
                            "-p",
                            str(broker.pid),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    time.sleep(1.0)
                cpu_before = _cpu_seconds(broker.pid)
                client_before = _own_cpu_seconds()
                requests, elapsed = uvloop.run(
                    _load(host, int(port), frames, args.in_flight, partitions, args.seconds)
                )
                cpu = _cpu_seconds(broker.pid) - cpu_before
                client_cpu = _own_cpu_seconds() - client_before
                if spy is not None:
                    spy.send_signal(2)
                    spy.wait(30)
                runs.append(Run(partitions, requests, elapsed, cpu, client_cpu))
                if not args.json:
                    print(
                        f"  run {repeat + 1}, {partitions} partition(s): "
                        f"{requests / elapsed:,.0f} req/s, broker {cpu / requests * 1e6:.0f} µs "
                        f"CPU/req ({cpu / elapsed:.2f} cores), client "
                        f"{client_cpu / requests * 1e6:.0f} µs CPU/req",
                        file=sys.stderr,
                    )

    rows = []
    for partitions in args.partitions:
        mine = [r for r in runs if r.partitions == partitions]
        rate = statistics.median(r.requests_per_s for r in mine)
        rows.append(
            {
                "partitions_per_request": partitions,
                "requests_per_s": rate,
                "offsets_per_s": rate * partitions,
                "broker_cpu_us_per_request": statistics.median(r.cpu_us_per_request for r in mine),
                "runs": [asdict(r) for r in mine],
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    sys.stderr.flush()
    print(
        f"\nOffsetCommit v8, standalone, fsync on: {args.connections} connections x "
        f"{args.in_flight} in flight, {args.seconds:g} s x {args.repeat} runs (medians)\n"
    )
    print("| partitions/request | requests/s | offsets/s | broker CPU µs/request |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['partitions_per_request']} | {row['requests_per_s']:,.0f} "
            f"| {row['offsets_per_s']:,.0f} | {row['broker_cpu_us_per_request']:.0f} |"
        )


if __name__ == "__main__":
    main()
