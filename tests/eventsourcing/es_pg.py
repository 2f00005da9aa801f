"""A throwaway PostgreSQL server for the event-sourcing tests.

`start()` runs initdb into a fresh temporary folder and starts postgres on a free loopback port
with its unix socket in that folder; as root it runs both as the unprivileged `nobody` user
(PostgreSQL refuses to run as root). It waits until the server accepts connections and
`stop()` shuts it down and removes the folder. Fast, non-durable settings (fsync=off): the
tests check the store's logic, not the disk.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

import psycopg


def find_bin(name: str) -> str | None:
    for candidate in [
        f"/usr/local/bin/{name}",
        *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")),
    ]:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    folder: str
    port: int
    process: subprocess.Popen[bytes]
    user: str = "postgres"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(timeout: float = 60.0, *, durable: bool = False, parent: str | None = None) -> PgServer:
    """Start a server; `durable` keeps fsync on (benchmarks), `parent` is where its folder goes."""
    initdb, postgres = find_bin("initdb"), find_bin("postgres")
    if not initdb or not postgres:
        raise FileNotFoundError("no PostgreSQL binaries (initdb, postgres) on this machine")
    folder = tempfile.mkdtemp(prefix="firth-es-pg-", dir=parent)
    prefix: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        prefix = [
            "setpriv",
            f"--reuid={nobody.pw_uid}",
            f"--regid={nobody.pw_gid}",
            "--clear-groups",
        ]
    data = os.path.join(folder, "data")
    subprocess.run(
        [*prefix, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "LC_ALL": "C"},
    )
    port = _free_port()
    settings = {"listen_addresses": "127.0.0.1", "max_connections": "200", "shared_buffers": "32MB"}
    if not durable:
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
    log = open(os.path.join(folder, "postgres.log"), "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [*prefix, postgres, "-D", data, "-p", str(port), "-k", folder, *options],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PgServer(folder, port, process)
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(server.url(), connect_timeout=2).close()
            return server
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"postgres did not start; see {folder}/postgres.log") from None
            time.sleep(0.05)
