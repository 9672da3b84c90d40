"""PostgreSQL (psycopg 3) for several relay instances sharing one database."""

from __future__ import annotations

from common.config import mask_url
from common.errors import ConfigError


class PostgresBackend:
    """Connections and dialect details for PostgreSQL; the SQL itself lives in the store."""

    name = "postgresql"
    begin = "BEGIN"
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgres://", "postgresql://", 1)

    def describe(self) -> str:
        return mask_url(self.url)

    def connect(self):
        import psycopg  # only relays that use PostgreSQL need it

        try:
            # autocommit: transactions are explicit (BEGIN ... COMMIT), as with SQLite
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise ConfigError(f"relay.store_url: cannot connect to {self.describe()}: "
                              f"{str(exc).strip()}") from None

    def transient(self, exc: BaseException) -> bool:
        """Worth retrying the whole transaction: a deadlock, a serialization failure, or a lost
        connection (the store then reconnects)."""
        import psycopg
        from psycopg import errors

        return isinstance(exc, errors.DeadlockDetected | errors.SerializationFailure
                          | psycopg.OperationalError)

    def errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)
