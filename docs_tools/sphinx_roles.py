"""A griffe extension for the docs site: the reST bits of docstrings rendered as Markdown.

sam_db's docstrings name other objects the Sphinx way (``:class:`~sam_db.errors.X```,
``:func:`migrate```) and introduce examples with reST's ``::``, which Markdown would show
verbatim. This rewrites each role to inline code (the last dotted part when the target starts
with ``~``, as Sphinx does) and each ``::`` literal block to a fenced code block, so the reference
reads as the source means. Loaded by mkdocs.yml (mkdocstrings' ``extensions`` option).
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


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literal_block(lines: list[str], start: int, base: int) -> tuple[list[str], int]:
    """The indented block after a ``::`` line (from ``start``), dedented, and where it ends."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    block = lines[start:end]
    cut = min(_indent(line) for line in block if line.strip())
    return [line[cut:] for line in block], end


def rewrite_literal_blocks(text: str) -> str:
    """``text`` with each reST literal block (a paragraph ending ``::``) as a fenced code block."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        following = i + 1
        while following < len(lines) and not lines[following].strip():
            following += 1
        base = _indent(line)
        if (
            line.rstrip().endswith("::")
            and following < len(lines)
            and _indent(lines[following]) > base
        ):
            intro = line.rstrip()[:-2]
            if intro.strip():  # "Example::" -> "Example:"; a lone "::" disappears
                out.append(intro + ("" if intro.endswith(" ") else ":"))
            block, i = _literal_block(lines, following, base)
            pad = " " * base
            out += ["", pad + "```", *(pad + b if b else b for b in block), pad + "```"]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles and literal blocks in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = rewrite_literal_blocks(obj.docstring.value)
            obj.docstring.value = rewrite_roles(text)
