"""Serving throughput: in-process P(yes) vs ``curate serve`` over loopback HTTP.

Prints figures; asserts nothing. On the CPU (default): the ``small`` preset,
trained one epoch on synthetic scenes, scored in-process at batch 1, 8 and 16,
then through a ``curate serve`` process (127.0.0.1 only) started with
``--max-batch-size`` 1, 8 and 16, each at client concurrency 1, 8 and 32
(``--requests`` one-image requests per figure, so every run is bounded):
images/s, p50/p95 latency, requests lost. The goal it reports against: the
server's throughput at batch 16 is at least 80% of in-process scoring at 16.

``--gpu``: the ``blip2_t5`` preset at full size from random weights (the real
file layouts, ``benchmarks/random_weights.py``), fp32 vs bf16 vs int8-weight:
load (build + quantize) time, peak GPU memory, latency at batch 1, 8 and 32.
Needs a CUDA GPU and about 30 GB of disk for the weight files.

    python benchmarks/serve_bench.py                 # CPU, small preset
    python benchmarks/serve_bench.py --requests 32   # shorter
    python benchmarks/serve_bench.py --gpu --work /scratch/bench
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

QUESTION = "Is anyone falling in this image?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batches", default="1,8,16")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--requests", type=int, default=64, help="one-image requests per figure")
    parser.add_argument("--images", type=int, default=32, help="synthetic scenes")
    parser.add_argument("--batch-timeout-ms", type=float, default=10.0)
    parser.add_argument("--gpu", action="store_true", help="blip2_t5 full size on CUDA")
    parser.add_argument("--gpu-batches", default="1,8,32")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # SIGTERM unwinds like Ctrl-C: the server processes this started are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        if args.gpu:
            return gpu_bench(Path(tmp), _ints(args.gpu_batches))
        return cpu_bench(Path(tmp), args)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def cpu_bench(work: Path, args: argparse.Namespace) -> int:
    import step_bench as sb  # benchmarks/, beside this script

    from curation.inference.model import load_model
    from curation.inference.scoring import p_yes
    from curation.training.train import train

    started = time.perf_counter()
    export = sb.write_task_export(work, args.images, args.preset, size=128)
    run = train(export / "lavis.yaml", ["run.max_epoch=1"], run_id="bench")
    checkpoint = sorted((export / "runs" / "bench").glob("checkpoint_*.pth"))[-1]
    images = sorted((export / "images").glob("*.png"))
    print(f"{args.preset} preset trained 1 epoch in {time.perf_counter() - started:.1f} s")
    print(f"torch threads: {_threads()}; CPU cores here: {os.cpu_count()}")
    del run

    loaded = load_model(checkpoint, device="cpu")
    n = args.requests
    picks = [images[i % len(images)] for i in range(n)]
    inproc: dict[int, float] = {}
    print("\nin-process p_yes (images already on disk, decode included)")
    for batch in _ints(args.batches):
        p_yes(loaded, picks[:batch], [QUESTION] * batch, batch)  # warm-up
        t = time.perf_counter()
        p_yes(loaded, picks, [QUESTION] * n, batch)
        seconds = time.perf_counter() - t
        inproc[batch] = n / seconds
        print(f"  batch {batch:>3}: {inproc[batch]:7.1f} images/s")
    del loaded

    print("\ncurate serve on 127.0.0.1 (one-image requests)")
    print("  max batch | concurrency | images/s | p50 ms | p95 ms | lost")
    best: dict[int, float] = {}
    for batch in _ints(args.batches):
        with _server(checkpoint, batch, args.batch_timeout_ms) as url:
            for conc in _ints(args.concurrency):
                fig = _load_test(url, picks, conc)
                best[batch] = max(best.get(batch, 0.0), fig["images_per_s"])
                print(
                    f"  {batch:>9} | {conc:>11} | {fig['images_per_s']:8.1f} | "
                    f"{fig['p50_ms']:6.0f} | {fig['p95_ms']:6.0f} | {fig['lost']}"
                )
        if batch > 1:  # the batch in one request: what HTTP costs once per batch, not per image
            with _server(checkpoint, batch, args.batch_timeout_ms) as url:
                fig = _load_test(url, picks, 1, per_request=batch)
                best[batch] = max(best[batch], fig["images_per_s"])
                print(
                    f"  {batch:>9} | 1 x {batch:>2} img | {fig['images_per_s']:8.1f} | "
                    f"{fig['p50_ms']:6.0f} | {fig['p95_ms']:6.0f} | {fig['lost']}"
                )
    top = max(_ints(args.batches))
    if top in inproc and top in best:
        share = best[top] / inproc[top]
        verdict = "met" if share >= 0.8 else "not met"
        print(
            f"\nserver at batch {top} (best concurrency): {share:.0%} of in-process "
            f"throughput at batch {top} (goal 80%: {verdict})"
        )
    return 0


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _server:  # noqa: N801 - used as a context manager, reads like one
    def __init__(self, model: Path, batch: int, timeout_ms: float) -> None:
        self.model, self.batch, self.timeout_ms = model, batch, timeout_ms

    def __enter__(self) -> str:
        import httpx

        port = _free_port()
        curate = Path(sys.executable).with_name("curate")
        self.proc = subprocess.Popen(
            [
                str(curate),
                "serve",
                str(self.model),
                "--port",
                str(port),
                "--max-batch-size",
                str(self.batch),
                "--batch-timeout-ms",
                str(self.timeout_ms),
                "--device",
                "cpu",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"curate serve exited with {self.proc.returncode}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("curate serve did not become ready in 300 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _load_test(
    url: str, images: list[Path], concurrency: int, per_request: int = 1
) -> dict[str, Any]:
    """Send ``per_request`` images per request from ``concurrency`` threads; latency and
    throughput (images/s) over all of ``images``."""
    import httpx

    data = [p.read_bytes() for p in images]
    payloads = [data[i : i + per_request] for i in range(0, len(data), per_request)]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(len(payloads)))

    def worker() -> None:
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    r = client.post(
                        url + "/v1/score",
                        files=[("image", ("x.png", b, "image/png")) for b in payloads[i]],
                    )
                    ok = r.status_code == 200 and len(r.json()) == len(payloads[i])
                except httpx.HTTPError as exc:
                    ok, r = False, exc
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - t)
                    else:
                        failures.append(str(r))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies) or [float("nan")]
    return {
        "images_per_s": len(latencies) * per_request / wall,
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[min(len(ms) - 1, int(0.95 * len(ms)))],
        "lost": len(failures),
    }


def gpu_bench(work: Path, batches: list[int]) -> int:
    """blip2_t5 at full size from random weights on CUDA: as built, bf16, int8-weight.

    The model call is timed alone (``score_answers`` on random image tensors): what a
    scheme changes, without decoding or HTTP.
    """
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU visible: the --gpu figures need one", file=sys.stderr)
        return 2
    import step_bench as sb
    from random_weights import write_random_blip2_t5

    from curation.inference.schemes import apply_scheme, autocast_dtype

    export = sb.write_task_export(work, 8, "blip2_t5")
    weights = write_random_blip2_t5(export / "weights", "full")
    print(f"random blip2_t5 weights written in {weights.seconds:.0f} s: {weights.parameters}")
    prompt = f"Question: {QUESTION} Short answer:"
    print("scheme | load s | peak GiB | " + " | ".join(f"batch {b} ms" for b in batches))
    # "as built": LAVIS's own dtypes for this preset (EVA-ViT fp16, FlanT5 bf16, rest fp32)
    for scheme in ("fp32", "bf16", "int8-weight"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        built = sb.build(export / "lavis.yaml", weights.overrides, "cuda", work / "lavis.log")
        model = built.model.eval()
        apply_scheme(model, scheme)
        torch.cuda.synchronize()
        load = time.perf_counter() - t
        dtype = autocast_dtype(scheme)
        cells = []
        for b in batches:
            samples = {
                "image": torch.randn(b, 3, 224, 224, device="cuda"),
                "text_input": [prompt] * b,
            }
            times = []
            for rep in range(4):  # the first is warm-up
                torch.cuda.synchronize()
                t = time.perf_counter()
                with (
                    torch.no_grad(),
                    torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None),
                ):
                    model.score_answers(samples, ("yes", "no"))
                torch.cuda.synchronize()
                if rep:
                    times.append(time.perf_counter() - t)
            cells.append(f"{1000 * statistics.median(times):.0f}")
        peak = torch.cuda.max_memory_allocated() / 2**30
        name = "as built" if scheme == "fp32" else scheme
        print(f"{name} | {load:.1f} | {peak:.1f} | " + " | ".join(cells))
        del built, model
    return 0


if __name__ == "__main__":
    sys.exit(main())
