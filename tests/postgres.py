"""A PostgreSQL of the tests' own, for the receipt log's tests (tests/test_receipts_pg.py):
Debian's `postgresql` package (`/usr/lib/postgresql/*/bin`: its binaries are not on PATH),
initdb into a temporary directory, listening on a Unix socket there only (no TCP port, so
nothing on this machine can reach it but its user and root), trust authentication for its one
user. initdb and postgres refuse to run as root: as root, they run as the `postgres` user the
package creates, owning the directory. Stopped (`pg_ctl stop -m immediate`) and the directory
removed at the end.

`postgres_binaries()` says why a server cannot be had here, for the skip reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_binaries() -> tuple[Path | None, str]:
    """The newest Debian PostgreSQL's bin directory, or None and the reason it cannot be used."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        return (
            None,
            "no PostgreSQL: apt-get install -y postgresql (Debian's package; /usr/lib/postgresql/*/bin)",
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return None, "running as root, and no postgres user to run PostgreSQL as (initdb refuses root)"
    return Path(found[-1]).parent, ""


@contextmanager
def postgres_server() -> Iterator[str]:
    """A running PostgreSQL; its connection URL (a Unix socket, user `llr`, database `llr`)."""
    binaries, why = postgres_binaries()
    if binaries is None:
        raise RuntimeError(why)
    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="llr-pg-"))  # short: a socket path is at most 107 bytes
    data, socket = folder / "data", folder
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(folder, account.pw_uid, account.pw_gid)
    os.chmod(folder, 0o700)

    def run(*command: str) -> None:
        subprocess.run(command, check=True, capture_output=True, user=user, timeout=120)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "llr", "-A", "trust", "--no-sync", "-E", "UTF8")
        run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-c listen_addresses='' -k {socket} -c fsync=off -c max_connections=50",
            "start",
        )
        url = f"postgresql://llr@/postgres?host={socket}"
        deadline = time.monotonic() + 30
        while True:  # the server answers: make the tests' database
            done = subprocess.run(
                [str(binaries / "createdb"), "-h", str(socket), "-U", "llr", "llr"],
                capture_output=True,
                user=user,
            )
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        yield url.replace("/postgres?", "/llr?")
    finally:
        subprocess.run(
            [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            user=user,
        )
        shutil.rmtree(folder, ignore_errors=True)
