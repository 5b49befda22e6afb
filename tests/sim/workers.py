"""The services' real per-partition runner (services.common.partitions.PartitionedCore) as the simulator drives
it: on one event loop per process, with a lifecycle that turns a retried rebuild into an error."""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import os
from collections.abc import Coroutine
from typing import Any

from schemas.codec import MAX_MESSAGE_BYTES
from services.common.core_version import core_version
from services.common.partitions import PartitionedCore


class _FailFast:
    """The workers' lifecycle in the simulator: a wait means a rebuild failed, which the in-memory log never
    causes by itself, so it is reported at once instead of being retried forever."""

    should_stop = False

    async def sleep(self, n: float) -> None:
        raise RuntimeError("a rebuild failed and would be retried: the in-memory log never fails")


_LOOP: asyncio.AbstractEventLoop | None = None
_INHERITED: list[asyncio.AbstractEventLoop] = []


def _forked() -> None:
    # A forked child must not share its parent's selector: it makes its own loop, and keeps the inherited one
    # referenced (never closed here, never collected) so that no warning names it.
    global _LOOP
    if _LOOP is not None:
        _INHERITED.append(_LOOP)
        _LOOP = None


os.register_at_fork(after_in_child=_forked)


def run_at_once(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits (a worker handling the next record of a partition it holds) by hand: a
    loop round per record was a tenth of the simulation's time."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a worker waited on a record it holds the state for")


def run_now(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a worker's coroutine to its end. The in-memory log answers at once, so nothing ever sleeps; one event
    loop per process serves every run (closed at exit, so no warning names an unclosed loop)."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        atexit.register(_LOOP.close)
    return _LOOP.run_until_complete(coroutine)


SNAPSHOT_EVERY = 16
"""Records between two snapshots of a partition: often, so that short runs rebuild from snapshots and tails."""


_PARAMETERS = inspect.signature(PartitionedCore).parameters
"""What this commit's runner takes (a seed runs against older commits too, to show a defect before its fix)."""


@functools.cache
def _version(core: Any) -> str:
    """A core's version, hashed once a process: a seed makes hundreds of workers and the sources do not change."""
    return core_version(core)


def make_worker(core: Any, replay: Any, journal: Any = None, snapshots: Any = None) -> PartitionedCore:
    """The real per-partition runner with the service's journal and snapshots (they outlive a crash of the worker);
    given a fail-fast lifecycle where its version takes one."""
    parameters = _PARAMETERS
    if "journal" in parameters:
        # The version is passed where the runner takes it, so that a seed does not hash the sources per worker.
        hashed: dict[str, Any] = {"version": _version(core)} if "version" in parameters else {}
        return PartitionedCore(
            core,
            replay,
            MAX_MESSAGE_BYTES,
            lifecycle=_FailFast(),
            journal=journal,
            snapshots=snapshots,
            snapshot_every=SNAPSHOT_EVERY,
            **hashed,
        )
    if "lifecycle" in parameters:
        return PartitionedCore(core, replay, MAX_MESSAGE_BYTES, lifecycle=_FailFast())
    return PartitionedCore(core, replay, MAX_MESSAGE_BYTES)
