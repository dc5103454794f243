"""``curate mix``: task data balanced and mixed with general VQA, written as an export."""

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
    EasyVqaSplit,
    GroupByOption,
    ModelOption,
    OverwriteOption,
    SplitFileOption,
    TestShare,
    ValShare,
    export_options,
    seed_option,
)


@app.command()
@handles_errors
def mix(
    out: Annotated[Path, typer.Option(help="Export folder to create (same shape as export).")],
    vqav2_ratio: Annotated[
        float,
        typer.Option(
            help="Share R of each split's final records drawn from general VQA (0 <= R < 1); "
            "the other 1-R are task (fall) records. 0.7: 7 general records per 3 task records."
        ),
    ],
    task: Annotated[
        Path | None, typer.Option(help="Task annotation file (LAVIS contract).")
    ] = None,
    image_root: Annotated[Path | None, typer.Option(help="Image root of --task.")] = None,
    dataset: DatasetOption = None,
    database_uri: DatabaseUriOption = None,
    vqav2_questions: Annotated[Path | None, typer.Option(help="VQAv2 questions JSON.")] = None,
    vqav2_annotations: Annotated[Path | None, typer.Option(help="VQAv2 annotations JSON.")] = None,
    vqav2_images: Annotated[Path | None, typer.Option(help="COCO image folder for VQAv2.")] = None,
    lavis_vqa: Annotated[
        Path | None, typer.Option(help="General VQA in LAVIS's coco-vqa annotation format.")
    ] = None,
    lavis_vqa_images: Annotated[
        Path | None, typer.Option(help="Image folder of --lavis-vqa.")
    ] = None,
    easy_vqa: Annotated[
        bool,
        typer.Option("--easy-vqa", help="Use easy-VQA (from its PyPI package) as general VQA."),
    ] = False,
    easy_vqa_split: Annotated[
        EasyVqaSplit, typer.Option(help="easy-VQA split: train or test.")
    ] = EasyVqaSplit.train,
    hf_dataset: Annotated[
        Path | None, typer.Option(help="A Hugging Face dataset saved with save_to_disk().")
    ] = None,
    hf_columns: Annotated[
        str | None, typer.Option(help="Column mapping, e.g. question=q,answers=a,image=img.")
    ] = None,
    yes_share: Annotated[
        float, typer.Option(help="Share of 'yes' among the task's yes/no records after balancing.")
    ] = defaults.YES_SHARE,
    max_records: Annotated[
        int | None,
        typer.Option(
            help="Cap on the training records (ratio and balance kept; a cap too small for "
            "one yes and one no is refused with the smallest that works)."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of every random choice.", callback=seed_option)
    ] = 0,
    val_share: ValShare = defaults.VAL_SHARE,
    test_share: TestShare = defaults.TEST_SHARE,
    model: ModelOption = defaults.PRESET,
    copy: CopyOption = False,
    overwrite: OverwriteOption = False,
    group_by: GroupByOption = None,
    split_file: SplitFileOption = None,
    hard_negative_share: Annotated[
        float,
        typer.Option(
            help="Keep at least this share of each split's task 'no' records from look-alike "
            "kinds (lying down on purpose, sitting, kneeling, squatting: the class map's "
            "lookalike_kinds). Too few look-alikes is an error that says how many there are.",
        ),
    ] = 0.0,
    class_map: Annotated[
        Path | None,
        typer.Option(
            help="Class map YAML naming the look-alike kinds [default: the packaged one, same "
            "as configs/class_map.yaml]."
        ),
    ] = None,
    distractor_share: Annotated[
        float,
        typer.Option(
            help="Share of the train split's general records that ask a task image about a "
            "thing it does not show ('Is there a giraffe?'), answered 'no', so the model "
            "learns that the question decides the answer (0: none).",
        ),
    ] = defaults.DISTRACTOR_SHARE,
    distractors: Annotated[
        Path | None,
        typer.Option(
            help="Distractor questions YAML (templates and things no task image shows) "
            "[default: the packaged one, same as configs/distractors.yaml]."
        ),
    ] = None,
) -> None:
    """Mix task (fall) data, balanced to --yes-share, with general VQA at --vqav2-ratio.

    Task data comes from --task FILE (with --image-root). General VQA comes from
    VQAv2 (--vqav2-questions/--vqav2-annotations/--vqav2-images), LAVIS's format
    (--lavis-vqa), a saved Hugging Face data set (--hf-dataset) or easy-VQA
    (--easy-vqa). Writes the same folder shape as `curate export`, ready for
    `curate train OUT/lavis.yaml`.
    """
    from curation import _render
    from curation.mix import MixRequest, MixShares, mix_from_request
    from curation.sources import GeneralSources, parse_columns

    request = MixRequest(
        out=out,
        shares=MixShares(
            ratio=vqav2_ratio,
            yes_share=yes_share,
            max_records=max_records,
            hard_negative_share=hard_negative_share,
            distractor_share=distractor_share,
        ),
        task=task,
        image_root=image_root,
        dataset=dataset,
        general=GeneralSources(
            vqav2_questions=vqav2_questions,
            vqav2_annotations=vqav2_annotations,
            vqav2_images=vqav2_images,
            lavis_vqa=lavis_vqa,
            lavis_vqa_images=lavis_vqa_images,
            easy_vqa=easy_vqa,
            easy_vqa_split=easy_vqa_split.value,
            hf_dataset=hf_dataset,
            hf_columns=parse_columns(hf_columns),
        ),
        export=export_options(
            seed=seed,
            model=model,
            val_share=val_share,
            test_share=test_share,
            copy=copy,
            overwrite=overwrite,
            group_by=group_by,
            split_file=split_file,
        ),
        class_map=class_map,
        distractors=distractors,
    )
    _render.mix_summary(console, mix_from_request(request))
