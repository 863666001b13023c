"""The subcommands of ``python -m queue_core``, in the order ``--help`` lists them.

Add a command by writing a :class:`~queue_core.cli.base.Command` subclass in its own module
here and listing an instance below.
"""

from __future__ import annotations

from typing import Final

from queue_core.cli.base import Command
from queue_core.cli.commands.init import InitCommand
from queue_core.cli.commands.worker import WorkerCommand

COMMANDS: Final[tuple[Command, ...]] = (InitCommand(), WorkerCommand())
