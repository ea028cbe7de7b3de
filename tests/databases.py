"""Databases for the processes a test starts, on the server the tests use (embedded or not)."""

from contextlib import contextmanager
from urllib.parse import quote


def _server() -> dict:
    from django.db import connection

    if connection.vendor != "postgresql":
        raise AssertionError(f"the tests run on PostgreSQL, not {connection.vendor}")
    if connection.settings_dict["ENGINE"] == "arbsite.embedded_postgres":
        from arbsite import embedded_postgres

        embedded_postgres.ensure_running()  # a test may start processes before any query
    return connection.settings_dict


def database_url(name: str | None = None) -> str:
    """DATABASE_URL of database `name` (by default the tests' own) on the tests' server."""
    server = _server()
    user = quote(server["USER"] or "", safe="")
    password = f":{quote(server['PASSWORD'], safe='')}" if server.get("PASSWORD") else ""
    host = quote(str(server["HOST"] or ""), safe="")  # a socket folder is a path
    port = f":{server['PORT']}" if server.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{name or server['NAME']}"


def _admin():
    import psycopg

    server = _server()
    return psycopg.connect(
        host=server["HOST"],
        port=server["PORT"] or None,
        user=server["USER"],
        password=server["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


@contextmanager
def fresh_database(name: str):
    """Create database `name` anew on the tests' server, yield its DATABASE_URL, then drop it."""
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
