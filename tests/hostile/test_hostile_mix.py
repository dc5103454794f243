"""Hostile inputs for `curate mix`, the splitter, `eval --compare` and the CLI's text surface.

Each test runs the real command and checks the documented promises: the exit
code, the problem named in the message, no traceback, inputs untouched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer.main
from _harness import expect, invoke, untouched

from curation.cli import app
from curation.synthetic import QUESTION, render_scene

pytest.importorskip("easy_vqa")


def _write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path


def _records(images: list[tuple[str, bool]]) -> list[dict]:
    return [
        {
            "instance_id": i,
            "image": name,
            "text_input": QUESTION,
            "answer": ["yes" if fallen else "no"],
        }
        for i, (name, fallen) in enumerate(images)
    ]


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 images, each stored under two names (``a/NN.png`` and ``b/copy-NN.png``)."""
    root = tmp_path_factory.mktemp("twice")
    (root / "a").mkdir()
    (root / "b").mkdir()
    images = []
    for i in range(40):
        fallen = i % 2 == 0
        render_scene(fallen, 100 + i, 64).save(root / "a" / f"{i:02d}.png")
        (root / "b" / f"copy-{i:02d}.png").write_bytes((root / "a" / f"{i:02d}.png").read_bytes())
        images += [(f"a/{i:02d}.png", fallen), (f"b/copy-{i:02d}.png", fallen)]
    _write_json(root / "task.json", _records(images))
    return root


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 "yes" and 16 "no" distinct images."""
    root = tmp_path_factory.mktemp("task")
    images = []
    for i in range(56):
        fallen = i < 40
        render_scene(fallen, 500 + i, 64).save(root / f"{i:02d}.png")
        images.append((f"{i:02d}.png", fallen))
    _write_json(root / "task.json", _records(images))
    return root


def _split_images(out: Path) -> dict[str, set[str]]:
    return {
        s: {r["image"] for r in json.loads((out / f"{s}.json").read_text())}
        for s in ("train", "val", "test")
    }


def _no_content_in_two_splits(out: Path) -> None:
    # exported images are named by content hash: a shared name is shared content
    images = _split_images(out)
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not images[a] & images[b], f"{a}/{b} share {sorted(images[a] & images[b])[:5]}"


# case 7: one splitter, by content hash and curator groups, for export and mix


def test_mix_keeps_copies_under_two_names_in_one_split(twice: Path, tmp_path: Path) -> None:
    out = tmp_path / "mix"
    with untouched(twice, tmp_path, allow=[out]):
        result = invoke(["mix", "--task", twice / "task.json", "--vqav2-ratio", "0", "--out", out])
    expect(result, 0, "wrote")
    _no_content_in_two_splits(out)
    assert all(_split_images(out).values())


def test_export_keeps_copies_under_two_names_in_one_split(twice: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    with untouched(twice, tmp_path, allow=[out]):
        result = invoke(["export", "--task", twice / "task.json", "--out", out])
    expect(result, 0)
    _no_content_in_two_splits(out)


def test_splitter_joins_curator_groups_and_content(twice: Path) -> None:
    """A copy in a curator group and its twin outside it share one split."""
    from curation.export import ExportRecord, split_records

    recs = []
    for i in range(40):
        # the curator grouped a/NN with a near copy; b/copy-NN (same bytes) carries no group
        recs.append(
            ExportRecord(twice / "a" / f"{i:02d}.png", QUESTION, ("yes",), group=f"near:{i}")
        )
        recs.append(ExportRecord(twice / "b" / f"copy-{i:02d}.png", QUESTION, ("no",)))
        recs.append(
            ExportRecord(twice / "a" / f"{(i + 1) % 40:02d}.png", "q2", ("yes",), group=f"near:{i}")
        )
    where: dict[Path, set[str]] = {}
    for split, chosen in split_records(recs, (0.6, 0.2, 0.2), seed=3).items():
        for r in chosen:
            where.setdefault(r.image.resolve(), set()).add(split)
    # near:i joins a/i and a/i+1, content joins a/i and b/copy-i: one chain, one split
    assert all(len(s) == 1 for s in where.values())
    assert len({next(iter(s)) for s in where.values()}) == 1


# --max-records: respect the cap and the balance, or refuse with the smallest feasible cap


def test_max_records_too_small_is_refused_with_the_smallest_cap(task: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    args = ["mix", "--task", task / "task.json", "--easy-vqa", "--vqav2-ratio", "0.9"]
    with untouched(task, tmp_path):
        result = invoke([*args, "--max-records", "5", "--out", out])
    expect(result, 2, "--max-records 20", "at --vqav2-ratio 0.9")
    assert not out.exists()


def test_max_records_holds_the_cap_ratio_and_balance(task: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    args = ["mix", "--task", task / "task.json", "--easy-vqa", "--vqav2-ratio", "0.9"]
    with untouched(task, tmp_path, allow=[out]):
        result = invoke([*args, "--max-records", "25", "--out", out])
    expect(result, 0)
    prov = json.loads((out / "train.provenance.json").read_text())
    recs = json.loads((out / "train.json").read_text())
    task_answers = [r["answer"][0] for r, p in zip(recs, prov, strict=True) if p["part"] == "task"]
    assert len(recs) <= 25
    assert task_answers.count("yes") == task_answers.count("no") >= 1
    general = sum(p["part"] == "general" for p in prov)
    assert general == 9 * len(task_answers)


@pytest.mark.parametrize("share", ["0.5", "0.25"])
def test_max_records_cap_is_exact_when_feasible(task: Path, tmp_path: Path, share: str) -> None:
    from curation.export import task_records_from_file
    from curation.mix import plan_mix

    records = task_records_from_file(task / "task.json")
    for cap in range(1, 30):
        try:
            plan = plan_mix(records, [], ratio=0, yes_share=float(share), max_records=cap)
        except Exception as exc:  # noqa: BLE001 - the refusal must be a usage error
            from curation.errors import UsageError

            assert isinstance(exc, UsageError), exc
            continue
        train = plan.splits["train"]
        assert len(train) <= cap
        yes = sum(r.answers == ("yes",) for r in train)
        assert yes >= 1 and len(train) - yes >= 1


# mix over its own input


@pytest.mark.parametrize("where", ["the task folder", "inside the image root"])
def test_mix_refuses_to_write_over_its_input(task: Path, tmp_path: Path, where: str) -> None:
    import shutil

    task = Path(shutil.copytree(task, tmp_path / "raw"))  # the data this test risks is its own
    out = task if where == "the task folder" else task / "sub"
    with untouched(task):
        result = invoke(
            ["mix", "--task", task / "task.json", "--vqav2-ratio", "0", "--out", out, "--overwrite"]
        )
    expect(result, 2, str(task))
    assert "--out" in result.output


# eval --compare on files that are not eval reports


@pytest.mark.parametrize("kind", ["png", "list", "other json", "binary"])
def test_compare_refuses_files_that_are_not_eval_reports(
    tmp_path: Path, kind: str, image_dir: Path
) -> None:
    good = _write_json(
        tmp_path / "eval.json",
        {"n": 1, "task": {"n": 1, "yes_rate": 0.5}, "general": {"n": 0}, "collapse_alarm": False},
    )
    bad = tmp_path / f"bad-{kind.replace(' ', '-')}.json"
    if kind == "png":
        bad = image_dir / "fall.png"
    elif kind == "list":
        _write_json(bad, [1, 2, 3])
    elif kind == "other json":
        _write_json(bad, {"instance_id": 1, "answer": ["yes"]})
    else:
        bad.write_bytes(b"\xff\xfe\x00garbage\x80")
    with untouched(tmp_path, image_dir):
        result = invoke(["eval", "--compare", good, bad])
    expect(result, 1, str(bad), "eval.json")


# user text is never read as rich markup


@pytest.mark.parametrize("name", ["[/]", "[v2]", "[bold]x[/bold]", "a[/red]b"])
def test_error_text_with_brackets_is_shown_as_is(tmp_path: Path, name: str) -> None:
    missing = tmp_path / f"{name}questions.json"
    result = invoke(
        [
            "mix",
            "--task",
            tmp_path / "t.json",
            "--vqav2-questions",
            missing,
            "--vqav2-annotations",
            tmp_path / "a.json",
            "--vqav2-images",
            tmp_path,
            "--vqav2-ratio",
            "0.5",
            "--out",
            tmp_path / "o",
        ]
    )
    expect(result, 2, f"VQAv2 questions file not found: {missing}")
    # and the next error is still printed
    result = invoke(["eval", "--compare", tmp_path / "x.json", tmp_path / "y.json"])
    expect(result, 2, "eval report not found")


def test_mix_summary_shows_bracketed_out_folder(task: Path, tmp_path: Path) -> None:
    out = tmp_path / "[v2]mix[bold]"
    with untouched(task, tmp_path, allow=[out]):
        result = invoke(["mix", "--task", task / "task.json", "--vqav2-ratio", "0", "--out", out])
    expect(result, 0, f"wrote {out}")
    # the table title wraps at the table's width
    assert f"Mixcomposition({out})" in "".join(result.output.split())


def test_compare_table_shows_bracketed_names(tmp_path: Path) -> None:
    report = {
        "n": 2,
        "data": "[/]odd.json",
        "task": {"n": 2, "yes_rate": 0.5},
        "general": {"n": 0},
        "collapse_alarm": False,
    }
    a = _write_json(tmp_path / "[v2]a.json", report)
    b = _write_json(tmp_path / "b[bold].json", report)
    result = invoke(["eval", "--compare", a, b])
    expect(result, 0, f"A: {a}", f"B: {b}", "0.500", "[/]odd")


def _commands() -> list[str]:
    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("command", ["", *_commands()])
def test_help_shows_every_option_help_whole(command: str) -> None:
    group = typer.main.get_command(app)
    cmd = group.commands[command] if command else group  # type: ignore[attr-defined]
    result = invoke([command, "--help"] if command else ["--help"])
    expect(result, 0)
    shown = _squash(result.output)
    helps = [p.help for p in cmd.params if getattr(p, "help", None)]
    assert helps, "no option help found: the test would assert nothing"
    for text in helps:
        assert _squash(text) in shown, f"{text!r} not in\n{result.output}"
    assert "<bool>" not in result.output


# numbers shown to users, option values checked where they are parsed


def test_split_shares_are_shown_rounded(task: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    result = invoke(
        [
            "mix",
            "--task",
            task / "task.json",
            "--vqav2-ratio",
            "0",
            "--val-share",
            "0.2",
            "--test-share",
            "0.1",
            "--out",
            out,
        ]
    )
    expect(result, 0)
    assert json.loads((out / "manifest.json").read_text())["mix"]["fractions"] == [0.7, 0.2, 0.1]
    result = invoke(
        [
            "mix",
            "--task",
            task / "task.json",
            "--vqav2-ratio",
            "0",
            "--val-share",
            "0.6",
            "--test-share",
            "0.5",
            "--out",
            tmp_path / "m2",
        ]
    )
    expect(result, 2, "--val-share 0.6", "--test-share 0.5", "1.1")
    assert "0000000" not in result.output and "9999999" not in result.output


@pytest.mark.parametrize("extra", [[], ["--easy-vqa"]])
def test_easy_vqa_split_must_be_train_or_test(task: Path, tmp_path: Path, extra: list[str]) -> None:
    with untouched(task, tmp_path):
        result = invoke(
            [
                "mix",
                "--task",
                task / "task.json",
                *extra,
                "--easy-vqa-split",
                "nope",
                "--vqav2-ratio",
                "0",
                "--out",
                tmp_path / "m",
            ]
        )
    expect(result, 2, "nope", "train", "test")


@pytest.mark.parametrize("content", ["empty", "junk state"])
def test_hf_folder_that_is_not_a_saved_dataset_is_named(
    task: Path, tmp_path: Path, content: str
) -> None:
    pytest.importorskip("datasets")
    hf = tmp_path / "hf"
    hf.mkdir()
    if content == "junk state":
        (hf / "state.json").write_text("{not json")
        (hf / "dataset_info.json").write_text("[]")
    with untouched(task, tmp_path):
        result = invoke(
            [
                "mix",
                "--task",
                task / "task.json",
                "--hf-dataset",
                hf,
                "--vqav2-ratio",
                "0.5",
                "--out",
                tmp_path / "m",
            ]
        )
    expect(result, 1, str(hf), "save_to_disk")


@pytest.mark.parametrize(
    ("column", "values", "field"),
    [("a", [3, 4], "answers"), ("q", [None, "why?"], "question"), ("a", [[], ["x"]], "answers")],
)
def test_hf_rows_of_the_wrong_type_are_named(
    task: Path, tmp_path: Path, column: str, values: list, field: str
) -> None:
    datasets = pytest.importorskip("datasets")
    image = str(task / "00.png")
    data = {"q": ["what?", "why?"], "a": [["x"], ["y"]], "img": [image, image]}
    data[column] = values
    datasets.Dataset.from_dict(data).save_to_disk(str(tmp_path / "hf"))
    with untouched(task, tmp_path):
        result = invoke(
            [
                "mix",
                "--task",
                task / "task.json",
                "--hf-dataset",
                tmp_path / "hf",
                "--hf-columns",
                "question=q,answers=a,image=img",
                "--vqav2-ratio",
                "0.5",
                "--out",
                tmp_path / "m",
            ]
        )
    expect(result, 1, "record #0", f"({field})", "--hf-columns")


@pytest.mark.parametrize(
    ("raised", "code", "needle"),
    [
        (PermissionError(13, "Permission denied", "/ro/[v2]/train.json"), 1, "/ro/[v2]/train.json"),
        (OSError(28, "No space left on device"), 1, "No space left on device"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_file_system_refusals_and_ctrl_c_are_one_line(
    task: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    raised: BaseException,
    code: int,
    needle: str,
) -> None:
    import curation.export as export

    def refuse(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(export, "_write_vqa_eval", refuse)
    with untouched(task, tmp_path):
        result = invoke(
            ["mix", "--task", task / "task.json", "--vqav2-ratio", "0", "--out", tmp_path / "m"]
        )
    expect(result, code, needle)


def test_mix_refuses_to_write_into_a_general_image_folder(task: Path, tmp_path: Path) -> None:
    general = tmp_path / "general"
    (general / "images").mkdir(parents=True)
    rows = []
    for i in range(30):
        name = f"g{i}.png"
        render_scene(i % 2 == 0, 900 + i, 64).save(general / "images" / name)
        rows.append({"question_id": i, "question": "what?", "answer": ["x"], "image": name})
    _write_json(general / "vqa.json", rows)
    out = general / "images" / "mix"
    with untouched(task, tmp_path):
        result = invoke(
            [
                "mix",
                "--task",
                task / "task.json",
                "--lavis-vqa",
                general / "vqa.json",
                "--lavis-vqa-images",
                general / "images",
                "--vqav2-ratio",
                "0.3",
                "--out",
                out,
            ]
        )
    expect(result, 2, f"--out {out}", str(general / "images"))


def test_renderers_show_user_text_as_is(tmp_path: Path) -> None:
    """Questions, image names, answers, reasons and run folders are printed, never parsed."""
    from rich.console import Console

    from curation import _render
    from curation.evaluate.run import EvalResult
    from curation.training.train import TrainEvent

    console = Console(record=True, width=300, force_terminal=False)
    question = "Is [bold]anyone[/bold] falling? [/]"
    report = {"path": "ckpt[/].pth", "loaded": 1, "missing": [], "unexpected": []}
    _render.predictions(console, [{"image": "[v2]a.png", "answer": "[/]yes"}], report, question)
    task = dict.fromkeys(
        [
            "yes_rate",
            "true_yes_rate",
            "yes_rate_negatives",
            "accuracy",
            "balanced_accuracy",
            "f1_yes",
            "other_rate",
        ],
        0.5,
    )
    eval_report = {
        "n": 1,
        "task": {"n": 1, **task},
        "general": {"n": 0, "per_answer_type": {"[v2]kind": 0.25}},
        "collapse_alarm": True,
        "collapse_reasons": ["answers [/]yes to everything"],
    }
    try:  # the report is an EvalReport dataclass where it exists, a plain dict before
        from curation.evaluate.report import EvalReport  # type: ignore[import-not-found]

        body = EvalReport.from_dict({"checkpoint": "c", "data": "d", **eval_report})
    except ImportError:
        body = eval_report
    _render.eval_result(console, EvalResult(body, tmp_path, [tmp_path / "[v2]eval.json"]))
    progress = _render.TrainProgress(console)
    progress.console = console
    progress.update(
        TrainEvent(
            "start",
            data={
                "device": "cpu",
                "trainable": 1,
                "epochs": 1,
                "run_dir": "runs/[v2]",
                "load_report": report,
            },
        )
    )
    text = "".join(console.export_text().split())  # a table title wraps at the table's width
    for needle in (
        question,
        "[v2]a.png",
        "[/]yes",
        "ckpt[/].pth",
        "general [v2]kind",
        "answers [/]yes to everything",
        "[v2]eval.json",
        "runs/[v2]",
    ):
        assert "".join(needle.split()) in text, f"{needle!r} not in\n{text}"


def test_export_split_shares_are_shown_rounded(task: Path, tmp_path: Path) -> None:
    out = tmp_path / "e"
    base = ["export", "--task", task / "task.json", "--val-share"]
    with untouched(task, tmp_path, allow=[out]):
        result = invoke([*base, "0.2", "--test-share", "0.1", "--out", out])
    expect(result, 0)
    assert json.loads((out / "manifest.json").read_text())["fractions"] == [0.7, 0.2, 0.1]
    with untouched(task, tmp_path):
        result = invoke([*base, "0.6", "--test-share", "0.5", "--out", tmp_path / "e2"])
    expect(result, 2, "--val-share 0.6", "--test-share 0.5", "1.1")
    assert "0000000" not in result.output and "9999999" not in result.output
