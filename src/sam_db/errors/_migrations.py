"""Errors about migration files and applying them."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import SamDbError


class MigrationError(SamDbError):
    """Base class of errors about migration files or their application."""


class MigrationFileError(MigrationError):
    """A migration file or folder cannot be used (bad name, unreadable, missing folder)."""


class DuplicateMigrationError(MigrationFileError):
    """Two migration files share one version number."""

    @classmethod
    def same_version(cls, version: str, first: str, second: str) -> DuplicateMigrationError:
        return cls(
            f"two migrations have version {version}: {first} and {second}; renumber one of them"
        )

    @classmethod
    def taken_by_bundled(
        cls, version: str, name: str, origin: str, bundled: str
    ) -> DuplicateMigrationError:
        """Your migration has the version of one that sam_db bundles (a release added it)."""
        # The SQL is advice printed for the user; a migration's name holds no quote.
        return cls(
            f"version {version} of {origin} is taken by sam_db's bundled {bundled}, which this "  # noqa: S608
            f"release of sam_db added: give your migration a version of its own (e.g. rename it to "
            f"1{version}_{name}.sql) and, in each database that has applied it, record the new "
            f"number before migrating: UPDATE schema_migrations SET version = '1{version}' "
            f"WHERE version = '{version}' AND name = '{name}'"
        )


class MigrationFailedError(MigrationError):
    """A migration's SQL failed; its transaction was rolled back.

    ``file`` is the migration file, ``statement`` the failing statement's text (when it could be
    located), ``line`` its 1-based line in the file and ``sqlstate`` PostgreSQL's error code.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str,
        statement: str | None = None,
        line: int | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.statement = statement
        self.line = line
        self.sqlstate = sqlstate


class DDLLockTimeoutError(MigrationFailedError):
    """A migration kept waiting for a table lock past ``lock_timeout`` after every retry.

    ``what`` in the constructors names the step, e.g. ``"migration 001_init.sql"``.
    """

    @classmethod
    def stalled(
        cls,
        what: str,
        *,
        file: str,
        stall_timeout: float | None,
        attempts: int,
        line: int,
        statement: str,
    ) -> DDLLockTimeoutError:
        """Every attempt ran past ``stall_timeout`` (lock waits and execution together)."""
        return cls(
            f"{what} could not finish within stall_timeout={stall_timeout:g}s "
            f"(lock waits and execution of all its statements), {attempts} times; the last attempt "
            f"ran out at line {line}. Each attempt was rolled back, releasing its locks. "
            "A long transaction may hold a lock it needs (find it in pg_stat_activity / pg_locks), "
            "or the migration itself runs longer: raise stall_timeout or split the file.",
            file=file,
            statement=statement,
            line=line,
        )

    @classmethod
    def lock_waits(
        cls,
        what: str,
        *,
        file: str,
        lock_timeout: float,
        attempts: int,
        said: str,
        sqlstate: str | None,
    ) -> DDLLockTimeoutError:
        """Every attempt waited past ``lock_timeout`` for one table lock (``said``: the server)."""
        return cls(
            f"{what} waited more than lock_timeout={lock_timeout:g}s for a table lock, "
            f"{attempts} times: {said}. A long transaction holds a lock on a table it changes; "
            "find it in pg_stat_activity or pg_locks and end it, or raise lock_timeout / "
            "lock_retries.",
            file=file,
            sqlstate=sqlstate,
        )


class InvalidIndexError(MigrationFailedError):
    """A non-transactional migration failed and left an INVALID index behind.

    ``indexes`` names the INVALID indexes (schema-qualified when not on the search_path).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str,
        indexes: list[str],
        statement: str | None = None,
        line: int | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message, file=file, statement=statement, line=line, sqlstate=sqlstate)
        self.indexes = indexes

    @classmethod
    def left_behind(
        cls,
        failure: str,
        *,
        file: str,
        indexes: list[str],
        statement: str | None = None,
        line: int | None = None,
        sqlstate: str | None = None,
    ) -> InvalidIndexError:
        """A statement of ``file`` failed (``failure`` says how) and left ``indexes`` INVALID."""
        return cls(
            failure + f" It left INVALID index(es) behind: {', '.join(indexes)}. The next migrate "
            "drops an INVALID index this file builds (DROP INDEX CONCURRENTLY) and builds it "
            "again; fix the cause first (e.g. duplicate keys for a UNIQUE index). The file "
            "was not recorded as applied.",
            file=file,
            indexes=indexes,
            statement=statement,
            line=line,
            sqlstate=sqlstate,
        )

    @classmethod
    def still_building(
        cls, *, file: str, indexes: list[str], builders: Sequence[int], wait: float
    ) -> InvalidIndexError:
        """INVALID ``indexes`` of ``file`` are still being built (by backends ``builders``, one
        per index) after ``wait`` seconds."""
        names = ", ".join(
            f"{i} (backend pid {pid})" for i, pid in zip(indexes, builders, strict=True)
        )
        return cls(
            f"{file}: index {names} is INVALID and still being built, probably by a "
            f"migrator that was killed mid-build (its build goes on without it). Waited {wait:g} s "
            "(lock_wait). Re-run once that build ends, or cancel it (SELECT pg_cancel_backend(pid)) "
            "and re-run: the next migrate then drops the INVALID index (DROP INDEX CONCURRENTLY) "
            "and builds it again. The file was not recorded as applied.",
            file=file,
            indexes=indexes,
        )

    @classmethod
    def cannot_drop(
        cls, *, file: str, index: str, said: str, sqlstate: str | None
    ) -> InvalidIndexError:
        """An INVALID ``index`` left by an earlier run could not be dropped (``said``: why)."""
        return cls(
            f"{file}: index {index} is INVALID (left by an earlier run) and could not be "
            f"dropped: {said}. Drop it (DROP INDEX CONCURRENTLY {index}) and re-run. The file "
            "was not recorded as applied.",
            file=file,
            indexes=[index],
            sqlstate=sqlstate,
        )

    @classmethod
    def invalid_after_run(cls, *, file: str, indexes: list[str]) -> InvalidIndexError:
        """``file`` ran without error, yet ``indexes`` it builds are INVALID."""
        return cls(
            f"{file} ran, but index(es) it builds are INVALID: {', '.join(indexes)} (another "
            "session built or broke them meanwhile?). The file was not recorded as applied. Drop "
            "them (DROP INDEX CONCURRENTLY name) or re-run: the next migrate drops and builds them "
            "again.",
            file=file,
            indexes=indexes,
        )


class MigrationModifiedError(MigrationError):
    """An applied migration's file has changed since it was applied (drift)."""

    def __init__(self, message: str, *, files: list[str]) -> None:
        super().__init__(message)
        self.files = files

    @classmethod
    def drift(
        cls, changes: Sequence[str], *, files: list[str], versions: Sequence[str]
    ) -> MigrationModifiedError:
        """``changes`` describe each changed file; ``versions`` are theirs, for ``repair``."""
        return cls(
            "applied migration file(s) changed since they were applied: "
            + ", ".join(changes)
            + ". Restore the original file(s) and put the change in a new migration; if the change "
            "is deliberate and harmless (a comment, formatting), accept it with `sam-db repair "
            + " ".join(versions)
            + "` or `await sam_db.repair(dsn, versions=[...])`.",
            files=files,
        )


class UnknownMigrationError(MigrationError):
    """The database has applied versions this code has no file for (raised only when strict)."""

    def __init__(self, message: str, *, versions: list[str]) -> None:
        super().__init__(message)
        self.versions = versions

    @classmethod
    def applied_unknown(cls, versions: list[str]) -> UnknownMigrationError:
        return cls(
            "the database has applied migrations this code does not know: "
            + ", ".join(versions)
            + " (a newer release migrated it?). Deploy that release, or pass strict=False.",
            versions=versions,
        )


class UnknownTargetError(MigrationError, ValueError):
    """A ``target`` version names no known migration."""


class RollbackUnavailableError(MigrationError):
    """A migration to roll back has no ``.rollback.sql`` file (or no file at all)."""

    @classmethod
    def no_file(cls, name: str) -> RollbackUnavailableError:
        """Applied migration ``name`` (``version_name``) has no file in this code."""
        return cls(
            f"cannot roll back {name}: this code has no file for it (applied by a newer "
            "release?). Roll it back with the release that has it. Nothing was rolled back."
        )

    @classmethod
    def no_rollback_file(
        cls, filename: str, rollback: str, origin: str
    ) -> RollbackUnavailableError:
        """``filename`` has no ``rollback`` file (``version_name.rollback.sql``) next to it."""
        return cls(
            f"cannot roll back {filename}: it has no {rollback} next to {origin}. Write one (it "
            "must undo exactly what the migration did). Nothing was rolled back."
        )


class MigrationLockTimeoutError(MigrationError):
    """Another process held the migration lock for longer than ``lock_wait`` allowed."""

    @classmethod
    def gave_up(
        cls, wait: float, holder: str, lock: str = "the migration lock"
    ) -> MigrationLockTimeoutError:
        """``lock`` (e.g. "the migration lock") was held by ``holder`` for all of ``wait``."""
        return cls(
            f"gave up waiting {wait:.0f} s for {lock} held by {holder}; "
            "if that process is stuck, cancel it (pg_cancel_backend) or raise lock_wait"
        )
