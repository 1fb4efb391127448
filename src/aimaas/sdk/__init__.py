"""The Python SDK of aimaas: :class:`Client` (sync) and :class:`AsyncClient` over httpx.

>>> from aimaas.sdk import Client
>>> with Client("http://127.0.0.1:8000", api_key="...") as client:  # doctest: +SKIP
...     version = client.datasets.upload("answers.csv", name="answers")
...     job = client.jobs.wait(client.train("answers", "passed", budget_s=60).id)
...     client.models.download(job.result["ref"], "model.onnx")
...     client.deploy("answers", job.result["ref"])
...     client.endpoints.wait_ready("answers")
...     client.endpoints.predict("answers", [{"hours": 3, "attempts": 1}]).predictions

Every failure raises an :mod:`aimaas.errors` exception (``NotFound``, ``Unauthorized``, ``InvalidInput``…)
carrying the server's ``message``, ``code`` and ``param`` plus ``status_code`` and ``request_id``.
"""

from __future__ import annotations

from aimaas.sdk._async import AsyncClient
from aimaas.sdk._http import ProgressCallback
from aimaas.sdk._login import DEFAULT_URL, LoginConfig, load_login_config, save_login_config
from aimaas.sdk._routes import split_ref
from aimaas.sdk._sync import Client

__all__ = [
    "DEFAULT_URL",
    "AsyncClient",
    "Client",
    "LoginConfig",
    "ProgressCallback",
    "load_login_config",
    "save_login_config",
    "split_ref",
]
