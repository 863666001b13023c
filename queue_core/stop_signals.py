"""The OS requests to stop a worker, behind a seam tests can replace.

POSIX sends SIGINT (Ctrl+C) and SIGTERM (``kill``, service managers). A Windows console sends
Ctrl+C and Ctrl+Break, which Python delivers as SIGINT and SIGBREAK. :class:`StopSignals`
installs one callback for the signals of the OS it is told it runs on, and puts the previous
handlers back afterwards. The OS calls go through a :class:`SignalApi`, so the Windows branch
runs, and is tested, on any OS with a fake.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any, Final, Protocol

SIGBREAK_NUMBER: Final = 21
"""Windows' SIGBREAK (Ctrl+Break); the ``signal`` module only defines it on Windows."""

SignalHandler = Callable[[int, "FrameType | None"], Any]


class SignalApi(Protocol):
    """The two calls of :mod:`signal` that :class:`StopSignals` needs."""

    def getsignal(self, signalnum: int) -> Any: ...

    def signal(self, signalnum: int, handler: Any) -> Any: ...


class RealSignalApi:
    """The real :mod:`signal` module."""

    def getsignal(self, signalnum: int) -> Any:
        return signal.getsignal(signalnum)

    def signal(self, signalnum: int, handler: Any) -> Any:
        return signal.signal(signalnum, handler)


def stop_signal_names(os_name: str) -> dict[int, str]:
    """The signals that ask a worker to stop on ``os_name`` (``os.name``: 'posix' or 'nt')."""
    if os_name == "nt":
        return {
            int(signal.SIGINT): "Ctrl+C",
            getattr(signal, "SIGBREAK", SIGBREAK_NUMBER): "Ctrl+Break",
        }
    return {int(signal.SIGINT): "SIGINT", int(signal.SIGTERM): "SIGTERM"}


class StopSignals:
    """Route the OS's stop requests to ``on_stop(name)`` while installed.

    Use it as a context manager in the main thread (Python only delivers signals there)::

        with StopSignals(lambda name: engine.stop()):
            engine.run()

    :param on_stop: called in the main thread with a name such as ``"SIGTERM"`` or
        ``"Ctrl+Break"``, once per signal received.
    :param os_name: which OS's signals to install (default: this one's ``os.name``).
    :param api: the signal calls (tests pass a fake).
    """

    def __init__(
        self,
        on_stop: Callable[[str], None],
        *,
        os_name: str | None = None,
        api: SignalApi | None = None,
    ) -> None:
        self._on_stop = on_stop
        self._names = stop_signal_names(os.name if os_name is None else os_name)
        self._api: SignalApi = api or RealSignalApi()
        self._previous: dict[int, Any] = {}

    @property
    def names(self) -> list[str]:
        """The names of the signals this instance handles."""
        return list(self._names.values())

    def install(self) -> None:
        """Install the handlers, remembering the ones they replace.

        :raises ValueError: not called from the main thread (Python's rule for signals).
        """
        for number in self._names:
            self._previous[number] = self._api.getsignal(number)
            self._api.signal(number, self._handle)

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        while self._previous:
            number, handler = self._previous.popitem()
            self._api.signal(number, signal.SIG_DFL if handler is None else handler)

    def __enter__(self) -> StopSignals:
        self.install()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def _handle(self, signalnum: int, frame: FrameType | None) -> None:
        self._on_stop(self._names.get(signalnum, f"signal {signalnum}"))
