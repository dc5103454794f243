"""Where P(yes) for a batch of frames comes from: a model loaded here, or ``curate serve``.

A scorer is any object with ``score(images) -> list[float]`` (P(yes) of the task
question for each PIL image) and ``threshold`` (the operating point, or None). Tests
pass their own; ``load_scorer`` builds the real ones.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from curation.errors import DataError, UsageError

API_KEY_ENV = "CURATE_API_KEY"  # the variable curate serve reads its key from


class Scorer(Protocol):
    threshold: float | None
    note: str

    def score(self, images: Sequence[Any]) -> list[float]: ...


@dataclass
class ModelScorer:
    """A checkpoint or a ``curate quantize`` model folder, loaded in this process
    (``curation.inference``: the same P(yes) as eval, predict and serve)."""

    loaded: Any
    threshold: float | None
    note: str
    batch_size: int = 32

    def score(self, images: Sequence[Any]) -> list[float]:
        from curation.inference.scoring import p_yes
        from curation.schemas.questions import TASK_QUESTION

        return p_yes(self.loaded, list(images), [TASK_QUESTION] * len(images), self.batch_size)


@dataclass
class ServerScorer:
    """``curate serve``'s ``POST {url}/v1/score``: frames as JPEG quality 95, field ``image``
    repeated, at most ``max_images`` per request (learnt from the server's 413 answer).

    JPEG keeps a request small; its P(yes) differs from scoring the decoded frame in this
    process (``--model``) by about 1e-3 at most.
    """

    url: str
    threshold: float | None
    note: str
    timeout: float = 60.0
    api_key: str | None = None
    max_images: int | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _request(self, path: str, body: bytes | None = None, content_type: str = "") -> Any:
        """The JSON answer of ``path``; HTTP errors are raised as ``urllib.error.HTTPError``
        with ``message`` set to the server's ``error`` text."""
        import urllib.error
        import urllib.request

        endpoint = self.url.rstrip("/") + path
        headers = self._headers()
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(
            endpoint, data=body, headers=headers, method="GET" if body is None else "POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error") or exc.reason
            except (ValueError, AttributeError, OSError):
                detail = exc.reason
            exc.message = str(detail)  # type: ignore[attr-defined]
            raise
        except urllib.error.URLError as exc:
            reason = getattr(exc.reason, "strerror", None) or exc.reason
            raise DataError(
                f"{endpoint}: cannot reach the server ({reason}). Fix: start it with curate "
                "serve MODEL, or check the URL given to --server"
            ) from None
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{endpoint}: no usable answer ({exc}). Fix: point --server at a curate serve"
            ) from None

    def _refused(self, path: str, exc: Any) -> DataError:
        endpoint = self.url.rstrip("/") + path
        if exc.code == 401:
            return DataError(
                f"{endpoint}: HTTP 401: {exc.message.split('. Fix:')[0]}. Fix: pass --api-key "
                f"KEY, or set {API_KEY_ENV}, with the key the server was started with"
            )
        return DataError(f"{endpoint}: HTTP {exc.code}: {exc.message}")

    def connect(self) -> None:
        """Ask ``/health`` whether the server is ready, and take its operating point when
        no threshold was given. A server without ``/health`` (not ``curate serve``) is
        used as it is.

        Raises:
            DataError: the server cannot be reached, refuses the key, or is not ready.
        """
        import urllib.error

        try:
            health = self._request("/health")
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 405, 501):
                return
            if exc.code == 503:
                raise DataError(
                    f"{self.url.rstrip('/')}/health: the server is not ready "
                    f"({exc.message}). Fix: wait until /health answers 200, then retry"
                ) from None
            raise self._refused("/health", exc) from None
        point = health.get("threshold") if isinstance(health, dict) else None
        if self.threshold is None and isinstance(point, int | float) and 0 <= point <= 1:
            self.threshold = float(point)
            self.note = f"the server's operating point, {self.url.rstrip('/')}/health"

    def score(self, images: Sequence[Any]) -> list[float]:
        images = list(images)
        size = self.max_images or len(images) or 1
        out: list[float] = []
        k = 0
        while k < len(images):
            chunk = images[k : k + size]
            scores = self._score(chunk)
            if scores is None:  # the server takes fewer per request: split and retry
                assert self.max_images is not None
                size = self.max_images
                continue
            out += scores
            k += len(chunk)
        return out

    def _score(self, images: list[Any]) -> list[float] | None:
        import re
        import urllib.error

        boundary = uuid.uuid4().hex
        body = io.BytesIO()
        for k, image in enumerate(images):
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=95)
            body.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                f'filename="frame{k}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
            )
            body.write(buf.getvalue() + b"\r\n")
        body.write(f"--{boundary}--\r\n".encode())
        endpoint = self.url.rstrip("/") + "/v1/score"
        try:
            answer = self._request(
                "/v1/score", body.getvalue(), f"multipart/form-data; boundary={boundary}"
            )
        except urllib.error.HTTPError as exc:
            limit = re.search(r"at most (\d+) per request", exc.message)
            if exc.code == 413 and limit and 0 < int(limit.group(1)) < len(images):
                self.max_images = int(limit.group(1))
                return None
            raise self._refused("/v1/score", exc) from None
        rows = answer.get("results", answer) if isinstance(answer, dict) else answer
        try:
            scores = [float(r["p_yes"]) for r in rows]
        except (TypeError, KeyError, ValueError):
            raise DataError(
                f"{endpoint}: the answer is not a list of objects with p_yes. Fix: point "
                "--server at a curate serve"
            ) from None
        if len(scores) != len(images):
            raise DataError(f"{endpoint}: {len(scores)} scores for {len(images)} frames")
        return scores


def load_scorer(
    model: str | Path | None = None,
    *,
    server: str | None = None,
    threshold: float | None = None,
    trust_checkpoint: bool = False,
    batch_size: int = 32,
    api_key: str | None = None,
) -> Scorer:
    """The scorer for ``model`` (a checkpoint or model folder) or ``server`` (a ``curate
    serve`` URL).

    The threshold is ``threshold`` if given, else the operating point ``curate eval``
    saved beside the checkpoint, or the one the server reports on ``/health`` (None when
    there is none). ``api_key`` is sent to the server as ``Authorization: Bearer KEY``.

    Raises:
        UsageError: neither or both of ``model`` and ``server``; a threshold out of [0, 1].
        DataError: a server that cannot be reached, refuses the key or is not ready.
    """
    if (model is None) == (server is None):
        raise UsageError("give --model MODEL or --server URL (one of them)")
    if threshold is not None and not 0 <= threshold <= 1:
        raise UsageError(f"--threshold must be between 0 and 1, got {threshold}")
    if server is not None:
        note = f"--threshold {threshold:g}" if threshold is not None else ""
        scorer = ServerScorer(server, threshold, note, api_key=api_key or None)
        scorer.connect()
        return scorer
    from curation.inference.model import load_model, weights_file
    from curation.inference.operating_point import saved_threshold

    assert model is not None  # exactly one of model and server, checked above
    source = Path(model)
    point: float | None
    if threshold is not None:
        point, note = threshold, f"--threshold {threshold:g}"
    else:
        point, note = saved_threshold(weights_file(source))
    loaded = load_model(source, None, trust_checkpoint)
    return ModelScorer(loaded, point, note, batch_size)
