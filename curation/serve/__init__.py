"""``curate serve``: a model (checkpoint or model folder) behind HTTP, with batching.

- :mod:`curation.serve.app`: the Starlette app (``/v1/score``, ``/health``, ``/livez``,
  ``/metrics``), its settings, upload checks and API key;
- :mod:`curation.serve.batching`: requests that arrive together scored as one batch;
- :mod:`curation.serve.metrics`: the Prometheus metrics;
- :mod:`curation.serve.run`: uvicorn, graceful SIGTERM, worker processes (one per GPU).

Starlette on uvicorn rather than a serving framework with its own worker processes: the
model runs in the server's process (one model thread, batches formed on the event loop),
so the upload checks, the batching, the metrics and the graceful stop are all in this
package and tested through real HTTP.
"""
