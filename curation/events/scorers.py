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
    """``curate serve``'s ``POST {url}/v1/score``: frames as JPEG, field ``image`` repeated."""

    url: str
    threshold: float | None
    note: str
    timeout: float = 60.0

    def score(self, images: Sequence[Any]) -> list[float]:
        import urllib.error
        import urllib.request

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
        request = urllib.request.Request(
            endpoint,
            data=body.getvalue(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DataError(
                f"{endpoint}: scoring failed ({exc}). Fix: start it with curate serve MODEL, "
                "or check --server"
            ) from None
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
) -> Scorer:
    """The scorer for ``model`` (a checkpoint or model folder) or ``server`` (a ``curate
    serve`` URL).

    The threshold is ``threshold`` if given, else the operating point ``curate eval``
    saved beside the checkpoint (None when there is none).

    Raises:
        UsageError: neither or both of ``model`` and ``server``; a threshold out of [0, 1].
    """
    if (model is None) == (server is None):
        raise UsageError("give --model MODEL or --server URL (one of them)")
    if threshold is not None and not 0 <= threshold <= 1:
        raise UsageError(f"--threshold must be between 0 and 1, got {threshold}")
    if server is not None:
        note = f"--threshold {threshold:g}" if threshold is not None else ""
        return ServerScorer(server, threshold, note)
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
