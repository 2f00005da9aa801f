"""A read-only local admin endpoint: what ``firth queues|exchanges|bindings list`` show.

AMQP 0-9-1 has no way to list queues or exchanges, and Firth has no HTTP admin API yet, so the
AMQP server also listens on a Unix socket in the data folder (``__amqp/admin.sock``, mode
0600: only the broker's user can connect). A client sends one JSON line
``{"op": "queues" | "exchanges" | "bindings"}`` and reads one JSON line back; the server
closes the connection after answering. Nothing here changes state: purge and delete go through
AMQP itself (queue.purge, queue.delete), like any client's.

Rates (messages per second published, delivered, acknowledged) are the difference of each
queue's counters between two samples taken a second apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from firth.broker.queues import VirtualHost
from firth.broker.queues.vhost import _table_to_json

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0
MAX_UNIX_PATH = 100


class AdminServer:
    def __init__(self, vhost: VirtualHost, path: Path) -> None:
        self.vhost = vhost
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._last: dict[str, tuple[float, int, int, int]] = {}
        self.rates: dict[str, tuple[float, float, float]] = {}

    async def start(self) -> None:
        if len(os.fsencode(self.path)) > MAX_UNIX_PATH:
            logger.warning(
                "admin socket path %s is too long; `firth queues list` is off", self.path
            )
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o600)
        self._sampler = asyncio.get_running_loop().create_task(self._sample_forever())

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        if self._server is not None:
            self._server.close()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            self.sample()

    def sample(self) -> None:
        now = time.monotonic()
        last, self._last = self._last, {}
        for name, queue in self.vhost.queues.items():
            counters = (now, queue.published, queue.delivered, queue.acked)
            self._last[name] = counters
            before = last.get(name)
            if before is not None and now > before[0]:
                elapsed = now - before[0]
                self.rates[name] = tuple(  # type: ignore[assignment]
                    (counters[i] - before[i]) / elapsed for i in (1, 2, 3)
                )
        for name in set(self.rates) - set(self._last):
            del self.rates[name]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                request = json.loads(line)
                answer = self.answer(str(request.get("op")))
            except (ValueError, AttributeError) as error:
                answer = {"error": f"bad request: {error}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def answer(self, op: str) -> dict[str, Any]:
        vhost = self.vhost
        if op == "queues":
            rows = []
            for name, queue in sorted(vhost.queues.items()):
                publish, deliver, ack = self.rates.get(name, (0.0, 0.0, 0.0))
                rows.append(
                    {
                        "name": name,
                        "durable": queue.durable,
                        "exclusive": queue.exclusive_owner is not None,
                        "auto_delete": queue.auto_delete,
                        "arguments": _table_to_json(queue.raw_arguments),
                        "ready": queue.ready_count,
                        "unacked": queue.unacked_count,
                        "consumers": queue.consumer_count,
                        "publish_rate": round(publish, 1),
                        "deliver_rate": round(deliver, 1),
                        "ack_rate": round(ack, 1),
                    }
                )
            return {"queues": rows}
        if op == "exchanges":
            return {
                "exchanges": [
                    {
                        "name": x.name,
                        "type": x.type,
                        "durable": x.durable,
                        "auto_delete": x.auto_delete,
                        "internal": x.internal,
                        "arguments": _table_to_json(x.arguments),
                    }
                    for x in sorted(vhost.router.exchanges.values(), key=lambda x: x.name)
                ]
            }
        if op == "bindings":
            implicit = [
                {
                    "source": "",
                    "destination": name,
                    "destination_type": "queue",
                    "routing_key": name,
                    "arguments": {},
                }
                for name in sorted(vhost.queues)
            ]
            explicit = [
                {
                    "source": b.source,
                    "destination": b.destination,
                    "destination_type": b.kind,
                    "routing_key": b.routing_key,
                    "arguments": _table_to_json(arguments),
                }
                for b, arguments in sorted(
                    vhost.router.bindings(),
                    key=lambda item: (item[0].source, item[0].destination, item[0].routing_key),
                )
            ]
            return {"bindings": implicit + explicit}
        return {"error": f"unknown op {op!r}"}


def request(path: Path, op: str, timeout: float = 5.0) -> dict[str, Any]:
    """Client side (blocking): one request to the admin socket at ``path``."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"op": op}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    result: dict[str, Any] = json.loads(data)
    return result
