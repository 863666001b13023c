"""The subcommands of ``python -m queue_core``, in the order ``--help`` lists them.

Add a command by writing a :class:`~queue_core.cli.base.Command` subclass in its own module
here and listing an instance below.
"""

from __future__ import annotations

from typing import Final

from queue_core.cli.base import Command
from queue_core.cli.commands.backup import BackupCommand
from queue_core.cli.commands.backups import BackupsCommand
from queue_core.cli.commands.cancel import CancelCommand
from queue_core.cli.commands.check import CheckCommand
from queue_core.cli.commands.init import InitCommand
from queue_core.cli.commands.prune import PruneCommand
from queue_core.cli.commands.restore import RestoreCommand
from queue_core.cli.commands.retry import RetryCommand
from queue_core.cli.commands.show import ShowCommand
from queue_core.cli.commands.status import StatusCommand
from queue_core.cli.commands.tasks import TasksCommand
from queue_core.cli.commands.worker import WorkerCommand
from queue_core.cli.commands.workers import WorkersCommand

COMMANDS: Final[tuple[Command, ...]] = (
    InitCommand(),
    StatusCommand(),
    TasksCommand(),
    ShowCommand(),
    RetryCommand(),
    CancelCommand(),
    PruneCommand(),
    BackupCommand(),
    BackupsCommand(),
    RestoreCommand(),
    CheckCommand(),
    WorkersCommand(),
    WorkerCommand(),
)
