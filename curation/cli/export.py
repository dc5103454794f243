"""``curate export``: split a task file or a FiftyOne dataset into a folder LAVIS trains on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curation import defaults
from curation.cli._app import app, console, handles_errors
from curation.cli.options import (
    CopyOption,
    DatabaseUriOption,
    DatasetOption,
    GroupByOption,
    ModelOption,
    OverwriteOption,
    SplitFileOption,
    TestShare,
    ValShare,
    export_options,
    seed_option,
)
from curation.contract import BUILDER_NAME


@app.command()
@handles_errors
def export(
    out: Annotated[Path, typer.Option(help="Export folder to create.")],
    task: Annotated[
        Path | None, typer.Option(help="Task annotation file (the LAVIS VQA contract).")
    ] = None,
    dataset: DatasetOption = None,
    database_uri: DatabaseUriOption = None,
    image_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder the 'image' paths start from [default: the file's folder, or its "
            "images/ sub-folder when more of the file's first 20 image paths exist there]."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed for the split (same seed, same files).", callback=seed_option)
    ] = 0,
    model: ModelOption = defaults.PRESET,
    val_share: ValShare = defaults.VAL_SHARE,
    test_share: TestShare = defaults.TEST_SHARE,
    copy: CopyOption = False,
    overwrite: OverwriteOption = False,
    builder_name: Annotated[
        str, typer.Option(help="The YAML's datasets: key (registered as our builder).")
    ] = BUILDER_NAME,
    group_by: GroupByOption = None,
    split_file: SplitFileOption = None,
) -> None:
    """Split an annotation file or a dataset by group and write a folder LAVIS trains on.

    Groups keep image copies and near-copies, and subjects or videos (--group-by), in one
    split. Writes OUT/train.json, val.json, test.json, images/, manifest.json and lavis.yaml.
    """
    from curation import _render
    from curation.curator.exports import export_dataset
    from curation.export import export_task

    if (task is None) == (dataset is None):
        raise typer.BadParameter("give exactly one of --task FILE or --dataset NAME")
    options = export_options(
        seed=seed,
        model=model,
        val_share=val_share,
        test_share=test_share,
        copy=copy,
        overwrite=overwrite,
        group_by=group_by,
        split_file=split_file,
        builder_name=builder_name,
    )
    if dataset is not None:
        summary = export_dataset(dataset, out, options)
    else:
        assert task is not None
        summary = export_task(task, image_root, out, options)
    _render.export_summary(console, summary)
