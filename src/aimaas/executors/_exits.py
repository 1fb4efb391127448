"""How a local job ended, decided from facts only (a pure function, unit-tested like a table)."""

from __future__ import annotations

import signal
from typing import Any

from aimaas.domain.jobs import JobState

__all__ = ["decide_end", "describe_exit", "signal_name"]

SHUTDOWN = "the executor shut down while the job was running"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def describe_exit(code: int | None) -> str:
    """A sentence for a worker that ended without reporting a result."""
    if code is None:
        return "worker process did not exit after SIGKILL"
    if code < 0:
        hint = " (killed by an operator or the out-of-memory killer)" if -code == signal.SIGKILL else ""
        return f"worker process exited with signal {-code} ({signal_name(-code)}){hint}"
    return f"worker process exited with code {code} without reporting a result"


def decide_end(
    end: dict[str, Any] | None,
    *,
    exit_code: int | None,
    cancel_requested: bool,
    signalled: str | None,
    closing: bool,
    problem: str | None = None,
) -> tuple[JobState, str | None, dict[str, Any]]:
    """The terminal state, reason and extra payload of a finished worker.

    ``end`` is the worker's own report (cleaned) or None if it died first; ``signalled`` the strongest signal
    the executor sent (``"SIGTERM"``/``"SIGKILL"``); ``closing`` whether the executor stopped it at shutdown.
    The worker's report wins, except that a job stopped by shutdown is ``failed``, never ``cancelled``.
    """
    died = (
        {}
        if exit_code is None
        else {"exit_code": exit_code, "signal": signal_name(-exit_code) if exit_code < 0 else None}
    )
    if end is not None:
        extra = {k: v for k, v in end.items() if k not in ("state", "reason")}
        state = JobState(end["state"])
        if closing and state is JobState.CANCELLED:
            return JobState.FAILED, SHUTDOWN, extra
        return state, end.get("reason"), extra
    if closing:
        return JobState.FAILED, SHUTDOWN, died
    if problem:
        return JobState.FAILED, problem, died
    if cancel_requested:
        how = f" by {signalled}" if signalled else ""
        return JobState.CANCELLED, f"cancelled by request; the worker was stopped{how}", died
    return JobState.FAILED, describe_exit(exit_code), died
