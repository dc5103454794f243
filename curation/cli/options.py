"""The option blocks shared by several commands, written once: type, help and checks.

A command's own options stay beside it; an option two commands take lives here.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from curation.contract import BUILDER_NAME, seed_problem
from curation.presets import PRESET_DIR

if TYPE_CHECKING:
    from curation.export import ExportOptions


def seed_option(value: int) -> int:
    """A ``--seed`` option's check: the range every generator a command seeds takes."""
    if (problem := seed_problem(value)) is not None:
        raise typer.BadParameter(problem)
    return value


class EasyVqaSplit(StrEnum):
    """The splits the easy-vqa package ships."""

    train = "train"
    test = "test"


def fraction(value: float | None) -> float | None:
    """A share or a rate: a finite number from 0 to 1 (click's range check lets nan through)."""
    if value is not None and not (math.isfinite(value) and 0 <= value <= 1):
        raise typer.BadParameter(f"must be a number from 0 to 1, got {value}")
    return None if value is None else value + 0.0  # -0.0 would be written as -0.0


ValShare = Annotated[
    float, typer.Option(help="Share of records for val (0 to 1).", callback=fraction)
]
TestShare = Annotated[
    float, typer.Option(help="Share of records for test (0 to 1).", callback=fraction)
]
CopyOption = Annotated[bool, typer.Option("--copy", help="Copy images instead of hard-linking.")]
OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite", help="Replace an earlier export at --out (only one this tool wrote)."
    ),
]
DatasetOption = Annotated[
    str | None, typer.Option(help="FiftyOne dataset instead of --task (review tags applied).")
]
# a shared MongoDB: one option on every command that opens a FiftyOne dataset
DatabaseUriOption = Annotated[
    str | None,
    typer.Option(
        help="MongoDB server holding the FiftyOne datasets, e.g. mongodb://USER:PASSWORD@HOST:27017 "
        "[default: FIFTYONE_DATABASE_URI, then database_uri in curate.yaml, then FiftyOne's own "
        "database]. The password is never printed.",
        show_default=False,
    ),
]

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        # one file per preset in curation/data/presets/: the help lists what ships, so a
        # new preset file is named here without an edit
        help="Model preset the lavis.yaml is written for: "
        + ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
        + ".",
    ),
]
TrustCheckpointOption = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Load a checkpoint that holds more than tensors as full pickle. A pickle can run "
        "any code: only for files you made yourself.",
    ),
]


# groups and splits: one block, shared by export and mix


class GroupBy(StrEnum):
    """What ``--group-by`` keeps in one split (curation.split.GROUP_BY)."""

    subject = "subject"
    video = "video"
    camera = "camera"
    dataset = "dataset"


GroupByOption = Annotated[
    GroupBy | None,
    typer.Option(
        help="Keep every frame of one subject (qualified by its source dataset), video, camera "
        "or source dataset in one split [default: subject when known, else video]. Frames of "
        "one video always stay together; a record without the key falls back to its video, "
        "a photo with neither to its content and curator copy group.",
        case_sensitive=False,
    ),
]
SplitFileOption = Annotated[
    Path | None,
    typer.Option(
        help='Use this split as is: JSON {"train": [keys], "val": [...], "test": [...]} or a '
        "CSV with the header split,group; keys as --group-by reads them (a subject as "
        "dataset/subject, a video as its path). --val-share and --test-share are ignored.",
    ),
]


def export_options(
    *,
    seed: int,
    model: str,
    val_share: float,
    test_share: float,
    copy: bool,
    overwrite: bool,
    group_by: GroupBy | None,
    split_file: Path | None,
    builder_name: str = BUILDER_NAME,
) -> ExportOptions:
    """The split-and-write block ``export`` and ``mix`` both take, as the library's value."""
    from curation.export import ExportOptions
    from curation.split import split_fractions

    return ExportOptions(
        seed=seed,
        model=model,
        fractions=split_fractions(val_share, test_share),
        copy=copy,
        overwrite=overwrite,
        group_by=group_by.value if group_by is not None else None,
        split_file=split_file,
        builder_name=builder_name,
    )
