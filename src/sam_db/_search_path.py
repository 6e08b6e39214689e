"""The search_path sam_db runs SQL under: the target schema first, then pgvector's, then public.

Migration files, the sample data and the pytest plugin's connections name tables unqualified:
they must land in (and find) the target schema. pgvector's schema follows so that ``vector`` and
its operators resolve wherever the extension was installed, and ``public`` last, where extensions
and shared objects usually are.
"""

from __future__ import annotations

from ._ident import quote_ident


def search_path(schema: str, vector_schema: str | None = None) -> str:
    """The ``search_path`` value (quoted, comma-separated) for work in ``schema``."""
    path = [schema]
    for extra in (vector_schema, "public"):
        if extra and extra not in path:
            path.append(extra)
    return ", ".join(quote_ident(p) for p in path)
