"""Plain values the plugin's fixtures hand out (importable without pytest)."""

from __future__ import annotations

from .._redact import redact_dsn


class MigratedSchema(str):
    """What ``sam_db_schema`` hands out: the name of a fresh, fully migrated schema.

    It *is* the schema name (a ``str``), so it goes straight where a schema is expected:
    ``MemoryStore(s.dsn, embedder, schema=s)``, ``migrate(s.dsn, schema=s)``. ``dsn`` is the
    shared database the schema lives in (the ``sam_db_server`` database; its search_path is not
    changed: pass the schema on, ``SET search_path``, or qualify names in raw SQL).
    """

    dsn: str

    def __new__(cls, dsn: str, schema: str) -> MigratedSchema:
        value = super().__new__(cls, schema)
        value.dsn = dsn
        return value

    @property
    def schema(self) -> str:
        """The schema name as a plain ``str``."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"MigratedSchema(dsn={redact_dsn(self.dsn)!r}, schema={self.schema!r})"

    def __setattr__(self, name: str, value: object) -> None:
        if name != "dsn" or "dsn" in self.__dict__:
            raise AttributeError("MigratedSchema is immutable")
        super().__setattr__(name, value)
