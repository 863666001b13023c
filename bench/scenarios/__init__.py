"""The stress scenarios. Each module exposes ``run(context) -> dict`` (see bench/RESULTS.md)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.context import ScenarioContext

NAMES: tuple[str, ...] = (
    "init",
    "connect",
    "insert",
    "claim",
    "busy",
    "checkpoint",
    "query",
    "worker",
)
"""Every scenario, in the order a full run executes them."""


def load(name: str) -> Callable[[ScenarioContext], dict[str, Any]]:
    """The ``run`` function of scenario ``name``."""
    if name not in NAMES:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(NAMES)}")
    module = importlib.import_module(f"bench.scenarios.{name}")
    run: Callable[[ScenarioContext], dict[str, Any]] = module.run
    return run
