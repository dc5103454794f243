"""The HTTP app of ``curate serve`` (Starlette): score, health, liveness and metrics.

The model is loaded in the background after the server starts: ``/livez``
answers at once, ``/health`` says 503 until the model is loaded, warmed up and
a canary image scored. Uploads are decoded in memory (never a path from a
request); every bad input gets a 4xx JSON ``{"error": ...}`` naming the problem.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import DataError
from curation.serve.batching import Batcher
from curation.serve.metrics import ServerMetrics, server_metrics

log = logging.getLogger("curate.serve")

#: Endpoints by path, as the metrics label them (anything else is "other").
ENDPOINTS = ("/v1/score", "/health", "/livez", "/metrics")
#: Paths that answer without the API key (a liveness probe carries no secret).
OPEN_PATHS = ("/livez",)
#: The status a request gets, in the metrics, when its client disconnects mid-upload.
CLIENT_CLOSED = 499


@dataclass
class ServeSettings:
    """What ``curate serve`` runs: the model, where it listens, batching and input limits."""

    model: Path
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 16
    batch_timeout_ms: float = 10.0
    workers: int = 1
    api_key: str | None = None
    max_images_per_request: int = 32
    max_upload_bytes: int = 20 * 1024 * 1024
    max_question_chars: int = 300
    device: str | None = None
    config: Path | None = None
    trust_checkpoint: bool = False
    graceful_timeout_s: float = 30.0


@dataclass
class ServerState:
    settings: ServeSettings
    metrics: ServerMetrics
    batcher: Batcher | None = None
    loaded: Any = None
    threshold: float | None = None
    threshold_note: str = ""
    ready: bool = False
    error: str | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


class UploadTooLarge(Exception):
    """The request body passed the upload limit while it was read."""


def _json(status: int, body: Any) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status)


def _error(status: int, message: str) -> Any:
    return _json(status, {"error": message})


def create_app(settings: ServeSettings) -> Any:
    """The ASGI app for ``settings`` (the model loads when the app starts)."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    state = ServerState(settings, server_metrics())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        state.batcher = Batcher(
            lambda items: _score_items(state, items),
            settings.max_batch_size,
            settings.batch_timeout_ms / 1000,
            on_batch=state.metrics.batch_size.observe,
            on_queue=state.metrics.queue_depth.set,
        )
        state.batcher.start()
        state.tasks.append(asyncio.get_running_loop().create_task(_load(state)))
        yield
        # uvicorn has stopped accepting and answered the requests in flight: drain and stop
        await state.batcher.stop()

    async def http_error(_request: Any, exc: Any) -> Any:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        return _error(exc.status_code, detail)

    async def score(request: Any) -> Any:
        return await _score(state, request)

    async def health(_request: Any) -> Any:
        return await _health(state)

    async def livez(_request: Any) -> Any:
        return await _livez()

    async def metrics(_request: Any) -> Any:
        return await _metrics(state)

    app = Starlette(
        routes=[
            Route("/v1/score", score, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/livez", livez, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.curate = state
    return _Guard(app, state)


class _Guard:
    """ASGI wrapper: API key, upload limit, request metrics, and no 500 without JSON."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else "other"
        started = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        try:
            refusal = self._refusal(scope, path)
            if refusal is not None:
                await refusal(scope, receive, send_status)
            else:
                await self.app(scope, self._limited(receive), send_status)
        except Exception:  # a bug, not bad input: logged, answered as JSON, server keeps going
            log.exception("error while answering %s", path)
            if not status["started"]:
                await _error(500, "internal error (logged by the server)")(
                    scope, receive, send_status
                )
        finally:
            metrics = self.state.metrics
            metrics.requests.labels(endpoint, str(status["code"])).inc()
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    def _refusal(self, scope: dict[str, Any], path: str) -> Any:
        settings = self.state.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if settings.api_key and path not in OPEN_PATHS:
            given = headers.get("x-api-key") or ""
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
                return _error(
                    401,
                    "missing or wrong API key. Fix: send the header 'Authorization: Bearer KEY' "
                    "(or 'X-API-Key: KEY')",
                )
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _error(400, f"Content-Length {length!r} is not a number of bytes")
            if int(length) > settings.max_upload_bytes:
                return _error(413, _too_large(settings.max_upload_bytes))
        return None

    def _limited(self, receive: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
        limit = self.state.settings.max_upload_bytes
        seen = {"bytes": 0}

        async def wrapped() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > limit:
                    raise UploadTooLarge
            return message

        return wrapped


def _too_large(limit: int) -> str:
    return (
        f"upload larger than the server's limit of {limit / 2**20:g} MiB. Fix: send fewer or "
        "smaller images (curate serve --max-upload-mb sets the limit)"
    )


async def _livez() -> Any:
    return _json(200, {"status": "alive"})


async def _health(state: ServerState) -> Any:
    if state.error:
        return _json(503, {"status": "failed", "error": state.error})
    if not state.ready:
        return _json(503, {"status": "starting", "detail": "loading and warming up the model"})
    return _json(200, _model_fields(state) | {"status": "ready"})


async def _metrics(state: ServerState) -> Any:
    from starlette.responses import Response

    body, content_type = state.metrics.render()
    return Response(
        body, media_type=content_type.split(";")[0], headers={"content-type": content_type}
    )


def _model_fields(state: ServerState) -> dict[str, Any]:
    loaded = state.loaded
    return {
        "model": loaded.name,
        "scheme": loaded.scheme,
        "device": loaded.device,
        "threshold": state.threshold,
    }


async def _load(state: ServerState) -> None:
    """Load the model, warm it up and score a canary; then ``/health`` answers 200."""
    settings = state.settings
    assert state.batcher is not None
    try:
        from curation.inference.model import load_model, weights_file
        from curation.inference.operating_point import saved_threshold

        state.threshold, state.threshold_note = saved_threshold(weights_file(settings.model))
        state.loaded = await state.batcher.in_model_thread(
            lambda: load_model(
                settings.model, settings.config, settings.trust_checkpoint, settings.device
            ),
        )
        canary = _canary_images()
        results = await state.batcher.run_alone([(im, None) for im in canary])
        bad = [r for r in results if not (math.isfinite(r["p_yes"]) and 0 <= r["p_yes"] <= 1)]
        if bad:
            raise DataError(f"{settings.model}: the canary image scored {bad[0]['p_yes']}")
    except Exception as exc:  # noqa: BLE001 - the server says why it is not ready
        state.error = str(exc) if isinstance(exc, DataError | OSError) else repr(exc)
        from curation.errors import CurationError

        if not isinstance(exc, CurationError):
            log.exception("the model could not be loaded")
        else:
            log.error("the model could not be loaded: %s", exc)
        return
    info = {k: str(v) for k, v in _model_fields(state).items()}
    state.metrics.model_info.labels(**info).set(1)
    state.metrics.ready.set(1)
    state.ready = True
    log.info(
        "ready: %s (%s on %s), threshold %s%s",
        state.loaded.name,
        state.loaded.scheme,
        state.loaded.device,
        state.threshold,
        f" ({state.threshold_note})" if state.threshold_note else "",
    )


def _canary_images() -> list[Any]:
    """Two small images made here (no file read): warm-up for batch shapes, and a check."""
    from PIL import Image

    grey = Image.new("RGB", (64, 64), (128, 128, 128))
    stripes = Image.new("RGB", (64, 64), (0, 0, 0))
    stripes.paste((255, 255, 255), (0, 0, 32, 64))
    return [grey, stripes]


def _score_items(state: ServerState, items: list[tuple[Any, str | None]]) -> list[dict[str, Any]]:
    """Score a batch in the model thread: P(yes) for every item, generated text where the
    question is not the task question (or there is no operating point)."""
    from curation.inference.operating_point import answer_at
    from curation.inference.scoring import answer, p_yes
    from curation.schemas.questions import TASK_QUESTION, canonical_question, is_task_question

    loaded = state.loaded
    # a task question in another case or spelling is scored as the one the point was chosen on
    questions = [canonical_question(q) if q else TASK_QUESTION for _, q in items]
    images = [im for im, _ in items]
    size = max(1, state.settings.max_batch_size)
    probs = p_yes(loaded, images, questions, batch_size=size)
    threshold = state.threshold
    by_threshold = [threshold is not None and is_task_question(q) for q in questions]
    generate = [i for i, ok in enumerate(by_threshold) if not ok]
    generated = dict(
        zip(
            generate,
            answer(loaded, [images[i] for i in generate], [questions[i] for i in generate], size)
            if generate
            else [],
            strict=True,
        )
    )
    return [
        {
            "p_yes": prob,
            "answer": answer_at(prob, threshold) if ok and threshold is not None else generated[i],
            "threshold": threshold if ok else None,
            "model": loaded.name,
        }
        for i, (prob, ok) in enumerate(zip(probs, by_threshold, strict=True))
    ]


async def _score(state: ServerState, request: Any) -> Any:
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    settings = state.settings
    if not state.ready:
        return _error(503, state.error or "the model is still loading; retry when /health is 200")
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return _error(
            415,
            f"content type {content_type or '(none)'!r}: send the images as multipart/form-data, "
            "one file per field 'image' (curl -F image=@photo.jpg)",
        )
    limit = settings.max_images_per_request
    try:
        form = await request.form(max_files=limit, max_fields=16, max_part_size=64 * 1024)
    except UploadTooLarge:
        return _error(413, _too_large(settings.max_upload_bytes))
    except ClientDisconnect:
        # no bad input: the client went away mid-upload. Counted as status 499 (nginx's
        # "client closed request"), apart from the 400s; nobody reads the answer
        return _error(CLIENT_CLOSED, "the client disconnected before the upload was complete")
    except HTTPException as exc:
        if "Too many files" in str(exc.detail):
            return _error(413, f"too many images: at most {limit} per request")
        return _error(400, f"the multipart body cannot be read: {exc.detail}")
    except Exception as exc:  # noqa: BLE001 - python-multipart's parse errors reach here raw
        return _error(400, f"the multipart body cannot be read: {exc}")
    try:
        unknown = sorted({k for k in form if k not in ("image", "question")})
        if unknown:
            return _error(400, f"unknown field(s) {unknown}: send 'image' (files) and 'question'")
        uploads = form.getlist("image")
        if not uploads:
            return _error(400, "no image: send one or more files in the multipart field 'image'")
        if len(uploads) > limit:
            return _error(413, f"too many images: {len(uploads)}, at most {limit} per request")
        for i, upload in enumerate(uploads):
            if not isinstance(upload, UploadFile):
                return _error(
                    400,
                    f"image #{i + 1} is text, not an uploaded file: the server scores uploaded "
                    "bytes and never reads a path (curl -F image=@photo.jpg)",
                )
        given = form.getlist("question")
        if len(given) > 1:
            return _error(
                400,
                f"field 'question' given {len(given)} times: send it once (one question "
                "applies to every image of the request; ask others in their own requests)",
            )
        question = given[0] if given else None
        if question is not None:
            if not isinstance(question, str):
                return _error(400, "question must be text, not a file")
            question = question.strip()
            if not question:
                return _error(400, "question is empty: leave it out to ask the task question")
            if len(question) > settings.max_question_chars:
                return _error(
                    400,
                    f"question is {len(question)} characters, at most "
                    f"{settings.max_question_chars}",
                )
        images = []
        for i, upload in enumerate(uploads):
            data = await upload.read()
            name = f"image #{i + 1} ({upload.filename or 'no file name'})"
            if not data:
                return _error(400, f"{name}: empty file")
            try:
                images.append(await asyncio.to_thread(_decode, data, name))
            except DataError as exc:
                status = 413 if "too large to open safely" in str(exc) else 400
                return _error(status, str(exc))
    finally:
        await form.close()
    assert state.batcher is not None
    results = await state.batcher.submit([(im, question) for im in images])
    from curation.schemas.questions import is_task_question

    label = "task" if question is None or is_task_question(question) else "other"
    for row in results:
        state.metrics.p_yes.labels(label).observe(row["p_yes"])
    return _json(200, results)


def _decode(data: bytes, name: str) -> Any:
    from curation.images import open_rgb

    return open_rgb(io.BytesIO(data), name=name)
