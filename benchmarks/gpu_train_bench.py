"""Benchmark the `blip2_t5` preset's training step (prints and writes figures; asserts nothing).

    python benchmarks/gpu_train_bench.py --out DIR                   # GPU: full size
    python benchmarks/gpu_train_bench.py --out DIR --cpu-smoke       # CPU: small, seconds

On the GPU: writes random weights in the real file layouts (EVA-ViT-g fp16
state dict, BERT-base folder, FlanT5-XL folder with a locally trained
sentencepiece tokenizer, BLIP-2 checkpoint) under an export of synthetic
scenes, builds the model through `curate train`'s own loading code, then
measures seconds per step and peak GPU memory at each batch size with
LAVIS's settings (ViT and T5 frozen, amp) and with each speed option
(`run.amp_dtype=bf16`, `run.fused_adamw=true`, `run.compile_frozen=true`),
all on the one built model, plus `predict_answers` throughput for eval and
the data loader's images/s per worker count. Writes DIR/bench.json and
DIR/bench.md.

Reference (one H200, flan-t5-xl config, LAVIS's settings): 0.21 s
per step at batch 4, 8 and 16 alike; peak 9.3 / 9.9 / 11.1 GiB. Goal: >= 3x
the samples/s of that at batch 16.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for bench.json/bench.md")
    parser.add_argument(
        "--work", type=Path, help="folder for the export and weights [default: OUT/work]"
    )
    parser.add_argument("--scale", choices=["full", "small"], default="full")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--batches", default="4,8,16")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per figure")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--variants", default="baseline,bf16,bf16+fused,bf16+fused+compile")
    parser.add_argument("--images", type=int, default=64, help="synthetic training scenes")
    parser.add_argument("--generate-reps", type=int, default=3)
    parser.add_argument("--loader-workers", default="0,4,8,16")
    parser.add_argument("--profile", action="store_true", help="torch.profiler, baseline")
    parser.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="small scale on CPU, batch 2, 2 steps, no compile: keeps this script from rotting",
    )
    args = parser.parse_args()
    if args.cpu_smoke:
        args.scale, args.device, args.batches = "small", "cpu", "2"
        args.steps, args.warmup, args.images, args.generate_reps = 2, 1, 8, 1
        args.variants, args.loader_workers = "baseline,bf16+fused", "0"
    warnings.simplefilter("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import step_bench as sb  # benchmarks/, beside this script
    import torch
    from random_weights import write_random_blip2_t5

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU visible; run with --cpu-smoke (or --device cpu)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or args.out / "work"  # full size: about 14 GB of weight files
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir()
    errors: list[str] = []
    started = time.perf_counter()
    export = sb.write_task_export(work, args.images, "blip2_t5")
    weights = write_random_blip2_t5(export / "weights", args.scale)
    print(f"files written in {weights.seconds:.1f} s: {weights.parameters}")
    overrides = [*weights.overrides, f"run.batch_size_train={max(_ints(args.batches))}"]
    if args.device == "cpu":
        overrides.append("model.vit_precision=fp32")  # fp16 ViT weights cannot run on a CPU
    built = sb.build(export / "lavis.yaml", overrides, args.device, work / "lavis.log")
    params = sum(p.numel() for p in built.model.parameters())
    trainable = sum(p.numel() for p in built.model.parameters() if p.requires_grad)
    print(
        f"model built in {built.load_seconds:.1f} s: {params / 1e9:.3f} B parameters, "
        f"{trainable / 1e6:.1f} M trainable; load report: {sb.load_summary(getattr(built.model, 'load_report', None))}"
    )
    steps = []
    batches = {b: sb.batch_of(built, b) for b in _ints(args.batches)}
    if args.profile:
        sb.guarded(
            "profile",
            errors,
            sb.profile_steps,
            built,
            batches[max(batches)],
            3,
            args.out / "profile.txt",
        )
    for variant in args.variants.split(","):
        for size, batch in batches.items():
            fig = sb.guarded(
                f"{variant} batch {size}",
                errors,
                sb.measure_steps,
                built,
                variant,
                batch,
                args.steps,
                args.warmup,
            )
            fig = fig or sb.StepFigures(variant, size, args.steps, error=errors[-1][:200])
            steps.append(sb.figures_dict(fig))
            print(
                f"{variant:>20}  batch {size:>3}: {fig.seconds_per_step} s/step, "
                f"{fig.samples_per_s} samples/s, peak {fig.peak_gib} GiB"
                + (f", compiled {fig.compiled}" if fig.compiled else "")
            )
            if args.device == "cuda":
                torch.cuda.empty_cache()
    generate = sb.guarded(
        "generate", errors, sb.measure_generate, built, batches[max(batches)], args.generate_reps
    )
    print(f"predict_answers: {generate}")
    loader = []
    for workers in _ints(args.loader_workers):
        if workers > (os.cpu_count() or 1):
            continue
        got = sb.guarded(
            f"loader {workers}", errors, sb.measure_loader, built, workers, max(batches), 8
        )
        if got:
            loader.append(got)
            print(f"loader: {got}")
    report = {
        "preset": "blip2_t5",
        "scale": args.scale,
        "device": args.device,
        "device_name": torch.cuda.get_device_name(0)
        if args.device == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "parameters": params,
        "trainable": trainable,
        "parameters_by_file": weights.parameters,
        "load_report": sb.load_summary(getattr(built.model, "load_report", None)),
        "write_seconds": round(weights.seconds, 1),
        "load_seconds": round(built.load_seconds, 1),
        "steps": steps,
        "generate": generate,
        "loader": loader,
        "errors": errors,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    sb.write_report(args.out, report)
    print((args.out / "bench.md").read_text(encoding="utf-8"))
    return 1 if errors else 0


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


if __name__ == "__main__":
    raise SystemExit(main())
