"""`curate mix`: sources, ratio and balance, splits, determinism, provenance, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_json
from PIL import Image
from typer.testing import CliRunner

from curation.cli import app
from curation.distractors import load_distractors
from curation.errors import DataError
from curation.export import ExportRecord
from curation.mix import mix, plan_mix
from curation.sources import load_easy_vqa, load_hf_dataset, load_lavis_vqa, load_vqav2
from curation.synthetic import QUESTION, render_scenes
from curation.validate import validate_files

easy_vqa = pytest.importorskip("easy_vqa")
runner = CliRunner()


@pytest.fixture(scope="module")
def vqa_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small VQAv2 in the official format, on real easy-VQA images saved as COCO JPEGs."""
    root = tmp_path_factory.mktemp("vqav2")
    (root / "images").mkdir()
    questions, answers, image_ids = easy_vqa.get_train_questions()
    paths = easy_vqa.get_train_image_paths()
    qs, anns, lavis = [], [], []
    for n, (q, a, i) in enumerate(zip(questions, answers, image_ids, strict=True)):
        if i >= 40:
            continue
        name = f"COCO_train2014_{i:012d}.jpg"
        if not (root / "images" / name).exists():
            Image.open(paths[i]).convert("RGB").save(root / "images" / name, quality=90)
        human = [a] * 8 + ["maybe", a]  # ten human answers, as VQAv2 has
        kind = "yes/no" if a in ("yes", "no") else "other"
        qs.append({"image_id": i, "question": q, "question_id": 1000 + n})
        anns.append(
            {
                "question_id": 1000 + n,
                "image_id": i,
                "answer_type": kind,
                "multiple_choice_answer": a,
                "question_type": "what",
                "answers": [
                    {"answer": x, "answer_confidence": "yes", "answer_id": k + 1}
                    for k, x in enumerate(human)
                ],
            }
        )
        lavis.append({"question_id": 1000 + n, "question": q, "answer": human, "image": name})
    write_json(root / "questions.json", {"data_subtype": "train2014", "questions": qs})
    write_json(root / "annotations.json", {"annotations": anns})
    write_json(root / "lavis_vqa.json", lavis)
    return root


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An imbalanced task set: 40 "yes" (lying) and 16 "no" (standing) scenes."""
    root = tmp_path_factory.mktemp("task")
    scenes = render_scenes(root, n_fall=40, n_no_fall=16, seed=5, size=64)
    records = [
        {
            "instance_id": f"t{i}",
            "image": s.path.relative_to(root).as_posix(),
            "text_input": QUESTION,
            "answer": ["yes" if s.fallen else "no"],
        }
        for i, s in enumerate(scenes)
    ]
    return write_json(root / "task.json", records)


def vqa_args(vqa_dir: Path) -> list[str]:
    return [
        "--vqav2-questions",
        str(vqa_dir / "questions.json"),
        "--vqav2-annotations",
        str(vqa_dir / "annotations.json"),
        "--vqav2-images",
        str(vqa_dir / "images"),
    ]


def run_mix(task_file: Path, vqa_dir: Path, out: Path, *extra: str):
    return runner.invoke(
        app,
        [
            "mix",
            "--task",
            str(task_file),
            *vqa_args(vqa_dir),
            "--vqav2-ratio",
            "0.7",
            "--seed",
            "0",
            "--out",
            str(out),
            *extra,
        ],
    )


def test_source_loaders_read_small_real_files(vqa_dir: Path, tmp_path: Path) -> None:
    v2 = load_vqav2(vqa_dir / "questions.json", vqa_dir / "annotations.json", vqa_dir / "images")
    assert len(v2.rows) > 100 and all(Path(r.image).is_file() for r in v2.rows)
    assert {r.answer_type for r in v2.rows} == {"yes/no", "other"}
    assert len(v2.rows[0].answer_list()) == 10 and v2.rows[0].answer_list()[8] == "maybe"
    lv = load_lavis_vqa(vqa_dir / "lavis_vqa.json", vqa_dir / "images")
    assert [r.question for r in lv.rows] == [r.question for r in v2.rows]
    ez = load_easy_vqa("test")
    assert len(ez.rows) == 9673 and Path(ez.rows[0].image).is_file()


def test_hf_loader_reads_a_saved_dataset(vqa_dir: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    v2 = load_vqav2(vqa_dir / "questions.json", vqa_dir / "annotations.json", vqa_dir / "images")
    hf = datasets.Dataset.from_dict(
        {
            "q": [r.question for r in v2.rows[:20]],
            "a": [list(r.answer_list()) for r in v2.rows[:20]],
            "img": [r.image for r in v2.rows[:20]],
        }
    ).cast_column("img", datasets.Image())
    hf.save_to_disk(str(tmp_path / "hf"))
    pool = load_hf_dataset(tmp_path / "hf", {"question": "q", "answers": "a", "image": "img"})
    assert [r.question for r in pool.rows] == [r.question for r in v2.rows[:20]]
    assert all(Path(r.image).is_file() for r in pool.rows)


def test_ratio_balance_and_splits(task_file: Path, vqa_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "mix"
    result = run_mix(task_file, vqa_dir, out)
    assert result.exit_code == 0, result.output
    assert "general/vqav2/yes/no" in result.output and "dropped for balance" in result.output
    images: dict[str, set[str]] = {}
    for split in ("train", "val", "test"):
        prov = json.loads((out / f"{split}.provenance.json").read_text())
        recs = json.loads((out / f"{split}.json").read_text())
        general = sum(p["part"] == "general" for p in prov)
        task = [r for r, p in zip(recs, prov, strict=True) if p["part"] == "task"]
        yes = sum(r["answer"] == ["yes"] for r in task)
        assert abs(general - 0.7 * len(recs)) <= 1, split
        assert abs(yes - 0.5 * len(task)) <= 1, split
        images[split] = {r["image"] for r in recs}
    assert not (
        images["train"] & images["val"]
        or images["train"] & images["test"]
        or images["val"] & images["test"]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mix"]["vqav2_ratio"] == 0.7 and manifest["seed"] == 0
    assert {Path(i["path"]).name for i in manifest["inputs"]} == {
        "task.json",
        "questions.json",
        "annotations.json",
    }
    assert (out / "composition.png").read_bytes()[:4] == b"\x89PNG"
    report = validate_files(
        [out / f"{s}.json" for s in ("train", "val", "test")], image_root=out / "images"
    )
    assert report.ok, [p.render() for p in report.errors]


def test_same_seed_gives_byte_identical_files(
    task_file: Path, vqa_dir: Path, tmp_path: Path
) -> None:
    for name in ("a", "b"):
        assert run_mix(task_file, vqa_dir, tmp_path / name).exit_code == 0
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    for rel in files:
        if rel.name == "lavis.yaml":  # its first comment line names the output folder
            continue
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert run_mix(task_file, vqa_dir, tmp_path / "c", "--seed", "0").exit_code == 0
    run_mix(task_file, vqa_dir, tmp_path / "d", "--seed", "1")
    assert (tmp_path / "c" / "train.json").read_bytes() != (
        tmp_path / "d" / "train.json"
    ).read_bytes()


def test_provenance_round_trip(task_file: Path, vqa_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "mix"
    assert run_mix(task_file, vqa_dir, out).exit_code == 0
    anns = {
        str(a["question_id"]): a
        for a in json.loads((vqa_dir / "annotations.json").read_text())["annotations"]
    }
    task = {r["instance_id"]: r for r in json.loads(task_file.read_text())}
    distractor_questions = load_distractors().questions()
    for split in ("train", "val", "test"):
        recs = json.loads((out / f"{split}.json").read_text())
        for rec, prov in zip(
            recs, json.loads((out / f"{split}.provenance.json").read_text()), strict=True
        ):
            assert rec["instance_id"] == prov["instance_id"]
            if prov["source"] == "distractor":  # a task image asked about an absent thing
                task_id = prov["original_id"].split("/distractor-")[0]
                assert prov["original_image"] == Path(task[task_id]["image"]).name
                assert rec["answer"] == ["no"] and rec["text_input"] in distractor_questions
                assert split == "train"
            elif prov["part"] == "general":
                original = anns[prov["original_id"]]
                assert prov["original_answers"] == [a["answer"] for a in original["answers"]]
                assert rec["answer"] == prov["original_answers"]
                assert prov["answer_type"] == original["answer_type"]
            else:
                assert rec["answer"] == task[prov["original_id"]]["answer"]
                assert rec["text_input"] == task[prov["original_id"]]["text_input"]


def test_max_records_keeps_ratio_and_balance(task_file: Path, vqa_dir: Path) -> None:
    from curation.export import task_records_from_file

    task = task_records_from_file(task_file)
    pool = load_vqav2(vqa_dir / "questions.json", vqa_dir / "annotations.json", vqa_dir / "images")
    plan = plan_mix(task, [pool], ratio=0.5, seed=0, max_records=20)
    train = plan.splits["train"]
    assert abs(len(train) - 20) <= 1
    assert (
        plan.achieved()["yes_share"] == 0.5 and abs(plan.achieved()["general_share"] - 0.5) < 0.06
    )


def test_ratio_zero_needs_no_general_source(task_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["mix", "--task", str(task_file), "--vqav2-ratio", "0", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    prov = json.loads((tmp_path / "m" / "train.provenance.json").read_text())
    assert {p["part"] for p in prov} == {"task"}


@pytest.mark.parametrize("ratio", ["1", "1.5", "-0.1"])
def test_bad_ratio_is_a_usage_error(
    task_file: Path, vqa_dir: Path, tmp_path: Path, ratio: str
) -> None:
    result = runner.invoke(
        app,
        [
            "mix",
            "--task",
            str(task_file),
            *vqa_args(vqa_dir),
            "--vqav2-ratio",
            ratio,
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2
    assert "--vqav2-ratio must be in [0, 1)" in result.output
    assert not (tmp_path / "m").exists()


def test_missing_inputs_are_named(task_file: Path, vqa_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "mix",
            "--task",
            str(task_file),
            "--vqav2-questions",
            str(tmp_path / "nope.json"),
            "--vqav2-annotations",
            str(vqa_dir / "annotations.json"),
            "--vqav2-images",
            str(vqa_dir / "images"),
            "--vqav2-ratio",
            "0.7",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2
    assert "VQAv2 questions file not found" in result.output and "visualqa.org" in result.output
    result = runner.invoke(app, ["mix", "--vqav2-ratio", "0.7", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--task" in result.output
    result = runner.invoke(
        app, ["mix", "--task", str(task_file), "--vqav2-ratio", "0.7", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2 and "needs a general VQA source" in result.output


def test_not_enough_general_data_is_a_data_error(
    task_file: Path, vqa_dir: Path, tmp_path: Path
) -> None:
    result = run_mix(task_file, vqa_dir, tmp_path / "m", "--vqav2-ratio", "0.99")
    assert result.exit_code == 1
    assert "lower --vqav2-ratio or add general VQA data" in result.output
    assert not (tmp_path / "m").exists()


def test_interrupted_write_leaves_nothing(
    task_file: Path, vqa_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import curation.export as export

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_write_vqa_eval", boom)
    from curation.export import task_records_from_file

    pool = load_vqav2(vqa_dir / "questions.json", vqa_dir / "annotations.json", vqa_dir / "images")
    with pytest.raises(KeyboardInterrupt):
        mix(task_records_from_file(task_file), [pool], tmp_path / "m", ratio=0.5)
    assert list(tmp_path.iterdir()) == []


def test_easy_vqa_mix_through_the_cli(task_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "mix",
            "--task",
            str(task_file),
            "--easy-vqa",
            "--vqav2-ratio",
            "0.7",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "general/easy_vqa/yes/no" in result.output


def test_general_rows_become_general_records(vqa_dir: Path) -> None:
    pool = load_vqav2(vqa_dir / "questions.json", vqa_dir / "annotations.json", vqa_dir / "images")
    task = [
        ExportRecord(Path(pool.rows[0].image), QUESTION, ("yes",)),
        ExportRecord(Path(pool.rows[-1].image), QUESTION, ("no",)),
    ]
    plan = plan_mix(task, [pool], ratio=0.5, seed=0, fractions=(1.0, 0.0, 0.0))
    general = [r for r in plan.splits["train"] if r.part == "general"]
    assert len(general) == 2 and general[0].source == "vqav2" and len(general[0].answers) == 10
    with pytest.raises(DataError, match="add 'no' examples"):
        plan_mix(task[:1], [pool], ratio=0.5)


def test_mix_from_request_is_the_whole_command(task_file: Path, tmp_path: Path) -> None:
    """A notebook or pipeline makes the same mix as the CLI with one call."""
    from curation.export import ExportOptions
    from curation.mix import MixRequest, MixShares, mix_from_request
    from curation.sources import GeneralSources

    request = MixRequest(
        out=tmp_path / "lib",
        shares=MixShares(ratio=0.5, max_records=30),
        task=task_file,
        general=GeneralSources(easy_vqa=True, easy_vqa_split="test"),
        export=ExportOptions(fractions=(0.7, 0.2, 0.1)),
    )
    result = mix_from_request(request)
    assert len(result.plan.splits["train"]) <= 30 and result.dataset is None
    manifest = json.loads((tmp_path / "lib" / "manifest.json").read_text())
    assert manifest["command"] == request.command()
    assert "--max-records 30 --val-share 0.2 --test-share 0.1" in manifest["command"]
    cli = runner.invoke(
        app,
        [
            "mix",
            "--task",
            str(task_file),
            "--easy-vqa",
            "--easy-vqa-split",
            "test",
            "--vqav2-ratio",
            "0.5",
            "--max-records",
            "30",
            "--val-share",
            "0.2",
            "--test-share",
            "0.1",
            "--out",
            str(tmp_path / "cli"),
        ],
    )
    assert cli.exit_code == 0, cli.output
    for name in ("train.json", "val.json", "test.json", "manifest.json"):
        assert (tmp_path / "lib" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()


# --- distractor questions: task images asked about things they do not show -----------------


def test_distractors_ask_train_task_images_about_absent_things(
    task_file: Path, vqa_dir: Path, tmp_path: Path
) -> None:
    """Without them, no question about a task image is ever answered "no" for a reason other
    than the label: a model can answer the fall whatever it is asked."""
    out = tmp_path / "mix"
    result = run_mix(task_file, vqa_dir, out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())["mix"]
    questions = set(load_distractors().questions())
    task_images: dict[str, set[str]] = {}
    for split in ("train", "val", "test"):
        recs = json.loads((out / f"{split}.json").read_text())
        provs = json.loads((out / f"{split}.provenance.json").read_text())
        task_images[split] = {
            r["image"] for r, p in zip(recs, provs, strict=True) if p["part"] == "task"
        }
        general = [(r, p) for r, p in zip(recs, provs, strict=True) if p["part"] == "general"]
        distract = [(r, p) for r, p in general if p["source"] == "distractor"]
        assert manifest["distractors"]["records"][split] == len(distract)
        if split != "train":  # val and test: real general VQA only
            assert not distract
            continue
        # 0.1 of the train split's general records, each a listed question answered "no"
        assert len(distract) == round(0.1 * len(general)) > 0
        assert all(r["text_input"] in questions and r["answer"] == ["no"] for r, _ in distract)
        assert {r["image"] for r, _ in distract} <= task_images["train"]
        # asked about fall and no-fall images alike
        answers = {
            r["image"]: r["answer"] for r, p in zip(recs, provs, strict=True) if p["part"] == "task"
        }
        assert {answers[r["image"]][0] for r, _ in distract} == {"yes", "no"}
    assert manifest["distractors"]["share"] == 0.1
    assert manifest["distractors"]["questions"] == len(questions)
    assert "distractor questions about task images" in result.output
    # --distractor-share 0: none, and every other record as before
    none = tmp_path / "none"
    assert run_mix(task_file, vqa_dir, none, "--distractor-share", "0").exit_code == 0
    train = json.loads((none / "train.provenance.json").read_text())
    assert not [p for p in train if p["source"] == "distractor"]
    assert len(train) == len(json.loads((out / "train.json").read_text()))


def test_distractor_files_are_checked(task_file: Path, vqa_dir: Path, tmp_path: Path) -> None:
    bad = {
        "no slot": 'templates: ["Is there a dog?"]\nthings: ["a giraffe"]\n',
        "task question": 'templates: ["Is {thing} falling in this image?"]\nthings: ["anyone"]\n',
    }
    for name, text in bad.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        result = run_mix(task_file, vqa_dir, tmp_path / name, "--distractors", str(path))
        assert result.exit_code == 1, result.output
        assert str(path.name) in result.output and "Fix:" in result.output
        assert not (tmp_path / name).exists()
    result = run_mix(task_file, vqa_dir, tmp_path / "x", "--distractor-share", "1.5")
    assert result.exit_code == 2 and "--distractor-share must be between 0 and 1" in result.output
    own = tmp_path / "own.yaml"
    own.write_text('templates: ["Is there {thing} here?"]\nthings: ["a yak"]\n')
    assert run_mix(task_file, vqa_dir, tmp_path / "own", "--distractors", str(own)).exit_code == 0
    train = json.loads((tmp_path / "own" / "train.json").read_text())
    assert "Is there a yak here?" in {r["text_input"] for r in train}
    manifest = json.loads((tmp_path / "own" / "manifest.json").read_text())
    assert manifest["mix"]["distractors"]["file"] == "own.yaml"
    assert "own.yaml" in {Path(i["path"]).name for i in manifest["inputs"]}


@pytest.mark.parametrize(
    ("shares", "option"),
    [
        ({"ratio": 1.5}, "--vqav2-ratio"),
        ({"ratio": 0.5, "yes_share": 1.0}, "--yes-share"),
        ({"ratio": 0.5, "max_records": 0}, "--max-records"),
        ({"ratio": 0.5, "hard_negative_share": 2.0}, "--hard-negative-share"),
    ],
)
def test_mix_request_refuses_a_share_before_reading_any_data(
    tmp_path: Path, shares: dict[str, float], option: str
) -> None:
    """Every share is checked in one place, before the task file is opened (here it is
    missing, which would be a data error)."""
    from curation.errors import UsageError
    from curation.mix import MixRequest, MixShares, mix_from_request

    request = MixRequest(
        out=tmp_path / "out", shares=MixShares(**shares), task=tmp_path / "absent.json"
    )
    with pytest.raises(UsageError, match=option):
        mix_from_request(request)
    assert not (tmp_path / "out").exists()
