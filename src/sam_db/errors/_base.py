"""Errors about configuration, connections and the server; ``SamDbError``, the base of all."""

from __future__ import annotations

_DSN_SHAPE = "postgresql://user:password@host:port/database"


class SamDbError(Exception):
    """Base class of every error sam_db raises on purpose."""


class ConfigurationError(SamDbError, ValueError):
    """An argument or setting is invalid (bad DSN shape, bad option value, missing extra)."""

    @classmethod
    def empty_dsn(cls) -> ConfigurationError:
        return cls("the DSN is empty: pass postgresql://user:password@host:port/db")

    @classmethod
    def no_database(cls) -> ConfigurationError:
        """No DSN was passed, none configured, and no embedded server is running."""
        return cls(
            "no database given: pass a DSN, set $DATABASE_URL (or the variable [tool.sam_db] "
            "dsn_env names), or start the embedded server (sam-db serve, sam_db.embedded.server())"
        )

    @classmethod
    def invalid_dsn(cls, shown: str, reason: str) -> ConfigurationError:
        """``shown`` is the redacted DSN, ``reason`` what is wrong with it (redacted too)."""
        return cls(f"invalid DSN {shown}: {reason}. Expected {_DSN_SHAPE}")


class DatabaseConnectionError(SamDbError):
    """The database could not be reached or refused the login.

    The constructors take the redacted DSN (``shown``) and the driver's words (``said``, redacted).
    """

    @classmethod
    def login_refused(cls, shown: str, error_name: str) -> DatabaseConnectionError:
        return cls(
            f"PostgreSQL refused the login for {shown}: {error_name}. "
            "Check the user and password in the DSN (or PGPASSWORD / ~/.pgpass)."
        )

    @classmethod
    def no_database(cls, shown: str, said: str) -> DatabaseConnectionError:
        return cls(
            f"the database in {shown} does not exist ({said}); create it first "
            "(createdb NAME, or CREATE DATABASE) or fix the DSN"
        )

    @classmethod
    def refused(cls, shown: str, said: str) -> DatabaseConnectionError:
        return cls(f"PostgreSQL refused the connection to {shown}: {said}")

    @classmethod
    def unreachable(cls, shown: str, said: str) -> DatabaseConnectionError:
        return cls(
            f"cannot reach PostgreSQL at {shown}: {said}. "
            "Is the server running and the host/port (or socket directory) right?"
        )

    @classmethod
    def failed(cls, shown: str, error_name: str, said: str) -> DatabaseConnectionError:
        return cls(f"cannot connect to {shown}: {error_name}: {said}")


class ServerNotReadyError(DatabaseConnectionError):
    """The server did not accept a connection within the wait given (``wait=``, ``sam-db wait``).

    Its message ends with the last attempt's error (redacted).
    """

    @classmethod
    def timed_out(
        cls, shown: str, timeout: float, attempts: int, last: str | None
    ) -> ServerNotReadyError:
        return cls(
            f"PostgreSQL at {shown} did not accept a connection within {timeout:g} s "
            f"({attempts} attempts); the last one met: {last}. Start the server (or fix the host, "
            "port or socket directory), or wait longer (--wait / --timeout)"
        )


class EmbeddedServerError(SamDbError):
    """The embedded PostgreSQL server (the CLI's default) could not be set up or started."""


class SchemaDumpError(SamDbError):
    """``sam-db dump``'s pg_dump failed; the message quotes what it said (redacted)."""

    @classmethod
    def failed(cls, pg_dump_version: str, shown: str, said: str) -> SchemaDumpError:
        return cls(f"pg_dump {pg_dump_version} could not dump {shown}: {said}")


class ExtensionMissingError(SamDbError):
    """A PostgreSQL extension sam_db needs (pgvector) is not installed on the server."""

    def __init__(self, message: str, *, extension: str) -> None:
        super().__init__(message)
        self.extension = extension

    @staticmethod
    def how_to_install(extension: str) -> str:
        """What to do about a missing ``extension`` (for pgvector: where to get it)."""
        if extension != "vector":
            return f"Install the {extension} extension on the PostgreSQL server."
        return (
            "pgvector is not installed on this PostgreSQL server. Install it on the server "
            f"({_PGVECTOR_PACKAGES}), or use the embedded server, which has it: "
            "pip install 'sam-db[embedded]' and run without a DSN."
        )

    @classmethod
    def for_migration(cls, origin: str, extension: str, said: str) -> ExtensionMissingError:
        """Migration file ``origin`` failed because ``extension`` is missing (``said``: the server)."""
        return cls(
            f"{origin} needs the PostgreSQL extension {extension!r}, which this server does not "
            f"have ({said}). {cls.how_to_install(extension)} The migration was rolled back; "
            "earlier migrations stay applied.",
            extension=extension,
        )

    @classmethod
    def for_store(cls) -> ExtensionMissingError:
        """A MemoryStore's server has no pgvector, which the memory tables need."""
        return cls(
            "the PostgreSQL server has no pgvector extension (vector), which the memory tables "
            f"need: install pgvector on the server ({_PGVECTOR_PACKAGES}), then apply sam_db's "
            "migrations (await sam_db.migrate(dsn))",
            extension="vector",
        )


_PGVECTOR_PACKAGES = (
    "Debian/Ubuntu with the PGDG repository: apt install postgresql-<major>-pgvector; "
    "macOS: brew install pgvector; or build it: https://github.com/pgvector/pgvector#installation"
)
