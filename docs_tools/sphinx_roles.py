"""A griffe extension for the docs site: Sphinx roles in docstrings rendered as inline code.

sam_db's docstrings name other objects the Sphinx way (``:class:`~sam_db.errors.X```,
``:func:`migrate```), which Markdown would show verbatim. This rewrites each role to inline code
(the last dotted part when the target starts with ``~``, as Sphinx does), so the reference reads
as the source means. Loaded by mkdocs.yml (mkdocstrings' ``extensions`` option).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|mod|obj|data|const):`(~?)([^`]+)`")


def _as_code(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def rewrite_roles(text: str) -> str:
    """``text`` with every Sphinx cross-reference role replaced by inline code."""
    return ROLE.sub(_as_code, text)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite_roles(obj.docstring.value)
