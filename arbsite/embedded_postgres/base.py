"""Django's PostgreSQL backend, which starts the embedded server before its first connection."""

from django.db.backends.postgresql import base

from arbsite import embedded_postgres


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        embedded_postgres.ensure_running()
        return super().get_new_connection(conn_params)
