"""Pydantic models of the migration API: what ``migrate``, ``status`` and ``rollback`` return."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Migration(BaseModel):
    """A migration file, as applied or rolled back by a call."""

    model_config = ConfigDict(frozen=True)

    version: str
    """Numeric file prefix as written, e.g. ``"001"``."""
    name: str
    """The rest of the file name, e.g. ``"initial_schema"``."""
    filename: str
    origin: str
    """Where the file came from (a path or a package resource)."""
    checksum: str
    """Hex sha256 of the file with line endings normalised to LF."""
    checksum_algorithm: str = "sha256"
    transactional: bool
    has_rollback: bool
    execution_ms: float | None = None
    """How long its SQL took in this call (applied or rolled back)."""


class MigrationStatus(BaseModel):
    """Where one migration stands in one database."""

    model_config = ConfigDict(frozen=True)

    version: str
    name: str
    state: Literal["applied", "pending", "modified", "missing", "failed"]
    """``applied``; ``pending`` (file, not applied); ``modified`` (applied, file changed since);
    ``missing`` (applied, no file here: a newer release applied it); ``failed`` (a no-transaction
    file whose index is INVALID: a build that failed or was killed, see ``invalid_indexes``)."""
    applied_at: datetime | None = None
    checksum: str | None = None
    """Checksum of the file here (of the applied row when ``missing``)."""
    applied_checksum: str | None = None
    """Checksum recorded when it was applied."""
    execution_ms: float | None = None
    origin: str | None = None
    transactional: bool | None = None
    has_rollback: bool | None = None
    invalid_indexes: list[str] = []
    """INVALID indexes (``schema.name``) a no-transaction file builds; non-empty when ``failed``."""


class PlannedMigration(BaseModel):
    """One migration :func:`sam_db.plan` found pending, and the SQL its step would send."""

    model_config = ConfigDict(frozen=True)

    version: str
    name: str
    filename: str
    origin: str
    checksum: str
    transactional: bool
    """False for a file that opts out of a transaction (sent statement by statement)."""
    sql: str
    """The step's SQL in order, with its framing (transaction, migration lock, settings, the
    tracking row) and comments for what happens between statements."""


class MigrationPlan(BaseModel):
    """What :func:`sam_db.migrate` would do now, with the same arguments; nothing of it has run."""

    model_config = ConfigDict(frozen=True)

    target_schema: str
    """The schema the migrations and the ``schema_migrations`` table go into."""
    steps: list[PlannedMigration]
    """The migrations it would apply, in order (empty: up to date)."""
    lock_wait: float
    lock_timeout: float
    lock_retries: int
    stall_timeout: float | None = None
    sql: str
    """The whole plan as one commented SQL script (what ``sam-db migrate --dry-run`` prints)."""
