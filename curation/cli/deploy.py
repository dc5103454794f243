"""``curate quantize`` and ``curate serve``: from a checkpoint to a model folder to a service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from curation.cli._app import app, console, handles_errors
from curation.cli.options import TrustCheckpointOption


@app.command()
@handles_errors
def quantize(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint_*.pth from a run folder.")],
    scheme: Annotated[
        str,
        typer.Option(
            help="bf16 (bfloat16 weights), int8-weight (weight-only int8) or int8-dynamic "
            "(int8 weights and activations). There is no fp16: T5 overflows in it."
        ),
    ],
    calibrate: Annotated[
        Path,
        typer.Option(
            help="A split with falls and non-falls (e.g. the export's val.json): the parity "
            "report and the re-fitted operating point are computed on it."
        ),
    ],
    out: Annotated[Path, typer.Option(help="The model folder to write (new or empty).")],
    config: Annotated[
        Path | None, typer.Option(help="Run config [default: config.yaml beside the checkpoint].")
    ] = None,
    image_root: Annotated[
        Path | None, typer.Option(help="Image root of --calibrate [default: beside it].")
    ] = None,
    max_auc_drop: Annotated[
        float,
        typer.Option(help="Refuse (exit 1) when ROC-AUC drops by more than this on --calibrate."),
    ] = 0.005,
    max_false_alarm: Annotated[
        float, typer.Option(help="False-alarm budget of the re-fitted operating point.")
    ] = 0.05,
    force: Annotated[
        bool, typer.Option("--force", help="Write the folder even when parity is worse.")
    ] = False,
    trust_checkpoint: TrustCheckpointOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Quantize a checkpoint into a deployable model folder, with a parity report.

    The folder holds the weights (read with weights_only=True), the config, an operating
    point re-fitted on --calibrate and manifest.json (scheme, modules quantized and kept,
    versions, sha256 of every file, parity). predict, eval and serve take the folder
    wherever they take a checkpoint.
    """
    import json

    from curation.quantize import parity_lines
    from curation.quantize import quantize as run_quantize

    result = run_quantize(
        checkpoint,
        scheme,
        calibrate,
        out,
        config=config,
        image_root=image_root,
        max_auc_drop=max_auc_drop,
        max_false_alarm=max_false_alarm,
        force=force,
        trust_checkpoint=trust_checkpoint,
    )
    manifest = result.manifest
    if as_json:
        print(json.dumps(manifest, indent=2))
        return
    modules = manifest["modules"]
    console.print(f"wrote {escape(str(result.out))} ({manifest['scheme']})", highlight=False)
    console.print(
        f"modules: {len(modules['quantized'])} quantized, {len(modules['kept'])} kept "
        "(listed in manifest.json)",
        highlight=False,
    )
    reasons: dict[str, int] = {}
    for why in modules["kept"].values():
        reasons[why] = reasons.get(why, 0) + 1
    for why, n in reasons.items():
        console.print(f"  kept {n}: {escape(why)}", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    console.print("parity on the calibration set:", highlight=False)
    for line in parity_lines(manifest["parity"]):
        console.print(f"  {escape(line)}", highlight=False)
    point = manifest["operating_point"]
    rule = (
        "never yes (no threshold keeps false alarms within the budget)"
        if point.get("never_yes")
        else f"P(yes) >= {point['threshold']:.6g}"
    )
    console.print(
        f"operating point re-fitted on {escape(point['chosen_on'])}: {rule} (recall "
        f"{point['recall']:.1%}, false alarms {point['false_alarm_rate']:.1%})",
        highlight=False,
    )
    if result.forced:
        console.print(
            "[bold yellow]warning:[/] parity is worse than --max-auc-drop; written because of "
            "--force",
            highlight=False,
        )


@app.command()
@handles_errors
def serve(
    model: Annotated[
        Path, typer.Argument(help="A model folder (curate quantize) or a checkpoint_*.pth.")
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback by default; 0.0.0.0 for all).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_batch_size: Annotated[int, typer.Option(help="Most images scored in one model call.")] = 16,
    batch_timeout_ms: Annotated[
        float, typer.Option(help="How long a batch waits for more requests before scoring.")
    ] = 10.0,
    workers: Annotated[
        int, typer.Option(help="Worker processes, each with the model (one per GPU).")
    ] = 1,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="CURATE_API_KEY",
            help="Require this key (header 'Authorization: Bearer KEY') on every endpoint but "
            "/livez [env: CURATE_API_KEY].",
            show_default=False,
        ),
    ] = None,
    max_images: Annotated[int, typer.Option(help="Most images in one request.")] = 32,
    max_upload_mb: Annotated[float, typer.Option(help="Largest request body, in MiB.")] = 20.0,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda or cuda:N [default: cuda if there is one].")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Run config of a checkpoint [default: config.yaml beside it]."),
    ] = None,
    trust_checkpoint: TrustCheckpointOption = False,
) -> None:
    """Serve a model over HTTP: POST /v1/score, GET /health, /livez and /metrics.

    Requests that arrive together are scored in one batch. SIGTERM stops accepting,
    finishes the requests in flight and exits 0.
    """
    from curation.serve.app import ServeSettings
    from curation.serve.run import serve as run_serve

    settings = ServeSettings(
        model=model,
        host=host,
        port=port,
        max_batch_size=max_batch_size,
        batch_timeout_ms=batch_timeout_ms,
        workers=workers,
        api_key=api_key or None,
        max_images_per_request=max_images,
        max_upload_bytes=int(max_upload_mb * 2**20),
        device=device,
        config=config,
        trust_checkpoint=trust_checkpoint,
    )
    console.print(
        f"serving {escape(str(model))} on http://{host}:{port} (ready when /health is 200)",
        highlight=False,
    )
    run_serve(settings)
    console.print("stopped", highlight=False)
