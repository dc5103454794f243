"""The ``curate`` command line: thin typer commands over the library.

Heavy packages (torch, lavis, fiftyone) are imported inside the commands
that need them, so ``curate --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from curation import __version__
from curation.contract import BUILDER_NAME, seed_problem
from curation.errors import CurationError, UsageError
from curation.schemas.questions import TASK_QUESTION

app = typer.Typer(
    name="curate",
    help="Curate, validate, mix and train yes/no VQA data for BLIP-2 with Salesforce LAVIS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # help text is plain text: rich markup would eat "[default: ...]" and print "<bool>" for
    # every flag (typer's rich help); click's own layout shows both right
    rich_markup_mode=None,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def _error(text: str) -> None:
    # the text quotes user input (file names, keys, questions): never read as markup
    err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)


class _Terminated(BaseException):
    """SIGTERM, raised where the command is, so its clean-up runs as for Ctrl-C."""


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    """While a command runs, SIGTERM (kill, a scheduler's stop) unwinds it like Ctrl-C:
    temp folders removed, nothing half-written. Without this the process died on the
    spot and left OUT's temporary folder behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(
        signal.SIGTERM
    ) not in (signal.SIG_DFL, None):
        yield  # not ours to change (a thread, or a handler someone else installed)
        return

    owner = os.getpid()

    def terminated(signum: int, frame: Any) -> None:
        if os.getpid() != owner:  # a forked worker (multiprocessing) inherited this handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # it dies as it would have, silently
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise _Terminated

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def seed_option(value: int) -> int:
    """A ``--seed`` option's check: the range every generator a command seeds takes."""
    if (problem := seed_problem(value)) is not None:
        raise typer.BadParameter(problem)
    return value


def handles_errors(func: F) -> F:
    """Turn a ``CurationError`` into a red message and its exit code (never a traceback).

    The file system refusing (a full disk, a read-only folder) is exit 1 with the
    file named; Ctrl-C is exit 130 with one line.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _terminate_like_ctrl_c():
                # the database is chosen here, once, before any command's body runs: a body
                # that returned early (video ingest did) used FiftyOne's own database instead
                _use_database(kwargs.get("database_uri"))
                return func(*args, **kwargs)
        except _Terminated:
            _error("terminated (SIGTERM); outputs are written whole or not at all")
            raise typer.Exit(143) from None
        except CurationError as exc:
            _error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            names = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
            _error(
                f"{names or 'a file'}: {exc.strerror or exc}. Fix: check the path, its "
                "permissions and the free disk space."
            )
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            _error("interrupted (Ctrl-C); outputs are written whole or not at all")
            raise typer.Exit(130) from None
        except Exception as exc:
            from curation.curator.database import lost_server_error

            lost = lost_server_error(exc)  # the database server went away mid-command
            if lost is None:
                raise
            _error(str(lost))
            raise typer.Exit(lost.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        console.print(f"falldown-curate {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Curate, validate, mix and train yes/no VQA data for BLIP-2 with Salesforce LAVIS."""


@app.command()
@handles_errors
def validate(
    files: Annotated[list[Path], typer.Argument(help="LAVIS VQA annotation JSON file(s).")],
    image_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder the 'image' paths are relative to [default: each file's folder, or "
            "its images/ sub-folder when more of the file's first 20 image paths exist there]."
        ),
    ] = None,
    no_images: Annotated[
        bool, typer.Option("--no-images", help="Check the schema only; do not open images.")
    ] = False,
    json_report: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write every problem to this JSON report (at most 10,000 of each kind; "
            "the rest counted).",
        ),
    ] = None,
    fix: Annotated[
        Path | None,
        typer.Option(
            help="Write a corrected copy here (string answers -> lists, renamed keys, "
            "stripped whitespace, yes/no labels -> yes/no, duplicate records dropped). "
            "The input is never changed."
        ),
    ] = None,
    max_shown: Annotated[int, typer.Option(help="Show at most this many problems.", min=0)] = 20,
) -> None:
    """Check annotation files against the LAVIS VQA contract before any model is loaded.

    Exit code 0: valid (warnings allowed); 1: problems found; 2: usage error.
    """
    from curation import _render
    from curation._io import check_report_path, refuse_overwriting_inputs, same_file
    from curation.fix import fix_file
    from curation.report import ValidationReport
    from curation.validate import validate_files

    if fix is not None and len(files) != 1:
        raise typer.BadParameter("--fix takes exactly one input file", param_hint="--fix")
    if json_report is not None:
        refuse_overwriting_inputs(json_report, files, "--json")
        check_report_path(
            json_report, "validate", ValidationReport.REPORT_KEYS, "Fix: --json a new file."
        )
        if fix is not None and same_file(json_report, fix):
            raise UsageError(
                f"--json {json_report} and --fix {fix} are the same file. "
                "Fix: give the report and the corrected copy two paths."
            )
    if fix is not None:
        refuse_overwriting_inputs(fix, files, "--fix")
    report = validate_files(files, image_root=image_root, check_image_files=not no_images)
    _render.validation_report(console, report, max_shown)
    if json_report is not None:
        report.write_json(json_report)
        console.print(f"full report: {json_report}", markup=False, highlight=False)
    if fix is not None:
        result = fix_file(files[0], fix, image_root=image_root, check_image_files=not no_images)
        _render.fix_result(console, result, max_shown)
        if result.remaining is not None and not result.remaining.ok:
            raise typer.Exit(1)
        return
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@handles_errors
def schema(
    out: Annotated[Path, typer.Option(help="Folder for the JSON Schema files.")] = Path("schemas"),
    check: Annotated[
        bool, typer.Option("--check", help="Only check that the files match the models.")
    ] = False,
) -> None:
    """Write (or --check) the JSON Schema files generated from the pydantic models."""

    from rich.markup import escape

    from curation._io import shell_quote
    from curation.schema_files import stale_json_schemas, write_json_schemas

    if check:
        if not out.is_dir():
            raise UsageError(
                f"--check: {out} is not a folder of schema files. Fix: --out the schemas/ folder "
                "(or curate schema --out DIR to write them)."
            )
        stale = stale_json_schemas(out)
        if stale:
            console.print(
                f"[red]out of date:[/] {', '.join(stale)}. Fix: curate schema --out "
                f"{escape(shell_quote(str(out)))}"
            )
            raise typer.Exit(1)
        console.print("schemas are up to date")
        return
    for path in write_json_schemas(out):
        console.print(f"wrote {path}", markup=False, highlight=False)


class EasyVqaSplit(StrEnum):
    """The splits the easy-vqa package ships."""

    train = "train"
    test = "test"


def _fraction(value: float | None) -> float | None:
    """A share or a rate: a finite number from 0 to 1 (click's range check lets nan through)."""
    if value is not None and not (math.isfinite(value) and 0 <= value <= 1):
        raise typer.BadParameter(f"must be a number from 0 to 1, got {value}")
    return None if value is None else value + 0.0  # -0.0 would be written as -0.0


ValShare = Annotated[
    float, typer.Option(help="Share of records for val (0 to 1).", callback=_fraction)
]
TestShare = Annotated[
    float, typer.Option(help="Share of records for test (0 to 1).", callback=_fraction)
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
# --- shared MongoDB (issue 14): one option on every command that opens a FiftyOne dataset
DatabaseUriOption = Annotated[
    str | None,
    typer.Option(
        help="MongoDB server holding the FiftyOne datasets, e.g. mongodb://USER:PASSWORD@HOST:27017 "
        "[default: FIFTYONE_DATABASE_URI, then database_uri in curate.yaml, then FiftyOne's own "
        "database]. The password is never printed.",
        show_default=False,
    ),
]


def _use_database(uri: str | None) -> None:
    from curation.curator.database import select_database

    select_database(uri)


# --- end shared MongoDB
ModelOption = Annotated[
    str,
    typer.Option("--model", help="Model preset the lavis.yaml is written for: tiny or blip2_t5."),
]
TrustCheckpointOption = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Load a checkpoint that holds more than tensors as full pickle. A pickle can run "
        "any code: only for files you made yourself.",
    ),
]


# --- groups and splits (issue 12): one block, shared by export and mix ---------------------


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
    model: ModelOption = "tiny",
    val_share: ValShare = 0.1,
    test_share: TestShare = 0.1,
    copy: CopyOption = False,
    overwrite: OverwriteOption = False,
    builder_name: Annotated[
        str, typer.Option(help="The YAML's datasets: key (registered as our builder).")
    ] = BUILDER_NAME,
    group_by: GroupByOption = None,
    split_file: SplitFileOption = None,
) -> None:
    """Split a validated annotation file by image and write a folder LAVIS trains on.

    Writes OUT/train.json, val.json, test.json, images/, manifest.json and lavis.yaml.
    """
    from curation import _render
    from curation.curator.exports import export_dataset
    from curation.export import ExportOptions, export_task
    from curation.split import split_fractions

    if (task is None) == (dataset is None):
        raise typer.BadParameter("give exactly one of --task FILE or --dataset NAME")
    options = ExportOptions(
        seed=seed,
        model=model,
        fractions=split_fractions(val_share, test_share),
        copy=copy,
        overwrite=overwrite,
        builder_name=builder_name,
        group_by=group_by.value if group_by is not None else None,
        split_file=split_file,
    )
    if dataset is not None:
        summary = export_dataset(dataset, out, options)
    else:
        assert task is not None
        summary = export_task(task, image_root, out, options)
    _render.export_summary(console, summary)


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
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint_*.pth from a run folder.")],
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
    ] = 0.5,
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
    val_share: ValShare = 0.1,
    test_share: TestShare = 0.1,
    model: ModelOption = "tiny",
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
    ] = 0.1,
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
    from curation.mix import MixRequest, mix_from_request
    from curation.sources import GeneralSources, parse_columns
    from curation.split import split_fractions

    request = MixRequest(
        out=out,
        ratio=vqav2_ratio,
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
        yes_share=yes_share,
        max_records=max_records,
        seed=seed,
        fractions=split_fractions(val_share, test_share),
        model=model,  # type: ignore[arg-type]
        copy=copy,
        overwrite=overwrite,
        group_by=group_by.value if group_by is not None else None,
        split_file=split_file,
        hard_negative_share=hard_negative_share,
        class_map=class_map,
        distractor_share=distractor_share,
        distractors=distractors,
    )
    _render.mix_summary(console, mix_from_request(request))


@app.command("eval")
@handles_errors
def eval_(
    paths: Annotated[
        list[Path],
        typer.Argument(help="A checkpoint_*.pth, or with --compare two or more eval.json files."),
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
    batch_size: Annotated[int, typer.Option(help="Images per generate() batch.", min=1)] = 32,
    fiftyone_field: Annotated[
        str,
        typer.Option(
            help="When the export came from a FiftyOne dataset, write predictions to "
            "this sample field ('' to skip)."
        ),
    ] = "eval_prediction",
    database_uri: DatabaseUriOption = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Print eval.json files side by side instead.")
    ] = False,
    max_false_alarm: Annotated[
        float,
        typer.Option(
            help="False-alarm budget of the operating point: the P(yes) threshold that "
            "catches the most validation falls within it (of those, the highest); 0 to 1.",
            callback=_fraction,
        ),
    ] = 0.05,
    trust_checkpoint: TrustCheckpointOption = False,
) -> None:
    """Score a checkpoint on a split and raise the alarm if it collapsed to one answer.

    Task (yes/no) records get yes-rate, yes-rate on true negatives, accuracy,
    balanced accuracy, F1 and the share of answers that are neither yes nor no;
    general records get VQAv2 accuracy. Exit code 3 when the collapse alarm fires.
    """
    from curation import _render
    from curation.evaluate.run import compare as compare_reports
    from curation.evaluate.run import evaluate

    if compare:
        _render.compare_table(console, paths, compare_reports(paths))
        return
    if len(paths) != 1:
        raise typer.BadParameter("give one checkpoint (or --compare A/eval.json B/eval.json)")
    if data is None:
        raise typer.BadParameter("give the split to score with --data FILE", param_hint="--data")
    with _render.progress_bar(console, "answering") as update:
        result = evaluate(
            paths[0],
            data,
            image_root,
            out,
            config,
            batch_size,
            on_progress=update,
            fiftyone_field=fiftyone_field or None,
            trust_checkpoint=trust_checkpoint,
            max_false_alarm=max_false_alarm,
        )
    _render.eval_result(console, result)
    if result.collapse_alarm:
        raise typer.Exit(3)


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
    # --- videos (issue 12): a segment file with --videos, or a folder of whole clips ---
    videos: Annotated[
        Path | None,
        typer.Option(help="Videos: the folder the label file's video paths are relative to."),
    ] = None,
    fps: Annotated[
        float | None,
        typer.Option(help="Videos: frames sampled per second of video [default: 2]."),
    ] = None,
    every_n: Annotated[
        int | None, typer.Option(help="Videos: sample every N-th frame instead of --fps.", min=1)
    ] = None,
    margin: Annotated[
        float,
        typer.Option(help="Videos: frames this close (s) to a segment boundary stay unsure."),
    ] = 0.5,
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
    from curation.curator.ingest import ingest as run_ingest
    from curation.curator.video import is_video_source

    if videos is not None or is_video_source(source):
        from curation.curator.video import ingest_videos

        video_result = ingest_videos(
            source,
            dataset,
            videos=videos,
            fps=fps,
            every_n=every_n,
            margin=margin,
            class_map=class_map,
            skip_bad=skip_bad,
            frames_dir=frames_dir,
            questions=_questions(questions),
            seed=seed,
            overwrite=overwrite,
            relabel=relabel,
            keep_middle=middle,
        )
        _render.video_ingest_result(console, video_result)
        return
    video_only = {"--fps": fps, "--every-n": every_n, "--class-map": class_map}
    video_only |= {"--frames-dir": frames_dir, "--skip-bad": skip_bad or None}
    video_only["--margin"] = None if margin == 0.5 else margin
    video_only["--no-middle"] = None if middle else True
    given = [name for name, value in video_only.items() if value is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)} apply to videos only (a segment file with --videos DIR, or a "
            f"folder of clips), not to {source}. Fix: leave them out"
        )

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


# --- curate find-issues (issue 13: label issues with cleanlab) ---------------------------


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
    model: ModelOption = "tiny",
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


# --- end curate find-issues -----------------------------------------------------------------


def run() -> None:  # pragma: no cover - console entry point helper
    sys.exit(app())
