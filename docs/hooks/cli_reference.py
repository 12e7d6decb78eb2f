"""MkDocs hook: reference tables rendered from the code itself, so the pages cannot drift.

- ``<!-- quart-jobs-cli -->``: the ``--help`` of ``quart-jobs`` and of each subcommand.
- ``<!-- quart-jobs-settings -->``: every ``QUART_JOBS_*`` setting of the Quart extension, from
  ``quart_jobs.settings.SETTINGS`` (key, constructor keyword, default, meaning).
"""

from __future__ import annotations

from typing import Any

import click

MARKER = "<!-- quart-jobs-cli -->"
SETTINGS_MARKER = "<!-- quart-jobs-settings -->"


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


def _default(value: Any) -> str:
    return "none" if value is None else f"`{value!r}`"


def render_settings() -> str:
    from quart_jobs.settings import SETTINGS

    rows = ["| key | keyword | default | meaning |", "|---|---|---|---|"]
    for setting in SETTINGS:
        meaning = setting.help.replace("|", "\\|")
        rows.append(
            f"| `{setting.key}` | `{setting.name}=` | {_default(setting.default)} | {meaning} |"
        )
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, render())
    if SETTINGS_MARKER in markdown:
        markdown = markdown.replace(SETTINGS_MARKER, render_settings())
    return markdown
