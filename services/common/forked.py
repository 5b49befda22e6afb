"""Work done in a forked child, so that writing out the process's own state does not hold its event loop.

fork() gives the child a copy-on-write image of the process at that instant: the child sees the state as it was
when the work was asked for, while the parent goes on changing its own copy (Redis's BGSAVE does the same). The
parent waits only for the fork itself, which copies page tables (about 2 MB of them per GB of memory): pickling
a partition of 15,000 held orders held the loop for about a second, which a consumer's heartbeat and every other
partition's records waited out.

What the child may do is narrow. Only the thread that forked exists in it, and any lock another thread held at the
fork stays held forever: so no logging, no asyncio, no object another thread could have been using. It reports
through a pipe with os.write, and ends with os._exit (no atexit handlers, no flushing of buffers it shares with
the parent). It turns off the cycle collector, which would write to the header of every object and so copy the
whole heap, and it dies with its parent (a writer outliving a killed worker could prune a snapshot its successor
is reading). A child that does not finish in time (wedged on a lock after all) is killed and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
import sys
import warnings
from collections.abc import Callable

REPORT_BYTES = 4096
"""What the child may say about its failure: less than a pipe holds, so its write never waits for the parent."""
PR_SET_PDEATHSIG = 1

_prctl: Callable[..., int] | None = None
if sys.platform == "linux":
    # Looked up here, in the parent: dlopen in the child could wait on the loader's lock held by another thread.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


class ForkedWorkError(Exception):
    """The child did not do its work: the message says why (its exception, its signal, or the time it ran out)."""


def can_fork() -> bool:
    """Only on Linux: elsewhere a child cannot be tied to its parent's death, and macOS frameworks refuse forks."""
    return _prctl is not None and hasattr(os, "fork")


def run_forked(work: Callable[[], None], what: str, timeout_s: float) -> asyncio.Future[None]:
    """Run `work` in a child forked now, on the running loop's behalf: the future is done when the child has
    finished, or fails with ForkedWorkError. `what` names the work in that error."""
    loop = asyncio.get_running_loop()
    read_end, write_end = os.pipe()
    parent = os.getpid()
    with warnings.catch_warnings():
        # Python 3.12 warns that a fork of a process with threads may deadlock in the child: this child touches
        # nothing another thread may hold (see the module's docstring), and one that hangs anyway is killed.
        warnings.filterwarnings("ignore", r".*fork\(\) may lead to deadlocks", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends in os._exit, which coverage cannot follow
        os.close(read_end)
        _child(work, write_end, parent)
    os.close(write_end)
    return _Child(loop, pid, read_end, what, timeout_s).done


def _child(work: Callable[[], None], report: int, parent: int) -> None:  # pragma: no cover - runs in the child
    code = 1
    try:
        gc.disable()
        # A signal for the parent's group (a stop) must not reach the parent's loop through its wakeup fd: the
        # child just ends, as the parent will.
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        assert _prctl is not None
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            raise ForkedWorkError("its parent ended before it started")
        work()
        code = 0
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.write(report, f"{type(error).__name__}: {error}".encode(errors="replace")[:REPORT_BYTES])
    finally:
        os._exit(code)


class _Child:
    """The parent's side: reads the child's report until the pipe closes (the child ended), then reaps it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pid: int, report: int, what: str, timeout_s: float) -> None:
        self.loop, self.pid, self.report, self.what = loop, pid, report, what
        self.done: asyncio.Future[None] = loop.create_future()
        self.said = bytearray()
        self.timed_out = False
        os.set_blocking(report, False)
        loop.add_reader(report, self._readable)
        self.deadline = loop.call_later(timeout_s, self._kill, timeout_s)

    def _kill(self, timeout_s: float) -> None:
        self.timed_out = True
        self.said.extend(f"it did not finish within {timeout_s:g} s and was killed".encode())
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.report, REPORT_BYTES)
        except BlockingIOError:
            return
        if chunk:
            if not self.timed_out:
                self.said.extend(chunk)
            return
        self.loop.remove_reader(self.report)
        os.close(self.report)
        self._reap()

    def _reap(self) -> None:
        # The pipe closes as the child exits: it may take a moment longer to become a zombie that can be reaped.
        reaped, status = os.waitpid(self.pid, os.WNOHANG)
        if reaped == 0:
            self.loop.call_later(0.001, self._reap)
            return
        self.deadline.cancel()
        code = os.waitstatus_to_exitcode(status)
        if self.done.cancelled():
            return
        if code == 0 and not self.timed_out:
            self.done.set_result(None)
            return
        reason = self.said.decode(errors="replace") or (
            f"it was killed by signal {-code}" if code < 0 else f"it exited with status {code}"
        )
        self.done.set_exception(ForkedWorkError(f"{self.what} failed in its forked writer (pid {self.pid}): {reason}"))
