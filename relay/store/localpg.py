"""A throwaway PostgreSQL cluster (initdb + pg_ctl) for tests, benchmarks and one-box demos.

PostgreSQL refuses to run as root, so when we are root the cluster runs as the ``postgres``
system user (``runuser``) in a directory it owns under the system temp dir (pytest's own temp
dirs are root-only and postgres could not reach them). Nothing here is used by a real relay:
production points ``relay.store_url`` at a managed database.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from relay.procs import free_port

PG_BIN = Path(os.environ.get("BREATHE_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> str | None:
    """None when a cluster can be started here, else the reason it cannot."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL server binaries in {PG_BIN} (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' system user to run the server"
    return None


class LocalPostgres:
    """``with LocalPostgres() as pg: pg.url`` — a fresh cluster and database, removed after."""

    def __init__(self, *, durable: bool = False, database: str = "breathe_relay") -> None:
        self.durable = durable  # False: fsync off (tests); True: PostgreSQL defaults (bench)
        self.database = database
        self.port = free_port()
        self.directory: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")
        return done

    def start(self) -> LocalPostgres:
        reason = available()
        if reason:
            raise RuntimeError(reason)
        self.directory = Path(tempfile.mkdtemp(prefix="breathe-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        data = self.directory / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l",
                  str(self.directory / "server.log"), "-w", "-t", "60", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  self.database)
        return self

    def stop(self) -> None:
        if self.directory is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w",
                      "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
