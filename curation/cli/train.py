"""``curate train`` and ``curate predict``: train BLIP-2 with LAVIS, answer with a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from curation.cli._app import app, console, err_console, handles_errors
from curation.cli.options import TrustCheckpointOption
from curation.errors import UsageError
from curation.schemas.questions import TASK_QUESTION


@app.command()
@handles_errors
def train(
    config: Annotated[Path, typer.Argument(help="The export's lavis.yaml.")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Dotted overrides, e.g. run.max_epoch=1.")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="Name of the run folder [default: the start time].")
    ] = None,
    trust_checkpoint: TrustCheckpointOption = False,
    nproc_per_node: Annotated[
        int | None,
        typer.Option(
            help="Processes on this node, launched with torchrun in LAVIS's distributed mode "
            "(gloo on CPU, nccl with one GPU each) [default: one process, no torchrun]."
        ),
    ] = None,
    nnodes: Annotated[
        int, typer.Option(help="Nodes in the run (with --nproc-per-node; same on every node).")
    ] = 1,
    node_rank: Annotated[
        int, typer.Option(help="This node's rank, 0 to nnodes-1 (node 0 writes the run).")
    ] = 0,
    rdzv_endpoint: Annotated[
        str | None,
        typer.Option(help="HOST:PORT of node 0 where the nodes meet (needed with --nnodes > 1)."),
    ] = None,
) -> None:
    """Train BLIP-2 with LAVIS's own task and runner, offline.

    The run goes to OUT/runs/<run-id>/: checkpoints, LAVIS's log, the resolved
    config and a manifest pointing at the data it trained on. One process by
    default; --nproc-per-node N launches N processes with torchrun.
    """
    from curation import _render
    from curation.training.checkpoints import trusted_checkpoints
    from curation.training.config import refuse_repeated_keys

    refuse_repeated_keys(overrides or [])
    if nproc_per_node is None:
        if nnodes != 1 or node_rank != 0 or rdzv_endpoint is not None:
            raise UsageError(
                "--nnodes, --node-rank and --rdzv-endpoint go with --nproc-per-node N. "
                "Fix: add --nproc-per-node (processes per node)"
            )
        from curation.training.train import train as run_training

        with _render.TrainProgress(console) as progress, trusted_checkpoints(trust_checkpoint):
            result = run_training(config, overrides or [], run_id=run_id, on_event=progress.update)
    else:
        from curation.training.distributed import LaunchOptions, train_distributed

        launch = LaunchOptions(nproc_per_node, nnodes, node_rank, rdzv_endpoint)
        with _render.TrainProgress(console) as progress:
            result = train_distributed(
                config,
                overrides or [],
                run_id,
                launch,
                on_event=progress.update,
                trust_checkpoint=trust_checkpoint,
            )
    _render.train_result(console, result)


@app.command()
@handles_errors
def predict(
    checkpoint: Annotated[
        Path,
        typer.Argument(help="A checkpoint_*.pth from a run folder, or a model folder (quantize)."),
    ],
    images: Annotated[list[Path], typer.Argument(help="Image file(s).")],
    question: Annotated[str, typer.Option(help="The question to ask.")] = TASK_QUESTION,
    config: Annotated[
        Path | None, typer.Option(help="Run config [default: config.yaml beside the checkpoint].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    trust_checkpoint: TrustCheckpointOption = False,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Answer the task question 'yes' when P(yes) >= this (default: the operating "
            "point curate eval saved beside the checkpoint, else the generated text)."
        ),
    ] = None,
) -> None:
    """Answer a question about each image with a trained checkpoint, with P(yes).

    Every image is opened first: one unreadable image refuses the whole call.
    """
    import json

    from curation import _render
    from curation.training.predict import predict as run_predict

    answers, report = run_predict(checkpoint, images, question, config, trust_checkpoint, threshold)
    if as_json:
        print(json.dumps(answers, indent=2))
        note = report.get("operating_point") or ""
        if note and not note.startswith("operating point from"):  # why it was not used
            err_console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
        return
    _render.predictions(console, answers, report, question)
