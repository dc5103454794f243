"""The server's Prometheus metrics (one registry per app, names by Prometheus's rules).

With ``--workers`` > 1 the workers share one port, so a scrape reaches any one of them:
``curate serve`` then sets ``PROMETHEUS_MULTIPROC_DIR`` (a temp folder removed at exit),
every worker writes its values there, and each scrape answers the sum over the workers
(prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

#: Batch sizes in images.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
#: Request latency in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: P(yes) deciles: a shift between them is drift in what the cameras see.
P_YES_BUCKETS = tuple(i / 10 for i in range(1, 11))
#: Set to a folder: the worker processes' metrics are kept there and summed on a scrape.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The labels of ``curate_model_info``.
MODEL_INFO_LABELS = ("model", "scheme", "device", "threshold")


def multiprocess() -> bool:
    """Whether the metrics are shared by worker processes (``PROMETHEUS_MULTIPROC_DIR``)."""
    return bool(os.environ.get(MULTIPROC_ENV))


@dataclass
class ServerMetrics:
    registry: Any
    requests: Any
    latency: Any
    batch_size: Any
    queue_depth: Any
    p_yes: Any
    model_info: Any
    ready: Any

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if not multiprocess():
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker), CONTENT_TYPE_LATEST


def server_metrics() -> ServerMetrics:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    return ServerMetrics(
        registry=registry,
        requests=Counter(
            "curate_requests",  # exposed as curate_requests_total
            "HTTP requests by endpoint and status code.",
            ["endpoint", "status"],
            registry=registry,
        ),
        latency=Histogram(
            "curate_request_duration_seconds",
            "Time from request to response, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        batch_size=Histogram(
            "curate_batch_size_images",
            "Images per model call (requests that arrive together share one).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        ),
        queue_depth=Gauge(
            "curate_queue_depth_images",
            "Images waiting for the model.",
            multiprocess_mode="livesum",
            registry=registry,
        ),
        p_yes=Histogram(
            "curate_p_yes",
            "P(yes) of every scored image (watch it for drift).",
            ["question"],
            buckets=P_YES_BUCKETS,
            registry=registry,
        ),
        # a gauge of 1 with the labels, as an Info is exposed (an Info has no multiprocess mode)
        model_info=Gauge(
            "curate_model_info",
            "The model served: its name, scheme, device and threshold.",
            MODEL_INFO_LABELS,
            multiprocess_mode="livemax",
            registry=registry,
        ),
        ready=Gauge(
            "curate_ready",
            "1 once the model is loaded, warmed up and a canary scored; else 0 (with several "
            "workers: 1 once every worker is).",
            multiprocess_mode="livemin",
            registry=registry,
        ),
    )
