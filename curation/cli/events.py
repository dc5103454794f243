"""``curate watch`` and ``curate eval-events``: alerts from frame scores, and how good they are."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from curation.cli._app import app, console, err_console, handles_errors
from curation.cli.options import TrustCheckpointOption

ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="A checkpoint_*.pth (its run folder's config.yaml beside it); its operating point "
        "(curate eval) is the alert threshold.",
    ),
]
ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server", help="Score through a running curate serve at this URL instead of --model."
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        envvar="CURATE_API_KEY",
        help="With --server: the key curate serve was started with, sent as 'Authorization: "
        "Bearer KEY' [env: CURATE_API_KEY].",
        show_default=False,
    ),
]
EventsOpt = Annotated[
    Path | None,
    typer.Option(
        "--events",
        help="Event parameters YAML [default: events.yaml beside the model (written by "
        "eval-events --tune-on val), else the shipped configs/events.yaml defaults].",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override one event parameter, key=value (repeatable), e.g. --set min_duration=2.",
    ),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(help="The operating threshold [default: the operating point beside the model]."),
]
FpsOpt = Annotated[
    float | None,
    typer.Option(help="Frames scored per second of video [default: the event parameters' fps]."),
]
BatchOpt = Annotated[int, typer.Option(min=1, help="Frames scored per batch.")]


def _params(
    model: Path | None, events: Path | None, overrides: list[str] | None, fps: float | None
) -> tuple[Any, str]:
    from curation.events.watch import event_params_for

    extra = list(overrides or [])
    if fps is not None:
        extra.append(f"fps={fps!r}")
    return event_params_for(model, events, extra)


@app.command()
@handles_errors
def watch(
    source: Annotated[
        str, typer.Argument(help="A video file, a folder of videos, or a stream URL (rtsp://...).")
    ],
    model: ModelOpt = None,
    server: ServerOpt = None,
    api_key: ApiKeyOpt = None,
    fps: FpsOpt = None,
    camera: Annotated[
        str | None,
        typer.Option(
            help="Camera id in each event [default: the video's path under the folder "
            "watched, without its suffix: a/clip for a/clip.mp4].",
        ),
    ] = None,
    events: EventsOpt = None,
    overrides: SetOpt = None,
    threshold: ThresholdOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line per event.")] = False,
    clips: Annotated[
        Path | None,
        typer.Option(
            help="Write a thumbnail strip per alert and a timeline picture per video (P(yes), "
            "the thresholds, the alerts) into this folder, for review."
        ),
    ] = None,
    batch_size: BatchOpt = 16,
    trust_checkpoint: TrustCheckpointOption = False,
) -> None:
    """Raise fall alerts on a video, a folder of videos or a live stream.

    Frames are sampled by time at --fps, scored in batches, and turned into events by
    the event engine (smoothing, hysteresis, minimum duration, refractory period, long
    lie). Each event: camera, kind (fall | long_lie | resolved), start, end (seconds
    from the start of the video), peak_p_yes, video, frame_times. A file that cannot
    be read is skipped with a message; a stream that drops is reopened with backoff.
    Ctrl-C or SIGTERM reports the events still open, then stops.
    """
    import threading

    from curation.events.scorers import load_scorer
    from curation.events.watch import check_output_folder
    from curation.events.watch import watch as run_watch

    check_output_folder(clips, "--clips")  # before the model loads
    params, where = _params(model, events, overrides, fps)
    scorer = load_scorer(
        model,
        server=server,
        threshold=threshold,
        trust_checkpoint=trust_checkpoint,
        api_key=api_key,
    )

    def on_event(event: dict[str, Any]) -> None:
        if as_json:
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
        else:
            peak = event["peak_p_yes"]
            clip = f"  {event['clip']}" if event.get("clip") else ""
            console.print(
                f"[bold]{event['kind']:<8}[/] {escape(event['video'])} "
                f"{event['start']:.1f}-{event['end']:.1f} s  peak P(yes) {peak:.2f}"
                f"{escape(clip)}",
                highlight=False,
            )

    def on_problem(text: str) -> None:
        err_console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)

    status = None if as_json or not err_console.is_terminal else err_console.status("")

    def on_progress(video: Any, t: float) -> None:
        if status is not None:
            alerts = sum(e.kind == "fall" for e in video.events)
            status.update(
                f"{escape(video.video)}: {t:.0f} s, {video.frames} frames, {alerts} alert(s)"
            )

    stop = threading.Event()
    if status is not None:
        status.start()
    try:
        result = run_watch(
            source,
            scorer,
            params,
            camera=camera,
            batch_size=batch_size,
            clips=clips,
            on_event=on_event,
            on_progress=on_progress,
            on_problem=on_problem,
            stop=stop,
            threshold=threshold,
        )
    finally:
        if status is not None:
            status.stop()
    frames = sum(v.frames for v in result.videos)
    skipped = sum(bool(v.problem) for v in result.videos)
    err_console.print(
        f"{len(result.videos)} video(s), {frames} frames, {result.alerts} alert(s); P(yes) on "
        f"{result.on:.3g} ({escape(result.threshold_note)}), off {result.off:.3g} "
        f"({escape(result.off_note)}); event "
        f"parameters: {escape(where)}" + (f"; {skipped} skipped" if skipped else ""),
        highlight=False,
        soft_wrap=True,
    )
    for v in result.videos:
        for path in v.clips:
            if path.endswith("_timeline.png"):
                err_console.print(f"timeline: {escape(path)}", highlight=False, soft_wrap=True)
    if skipped and skipped == len(result.videos):
        raise typer.Exit(1)


@app.command("eval-events")
@handles_errors
def eval_events(
    labels: Annotated[
        Path, typer.Argument(help="The label file (OmniFall CSV or generic segments).")
    ],
    videos: Annotated[Path, typer.Option(help="The videos' root, as for curate ingest.")],
    out: Annotated[Path, typer.Option(help="Folder for events_eval.json/.md and timelines/.")],
    model: ModelOpt = None,
    server: ServerOpt = None,
    api_key: ApiKeyOpt = None,
    split_file: Annotated[
        Path | None,
        typer.Option(
            help="Report on its test split (JSON {split: [dataset/subject, ...]} or CSV "
            "split,group, as curate export takes)."
        ),
    ] = None,
    subjects: Annotated[
        list[str] | None, typer.Option("--subjects", help="Report on these subjects only.")
    ] = None,
    tune_on: Annotated[
        str | None,
        typer.Option(
            help="val: choose threshold, smoothing and minimum duration on the split file's "
            "val videos, and write them to events.yaml beside the model and in OUT."
        ),
    ] = None,
    max_false_alarms: Annotated[
        float, typer.Option(min=0, help="With --tune-on: false alarms per hour allowed.")
    ] = 1.0,
    before: Annotated[
        float, typer.Option(min=0, help="An alert counts from this many seconds before a fall.")
    ] = 1.0,
    after: Annotated[
        float, typer.Option(min=0, help="... to this many seconds after the fall's end.")
    ] = 5.0,
    events: EventsOpt = None,
    overrides: SetOpt = None,
    threshold: ThresholdOpt = None,
    fps: FpsOpt = None,
    batch_size: BatchOpt = 16,
    trust_checkpoint: TrustCheckpointOption = False,
) -> None:
    """Measure fall alerts against labelled videos: recall, false alarms per hour, delay.

    Each run of fall segments (a fall and the fallen that follows) is one fall; an
    alert is a hit when it starts from --before seconds before the fall to --after
    seconds after its end, and each fall counts once. Writes OUT/events_eval.json,
    OUT/events_eval.md and a timeline picture per video in OUT/timelines/.
    """
    from curation.events.eval_events import eval_events as run_eval
    from curation.events.evaluate import Tolerance
    from curation.events.scorers import load_scorer
    from curation.events.watch import check_output_folder

    check_output_folder(out, "--out")  # before the model loads
    params, _ = _params(model if tune_on is None else None, events, overrides, fps)
    scorer = load_scorer(
        model,
        server=server,
        threshold=threshold,
        trust_checkpoint=trust_checkpoint,
        api_key=api_key,
    )
    quiet = not err_console.is_terminal

    def on_video(video: str, k: int, n: int) -> None:
        if not quiet:
            err_console.print(f"watching {k + 1}/{n}: {escape(video)}", highlight=False)

    result = run_eval(
        labels,
        videos,
        scorer,
        params,
        out,
        split_file=split_file,
        subjects=subjects,
        tune_on=tune_on,
        tolerance=Tolerance(before, after),
        max_false_alarms_per_hour=max_false_alarms,
        model=model,
        batch_size=batch_size,
        on_video=on_video,
        threshold=threshold,
    )
    r = result.report

    def fmt(value: Any, unit: str = "") -> str:
        return "n/a" if value is None else f"{value:.3g}{unit}"

    lo, hi = r["false_alarms_per_hour_ci95"]
    t = r["threshold"]
    err_console.print(
        f"P(yes) on {t['on']:.3g} ({escape(t['from'])}), off {t['off']:.3g} "
        f"({escape(t['off_from'])})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"event recall {fmt(r['event_recall'])} ({r['detected']}/{r['falls']} falls), "
        f"precision {fmt(r['event_precision'])}, {r['false_alarms']} false alarm(s) in "
        f"{r['hours']:.2f} h = {fmt(r['false_alarms_per_hour'])}/h (95% CI {fmt(lo)}-{fmt(hi)}), "
        f"delay p50 {fmt(r['delay_p50'], ' s')}, p95 {fmt(r['delay_p95'], ' s')}",
        highlight=False,
        soft_wrap=True,
    )
    for kind, n in r["false_alarms_by_kind"].items():
        console.print(f"  false alarms while {escape(kind)}: {n}", highlight=False)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for skipped in result.skipped:
        err_console.print(f"[yellow]skipped:[/] {escape(skipped)}", highlight=False, soft_wrap=True)
    if result.tuned_params is not None:
        console.print(
            f"chosen event parameters: {escape(str(result.tuned_params))}", highlight=False
        )
    console.print(f"report: {escape(str(result.out / 'events_eval.md'))}", highlight=False)
