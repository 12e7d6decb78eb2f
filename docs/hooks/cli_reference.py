"""MkDocs hook: the command-line reference, rendered from the click commands themselves.

A page that contains the line ``<!-- quart-jobs-cli -->`` gets, in its place, the ``--help``
of ``quart-jobs`` and of each of its subcommands, so the page cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

import click

MARKER = "<!-- quart-jobs-cli -->"


def _help(command: click.Command, path: list[str], parent: click.Context | None) -> str:
    ctx = click.Context(command, info_name=path[-1], parent=parent, terminal_width=90)
    return ctx.get_help()


def render() -> str:
    from quart_jobs.cli import cli

    root = click.Context(cli, info_name="quart-jobs", terminal_width=90)
    parts = ["```text", root.get_help(), "```", ""]
    for name in sorted(cli.commands):
        command = cli.commands[name]
        parts += [f"## `quart-jobs {name}`", "", "```text"]
        parts += [_help(command, ["quart-jobs", name], root), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())
