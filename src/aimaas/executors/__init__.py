"""Executors run jobs away from the API's request path and report their events.

``inline`` runs a job in the calling thread (tests); ``local`` runs each job in its own worker process on this
machine; ``ray`` will run them on a Ray cluster. See :mod:`aimaas.executors.base` for the contract and
docs/executors.md for the guide. This package knows nothing of training: it runs ``module:function`` paths.
"""

from __future__ import annotations

from aimaas.executors.base import (
    EventLog,
    Executor,
    JobCancelled,
    JobContext,
    check_submission,
    create_executor,
    executor_names,
    register_executor,
)
from aimaas.executors.inline import InlineExecutor
from aimaas.executors.local import LocalExecutor

__all__ = [
    "EventLog",
    "Executor",
    "InlineExecutor",
    "JobCancelled",
    "JobContext",
    "LocalExecutor",
    "check_submission",
    "create_executor",
    "executor_names",
    "register_executor",
]
