"""The job commands, shared by the ``quart-jobs`` program (:mod:`quart_jobs.cli`) and the
``quart jobs …`` group that the Quart extension adds to ``app.cli``:

- :mod:`.inspect`: ``stats``, ``list``, ``show``, ``schedules`` (read only);
- :mod:`.change`: ``retry``, ``cancel``, ``purge``, ``migrate``;
- :mod:`.pause`: ``pause``, ``resume`` (a queue);
- :mod:`.worker`: ``worker``;
- :mod:`.session` opens the store for a command and turns failures into exit codes;
  :mod:`.output` prints tables and JSON.

Exit codes: 0 success; 1 a job was not found, or was not in a state for the action; 2 bad
usage or configuration (an unknown option, an unreachable or unusable database). ``--json``
prints one JSON document on stdout for scripts; messages and progress go to stderr.
"""

from __future__ import annotations

import click

from .change import add_change_commands
from .inspect import add_inspect_commands
from .pause import add_pause_commands
from .session import JobsFactory
from .worker import worker_command

__all__ = ["JobsFactory", "jobs_command_group"]


def jobs_command_group(factory: JobsFactory) -> click.Group:
    """The commands, operating on the :class:`~quart_jobs.Jobs` that ``factory`` returns."""

    @click.group(help="Inspect and operate the job queue.")
    def group() -> None:
        pass

    add_inspect_commands(group, factory)
    add_change_commands(group, factory)
    add_pause_commands(group, factory)
    group.add_command(worker_command(factory))
    return group
