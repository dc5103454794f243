"""The curator commands on a FiftyOne dataset: ``ingest``, ``check``, ``review``, ``find-issues``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from curation import defaults
from curation.cli._app import app, console, handles_errors
from curation.cli.options import (
    DatabaseUriOption,
    ModelOption,
    OverwriteOption,
    TrustCheckpointOption,
    seed_option,
)
from curation.curator.video.sampling import DEFAULT_FPS, DEFAULT_MARGIN


def _questions(path: Path | None) -> list[str]:
    from curation.schemas.questions import load_questions

    return load_questions(path).questions


@app.command()
@handles_errors
def ingest(
    source: Annotated[
        str,
        typer.Argument(
            help="A folder with fall/ and no_fall/ (and unsure/), a LAVIS annotation "
            "file, or easy-vqa[:train|test]."
        ),
    ],
    dataset: Annotated[str, typer.Option(help="FiftyOne dataset to add to (created if new).")],
    database_uri: DatabaseUriOption = None,
    image_root: Annotated[
        Path | None, typer.Option(help="Image root of an annotation file [default: its folder].")
    ] = None,
    questions: Annotated[
        Path | None,
        typer.Option(
            help="Question paraphrases for folder images [default: the packaged list, same as configs/questions.yaml]."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed for choosing each image's question.", callback=seed_option)
    ] = 0,
    max_records: Annotated[
        int | None,
        typer.Option(help="easy-vqa only: ingest this many questions (seeded sample).", min=1),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Delete the dataset first and start again.")
    ] = False,
    relabel: Annotated[
        bool,
        typer.Option(
            "--relabel",
            help="Rewrite the stored labels of samples the source now labels otherwise (a "
            "corrected label file, another --margin) and remove frames now in no segment; "
            "review tags are kept. Without it such a re-ingest is refused, naming how many.",
        ),
    ] = False,
    # --- videos: a segment file with --videos, or a folder of whole clips ---
    videos: Annotated[
        Path | None,
        typer.Option(help="Videos: the folder the label file's video paths are relative to."),
    ] = None,
    fps: Annotated[
        float | None,
        typer.Option(
            help=f"Videos: frames sampled per second of video [default: {DEFAULT_FPS:g}]."
        ),
    ] = None,
    every_n: Annotated[
        int | None, typer.Option(help="Videos: sample every N-th frame instead of --fps.", min=1)
    ] = None,
    margin: Annotated[
        float,
        typer.Option(help="Videos: frames this close (s) to a segment boundary stay unsure."),
    ] = DEFAULT_MARGIN,
    class_map: Annotated[
        Path | None,
        typer.Option(help="Videos: class map YAML [default: the packaged configs/class_map.yaml]."),
    ] = None,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Videos: leave out unreadable videos and say why."),
    ] = False,
    frames_dir: Annotated[
        Path | None,
        typer.Option(
            help="Videos: where frame JPEGs go [default: FiftyOne's dataset dir/NAME/frames]."
        ),
    ] = None,
    middle: Annotated[
        bool,
        typer.Option(
            help="Videos: also keep the middle frame of each 'yes' segment, labelled even "
            "within --margin (a short fall keeps a frame)."
        ),
    ] = True,
) -> None:
    """Add images with their question and answer to a persistent FiftyOne dataset.

    Re-ingesting the same source adds nothing twice. Every image is checked
    first: a bad one stops the ingest before anything is added. Videos: an
    OmniFall or generic segment file with --videos, or a folder of clips
    (fall/, no_fall/<kind>/): frames are cut, labelled by the class map and added.
    """
    from curation import _render
    from curation.curator import video
    from curation.curator.ingest import ingest as run_ingest

    if videos is not None or video.is_video_source(source):
        request = video.VideoIngestRequest(
            source,
            dataset,
            videos=videos,
            questions=tuple(_questions(questions)),
            sampling=video.Sampling(fps, every_n, margin, keep_middle=middle),
            class_map=class_map,
            skip_bad=skip_bad,
            frames_dir=frames_dir,
            seed=seed,
            overwrite=overwrite,
            relabel=relabel,
        )
        _render.video_ingest_result(console, video.ingest_video_request(request))
        return
    given = video.video_only_options(
        fps=fps,
        every_n=every_n,
        margin=margin,
        class_map=class_map,
        frames_dir=frames_dir,
        skip_bad=skip_bad,
        keep_middle=middle,
    )
    video.refuse_video_only_options(source, given)

    result = run_ingest(
        source,
        dataset,
        image_root=image_root,
        questions=_questions(questions),
        seed=seed,
        overwrite=overwrite,
        max_records=max_records,
        relabel=relabel,
    )
    _render.ingest_result(console, result)


@app.command()
@handles_errors
def check(
    dataset: Annotated[str, typer.Option(help="FiftyOne dataset to check.")],
    database_uri: DatabaseUriOption = None,
    hamming: Annotated[
        int,
        typer.Option(
            help="Near-duplicate threshold: differing bits of the 64-bit phash.", min=0, max=64
        ),
    ] = 4,
    json_report: Annotated[
        Path | None, typer.Option("--json", help="Write the full report (all groups) here.")
    ] = None,
) -> None:
    """Find duplicates, near-duplicates, corrupt/tiny images, conflicts and split leaks.

    Results become tags (dup:exact, dup:near, corrupt, tiny, conflict, leak) in
    the dataset, so `curate review` can filter them.
    """
    from curation import _render
    from curation.curator.checks import run_checks

    if json_report is not None:  # refuse a bad --json before the checks run
        from curation.curator.checks import check_report_path

        check_report_path(json_report)
    report = run_checks(dataset, hamming=hamming)
    _render.check_report(console, report)
    if json_report is not None:
        report.write_json(json_report)
        console.print(f"full report: {json_report}", markup=False, highlight=False)


@app.command()
@handles_errors
def review(
    dataset: Annotated[str, typer.Option(help="FiftyOne dataset to review.")],
    database_uri: DatabaseUriOption = None,
    port: Annotated[int, typer.Option(help="Port of the App.", min=1, max=65535)] = 5151,
    address: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser; print the URL.")
    ] = False,
    view: Annotated[
        str | None,
        typer.Option(
            help="Open this saved view instead of the whole dataset, e.g. likely-mislabelled "
            "(written by curate find-issues)."
        ),
    ] = None,
) -> None:
    """Open the FiftyOne App on the dataset with saved views for reviewers.

    Tag samples in the App: exclude (left out of every export), relabel:yes or
    relabel:no (answer replaced, recorded as review provenance). Ctrl-C stops.
    """
    from curation.curator.review import launch

    session = launch(dataset, port=port, address=address, browser=not no_browser, view=view)
    console.print(
        f"FiftyOne App: {session.url}  (saved views: flagged, answer-yes, answer-no, "
        "to-review, source-*, likely-mislabelled after find-issues). Ctrl-C to stop.",
        soft_wrap=True,
        highlight=False,
    )
    with contextlib.suppress(KeyboardInterrupt):
        session.wait(-1)


@app.command("find-issues")
@handles_errors
def find_issues(
    dataset: Annotated[str, typer.Option(help="FiftyOne dataset whose task labels to check.")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="--folds: dotted training overrides, e.g. run.max_epoch=20."),
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(
            help="Train K models of --model, each on K-1 folds, each scoring the fold it left "
            "out (copies and curator groups stay in one fold). Needs --out."
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Instead of --folds: a run's checkpoint, trained on an export of this "
            "dataset; scores that export's val and test samples."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="--folds: folder for the fold exports, runs and label_issues.json."),
    ] = None,
    model: ModelOption = defaults.PRESET,
    seed: Annotated[
        int, typer.Option(help="Seed of the folds and the trainings.", callback=seed_option)
    ] = 0,
    overwrite: OverwriteOption = False,
    config: Annotated[
        Path | None,
        typer.Option(help="--checkpoint's run config [default: config.yaml beside it]."),
    ] = None,
    json_report: Annotated[
        Path | None, typer.Option("--json", help="Also write the full report here.")
    ] = None,
    max_shown: Annotated[
        int, typer.Option(help="Show at most this many flagged samples.", min=0)
    ] = 20,
    trust_checkpoint: TrustCheckpointOption = False,
    database_uri: DatabaseUriOption = None,
) -> None:
    """Find likely-mislabelled task samples with cleanlab on out-of-sample P(yes).

    Writes label_issue_score and p_yes_oof to each scored sample, tags the
    flagged ones label_issue (earlier tags and scores cleared first) and saves
    the view likely-mislabelled (highest score first). Then: curate review
    --dataset NAME --view likely-mislabelled, relabel, export, train.
    """
    from curation import _render
    from curation.curator.find_issues import FindIssuesRequest
    from curation.curator.find_issues import find_issues as run_find_issues
    from curation.training.config import refuse_repeated_keys

    refuse_repeated_keys(overrides or [])
    request = FindIssuesRequest(
        dataset=dataset,
        folds=folds,
        out=out,
        checkpoint=checkpoint,
        config=config,
        model=model,
        overrides=tuple(overrides or ()),
        seed=seed,
        overwrite=overwrite,
        trust_checkpoint=trust_checkpoint,
        json_report=json_report,
    )

    def progress(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    _render.label_issues_result(console, run_find_issues(request, progress), max_shown)
