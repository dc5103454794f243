"""Run ``curate serve``: uvicorn with graceful SIGTERM, one or several worker processes.

SIGTERM (or Ctrl-C) stops accepting connections, lets the requests in flight
finish (up to ``graceful_timeout_s``), scores what is queued, and returns
normally: the command exits 0. With ``workers`` > 1 each worker process loads
the model; on a machine with GPUs each worker takes its own GPU (worker i on
``cuda:i``, round robin when there are more workers than GPUs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curation.errors import DataError, UsageError
from curation.serve.app import ServeSettings, create_app

#: The environment variable that hands the settings to worker processes.
SETTINGS_ENV = "CURATE_SERVE_SETTINGS"
#: The environment variable ``--api-key`` falls back to.
API_KEY_ENV = "CURATE_API_KEY"


def check_settings(settings: ServeSettings) -> None:
    """Refuse what would only fail after the server started: a missing model, bad limits."""
    from curation.inference.model import find_config, read_manifest

    model = Path(settings.model)
    if model.is_dir():
        read_manifest(model)
    elif model.is_file():
        find_config(model, settings.config)
    else:
        raise UsageError(f"model not found: {model}. Fix: a checkpoint file or a model folder")
    for name in ("max_batch_size", "workers", "max_images_per_request", "max_upload_bytes"):
        if getattr(settings, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if settings.batch_timeout_ms < 0:
        raise UsageError("--batch-timeout-ms must be 0 or more")
    if not 0 < settings.port < 65536:
        raise UsageError(f"--port {settings.port}: not a TCP port (1-65535)")


def serve(settings: ServeSettings, log_level: str = "info") -> None:
    """Serve until SIGTERM or Ctrl-C; return after a graceful stop.

    Raises:
        UsageError: bad settings, or the port cannot be bound.
        DataError: the model could not be loaded (the server says why on /health, then
            stops).
    """
    check_settings(settings)
    try:
        import uvicorn
    except ImportError:
        from curation.errors import MissingDependencyError

        raise MissingDependencyError("uvicorn", "serve") from None
    if settings.workers > 1:
        _serve_workers(settings, log_level)
        return
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        # uvicorn annotates int but hands it to asyncio.timeout, which takes a float
        timeout_graceful_shutdown=settings.graceful_timeout_s,  # type: ignore[arg-type]
        lifespan="on",
        access_log=False,
    )
    server = _server_class()(config, app)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind the port
        raise UsageError(
            f"could not listen on {settings.host}:{settings.port} (in use, or not an address "
            "of this machine; see the log above). Fix: another --port or --host"
        ) from None
    state = app.app.state.curate
    if state.error and not state.ready:
        raise DataError(f"the model could not be loaded: {state.error}")


def _server_class() -> Any:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, minus re-raising the signal after its graceful stop (which
        would kill the process with SIGTERM instead of exiting 0), and stopping by itself
        when the model cannot be loaded."""

        def __init__(self, config: Any, app: Any = None) -> None:
            super().__init__(config)
            self.curate_app = app

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

        async def on_tick(self, counter: int) -> bool:
            state = getattr(getattr(self.curate_app, "app", None), "state", None)
            curate = getattr(state, "curate", None)
            if curate is not None and curate.error and not curate.ready:
                return True  # the model failed to load: stop rather than serve 503s forever
            return await super().on_tick(counter)

    return GracefulServer


def _serve_workers(settings: ServeSettings, log_level: str) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from curation.serve.metrics import MULTIPROC_ENV

    with tempfile.TemporaryDirectory(prefix="curate-serve-") as slots:
        os.environ[SETTINGS_ENV] = json.dumps(
            {**_to_json(settings), "_slots": slots}, ensure_ascii=True
        )
        # a scrape reaches one worker: each writes its metrics here, and every scrape sums them
        metrics_dir = Path(slots) / "metrics"
        metrics_dir.mkdir()
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
        config = uvicorn.Config(
            "curation.serve.run:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=log_level,
            # uvicorn annotates int but hands it to asyncio.timeout, which takes a float
            timeout_graceful_shutdown=settings.graceful_timeout_s,  # type: ignore[arg-type]
            lifespan="on",
            access_log=False,
        )
        sock = config.bind_socket()
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            os.environ.pop(MULTIPROC_ENV, None)


def _to_json(settings: ServeSettings) -> dict[str, Any]:
    out = dataclasses.asdict(settings)
    for key in ("model", "config"):
        if out[key] is not None:
            out[key] = str(out[key])
    return out


def app_from_env() -> Any:
    """The app of one worker process (``--workers`` > 1), with its own GPU if there are any."""
    data = json.loads(os.environ[SETTINGS_ENV])
    slots = data.pop("_slots")
    settings = ServeSettings(**data)
    settings.model = Path(settings.model)
    settings.config = Path(settings.config) if settings.config else None
    if settings.device is None:
        settings.device = _claim_gpu(Path(slots))
    return create_app(settings)


def _claim_gpu(slots: Path) -> str | None:
    """``cuda:i`` for the first GPU no other worker has claimed (None without GPUs)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        return None
    for i in range(count):
        try:
            os.close(os.open(slots / f"gpu{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        return f"cuda:{i}"
    return f"cuda:{os.getpid() % count}"  # more workers than GPUs: share them
