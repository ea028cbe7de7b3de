"""The embedded PostgreSQL: started on first use, shared, stopped by its last user, and a clear
message (never a hang) for a stale lock or a lock another process holds.

Each test runs a cluster of its own under var/ (the server's account, `nobody` when the tests
run as root, must be able to reach it, which the pytest temp dir under /tmp may not allow), and
real processes of its own as the other users.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from arbsite.embedded_postgres import (
    BASE_DIR,
    DATABASE,
    PORT,
    SOCKET_PATH_MAX,
    SUPERUSER,
    Cluster,
    EmbeddedPostgresError,
    run_tool,
    server_user,
    socket_dir,
)

# Another user of the cluster at argv[1]: joins, says so, and leaves at the end of its input.
JOIN = """
import sys
from pathlib import Path
from arbsite.embedded_postgres import Cluster
Cluster(Path(sys.argv[1])).ensure_running()
print("joined", flush=True)
if sys.stdin.readline().strip() == "die":
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
"""
HOLD_START_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def cluster():
    root = BASE_DIR / "var" / f"test-postgres-{uuid.uuid4().hex[:8]}"
    made = Cluster(root)
    made.lock_wait_s = 1
    yield made
    made.release()  # a test that failed half-way may still be using it
    if (made.data / "postmaster.pid").exists():
        run_tool("pg_ctl", "stop", "-D", str(made.data), "-m", "immediate", "-w", timeout=60)
    shutil.rmtree(root, ignore_errors=True)


def other_process(code: str, *args: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=BASE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    assert line in {"joined", "holding"}, process.stderr.read()
    return process


def connect(cluster: Cluster) -> psycopg.Connection:
    return psycopg.connect(
        host=str(cluster.socket_dir), port=PORT, user=SUPERUSER, dbname=DATABASE, autocommit=True
    )


def postmaster_pid(cluster: Cluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def test_first_use_creates_and_starts_the_server_on_a_private_socket_only(cluster):
    cluster.ensure_running()

    with connect(cluster) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        assert conn.execute("SELECT 0.1::numeric * 3").fetchone() == (Decimal("0.3"),)
    assert (cluster.data / "PG_VERSION").exists()
    assert cluster.socket_dir.stat().st_mode & 0o777 == 0o700
    assert cluster.release() is True
    assert not cluster.is_ready()


def test_the_server_stops_only_when_its_last_user_leaves(cluster):
    cluster.ensure_running()
    other = other_process(JOIN, str(cluster.root))

    assert cluster.release() is False  # the other process still uses it
    assert cluster.is_ready()
    other.communicate("\n", timeout=60)  # it leaves: its exit stops the server

    assert other.returncode == 0
    assert not cluster.is_ready()


def test_a_server_left_by_a_killed_process_is_reused_and_then_stopped(cluster):
    other = other_process(JOIN, str(cluster.root))
    left_running = postmaster_pid(cluster)
    other.communicate("die\n", timeout=60)
    assert other.returncode == -9

    cluster.ensure_running()

    assert postmaster_pid(cluster) == left_running
    assert cluster.release() is True
    assert not cluster.is_ready()


def test_lock_files_of_a_dead_server_do_not_stop_a_start(cluster):
    cluster.ensure_running()
    pid_file = (cluster.data / "postmaster.pid").read_text()
    socket_lock = cluster.socket_dir / f".s.PGSQL.{PORT}.lock"
    socket_lock_text = socket_lock.read_text()
    cluster.release()
    finished = subprocess.Popen(["true"])
    finished.wait()  # its PID now belongs to no process
    dead_pid = str(finished.pid)
    for path, text in (
        (cluster.data / "postmaster.pid", pid_file),
        (socket_lock, socket_lock_text),
    ):
        path.write_text(text.replace(text.split()[0], dead_pid, 1))

    cluster.ensure_running()

    with connect(cluster) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert cluster.release() is True


def test_a_lock_file_that_a_live_process_seems_to_own_says_which_file_to_remove(cluster):
    cluster.ensure_running()
    pid_file = cluster.data / "postmaster.pid"
    text = pid_file.read_text()
    cluster.release()
    # A PID reused by a process of the server's own account, as after a reboot (PostgreSQL
    # takes a PID of another account's process for stale by itself).
    user = server_user()
    as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    squatter = subprocess.Popen(["sleep", "120"], **as_user)
    try:
        pid_file.write_text(text.replace(text.split()[0], str(squatter.pid), 1))

        with pytest.raises(EmbeddedPostgresError, match="could not start") as error:
            cluster.ensure_running()
    finally:
        squatter.kill()
        squatter.wait()

    assert 'lock file "postmaster.pid" already exists' in str(error.value)
    assert f"remove {pid_file}" in str(error.value)
    pid_file.unlink()  # what the message says to do
    cluster.ensure_running()
    assert cluster.release() is True


def test_a_start_lock_held_by_a_stuck_process_gives_a_clear_error_instead_of_waiting(cluster):
    cluster.root.mkdir(parents=True)
    holder = other_process(HOLD_START_LOCK, str(cluster.root / "start.lock"))
    try:
        with pytest.raises(EmbeddedPostgresError, match=r"Another process has held .*start\.lock"):
            cluster.ensure_running()
    finally:
        holder.communicate("\n", timeout=60)

    assert not (cluster.data / "PG_VERSION").exists()
    cluster.ensure_running()  # once it lets go
    assert cluster.release() is True


def test_a_checkout_too_deep_for_a_unix_socket_puts_the_socket_in_the_temp_dir():
    deep = Path("/srv") / ("deep-folder/" * 10) / "var" / "postgres"

    chosen = socket_dir(deep)

    assert chosen.parent == Path(tempfile.gettempdir())
    assert len(str(chosen / f".s.PGSQL.{PORT}")) <= SOCKET_PATH_MAX
    assert chosen == socket_dir(deep)  # the same checkout finds its server again
    assert socket_dir(Path("/srv/desk/var/postgres")) == Path("/srv/desk/var/postgres/run")


def test_a_forked_child_does_not_leave_with_its_parents_lock(cluster):
    cluster.ensure_running()

    child = os.fork()
    if child == 0:  # a prefork worker: leaving must not stop the parent's server
        os._exit(0 if cluster.release() is False else 1)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert cluster.is_ready()
    assert cluster.release() is True
