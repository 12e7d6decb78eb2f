"""Griffe extension for the API reference: the source's docstrings use a little reStructuredText
(``:class:`Jobs```, ``:meth:`Jobs.options```) and ``#:`` comments above attributes; MkDocs
renders Markdown. This turns the roles into code spans and the ``#:`` comments into the
attributes' docstrings, so the source keeps one docstring convention and the reference reads
well.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|attr|data|exc|mod|obj):`~?([^`]+)`")


def _role(match: re.Match[str]) -> str:
    target = match.group(1)
    whole = match.group(0)
    name = target.rsplit(".", 1)[-1] if ":`~" in whole else target
    if whole.startswith((":meth:", ":func:")):
        name += "()"
    return f"`{name}`"


def markdown_from_rst(text: str) -> str:
    return ROLE.sub(_role, text)


def _comment_above(obj: griffe.Object) -> str | None:
    """The ``#:`` comment lines right above an attribute's first line, joined."""
    if obj.lineno is None:
        return None
    try:
        lines = obj.lines_collection[obj.filepath]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    found: list[str] = []
    index = obj.lineno - 2
    while index >= 0 and lines[index].strip().startswith("#:"):
        found.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    return " ".join(found) or None


class RstRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **_: Any) -> None:
        if obj.is_attribute and obj.docstring is None:
            comment = _comment_above(obj)
            if comment:
                obj.docstring = griffe.Docstring(comment, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = markdown_from_rst(obj.docstring.value)
