"""``curate eval``: score a checkpoint on a split (or compare eval.json files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from curation import defaults
from curation.cli._app import app, console, handles_errors
from curation.cli.options import DatabaseUriOption, TrustCheckpointOption, fraction


@app.command("eval")
@handles_errors
def eval_(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="A checkpoint_*.pth or a model folder (quantize), or with --compare two or "
            "more eval.json files."
        ),
    ],
    data: Annotated[
        Path | None, typer.Option(help="Split to score (e.g. OUT/test.json; the LAVIS contract).")
    ] = None,
    image_root: Annotated[
        Path | None,
        typer.Option(
            help="Image root [default: --data's folder, or its images/ sub-folder when more "
            "of the file's first 20 image paths exist there]."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for eval.json and plots [default: the checkpoint's]."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Run config [default: config.yaml beside the checkpoint].")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Images per generate() batch.", min=1)
    ] = defaults.EVAL_BATCH_SIZE,
    fiftyone_field: Annotated[
        str,
        typer.Option(
            help="When the export came from a FiftyOne dataset, write predictions to "
            "this sample field ('' to skip)."
        ),
    ] = defaults.EVAL_FIELD,
    database_uri: DatabaseUriOption = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Print eval.json files side by side instead.")
    ] = False,
    max_false_alarm: Annotated[
        float,
        typer.Option(
            help="False-alarm budget of the operating point: the P(yes) threshold that "
            "catches the most validation falls within it (of those, the highest); 0 to 1.",
            callback=fraction,
        ),
    ] = defaults.MAX_FALSE_ALARM,
    trust_checkpoint: TrustCheckpointOption = False,
) -> None:
    """Score a checkpoint on a split and raise the alarm if it collapsed to one answer.

    Task (yes/no) records get yes-rate, yes-rate on true negatives, accuracy,
    balanced accuracy, F1 and the share of answers that are neither yes nor no;
    general records get VQAv2 accuracy. Exit code 3 when the collapse alarm fires.
    """
    from curation import _render
    from curation.evaluate.run import EvalRequest, evaluate
    from curation.evaluate.run import compare as compare_reports

    if compare:
        _render.compare_table(console, paths, compare_reports(paths))
        return
    if len(paths) != 1:
        raise typer.BadParameter("give one checkpoint (or --compare A/eval.json B/eval.json)")
    if data is None:
        raise typer.BadParameter("give the split to score with --data FILE", param_hint="--data")
    request = EvalRequest(
        checkpoint=paths[0],
        data=data,
        image_root=image_root,
        out=out,
        config=config,
        batch_size=batch_size,
        trust_checkpoint=trust_checkpoint,
        max_false_alarm=max_false_alarm,
    )

    def to_fiftyone(split: Path, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        from curation.curator.exports import push_to_fiftyone

        return push_to_fiftyone(split, rows, fiftyone_field)

    with _render.progress_bar(console, "answering") as update:
        result = evaluate(request, update, publish=to_fiftyone if fiftyone_field else None)
    _render.eval_result(console, result)
    if result.collapse_alarm:
        raise typer.Exit(3)
