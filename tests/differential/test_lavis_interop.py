"""An export read by LAVIS's own code: its stock coco-vqa builder and its VQA scorer.

Each test reads the export a second way, with code this project did not write:
LAVIS's ``COCOVQABuilder`` (``COCOVQADataset`` for train, ``COCOVQAEvalDataset``
for val and test) must load every record with the question and answers of our
files, and LAVIS's ``VQA``/``VQAEval`` (the official VQAv2 scorer, as
``VQATask`` runs it) on the export's ``vqa_eval`` files must give the VQA
accuracy ``curate eval`` gives on the same predictions.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from curation.synthetic import QUESTION, render_scene

pytest.importorskip("lavis")

from curation.evaluate.run import load_provenance, score  # noqa: E402
from curation.export import write_export  # noqa: E402
from curation.record_types import ExportRecord  # noqa: E402
from curation.validate import load_records  # noqa: E402

#: General questions whose answers are not in normalised form (a LAVIS coco-vqa source
#: keeps them as people wrote them), each with predictions a model could make.
GENERAL = [
    ("How many dogs are there?", ["two"], ["2", "two", "Two.", "3"]),
    ("What animal is this?", ["a dog"], ["dog", "a dog", "the dog", "cat"]),
    ("Is it sunny?", ["Yes"], ["yes", "Yes", "no"]),
    ("What is on the table?", ["the red cup"], ["red cup", "a red cup", "cup"]),
    ("What time is it?", ["oclock"], ["o'clock", "oclock", "noon"]),
    (
        "How many people?",
        ["two", "2", "two", "Two", "3", "three", "2", "two", "2", "a pair"],
        ["2", "two", "3", "pair"],
    ),
    (
        "What colour is the bus?",
        ["Red", "red", "red.", "dark red", "red", "Red", "maroon", "red", "red", "red!"],
        ["red", "Red.", "maroon", "dark-red"],
    ),
    ("Where is the cat?", ["on the couch", "couch"], ["couch", "on couch", "the couch"]),
]


def _records(root: Path, split: str, rng: random.Random) -> list[ExportRecord]:
    """Task records (yes/no) and general ones about distinct images of one split."""
    out = []
    for i in range(6):
        image = root / f"{split}-task-{i}.png"
        render_scene(i % 2 == 0, rng.randrange(10**6), 32).save(image)
        out.append(ExportRecord(image, QUESTION, ("yes" if i % 2 == 0 else "no",)))
    for i, (question, answers, _) in enumerate(GENERAL):
        image = root / f"{split}-general-{i}.png"
        render_scene(False, rng.randrange(10**6), 32).save(image)
        out.append(
            ExportRecord(image, question, tuple(answers), source="lavis_vqa", part="general")
        )
    return out


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lavis-interop")
    (root / "raw").mkdir()
    rng = random.Random(0)
    splits = {s: _records(root / "raw", s, rng) for s in ("train", "val", "test")}
    out = root / "export"
    write_export(out, splits, seed=0, model="blip2_t5")
    return out


def _stock_builder_config(export: Path):  # noqa: ANN202 - an OmegaConf node
    """LAVIS's own coco_vqa config, its storage pointed at the export's files."""
    from omegaconf import OmegaConf

    def eval_files(split: str) -> list[str]:
        return [
            str(export / f"{split}.json"),
            str(export / "vqa_eval" / "answer_list.json"),
            str(export / "vqa_eval" / f"{split}_questions.json"),
            str(export / "vqa_eval" / f"{split}_annotations.json"),
        ]

    return OmegaConf.create(
        {
            "data_type": "images",
            "vis_processor": {
                "train": {"name": "blip_image_eval", "image_size": 32},
                "eval": {"name": "blip_image_eval", "image_size": 32},
            },
            "text_processor": {
                "train": {"name": "blip_question"},
                "eval": {"name": "blip_question"},
            },
            "build_info": {
                "annotations": {
                    "train": {"storage": [str(export / "train.json")]},
                    "val": {"storage": eval_files("val")},
                    "test": {"storage": eval_files("test")},
                },
                "images": {"storage": str(export / "images")},
            },
        }
    )


def test_lavis_s_stock_coco_vqa_builder_loads_every_record_of_an_export(export: Path) -> None:
    import lavis.processors  # noqa: F401 - registers blip_image_eval, blip_question
    from lavis.datasets.builders.vqa_builder import COCOVQABuilder
    from lavis.datasets.datasets.coco_vqa_datasets import COCOVQADataset, COCOVQAEvalDataset

    datasets = COCOVQABuilder(_stock_builder_config(export)).build()
    assert isinstance(datasets["train"], COCOVQADataset)
    assert isinstance(datasets["val"], COCOVQAEvalDataset)
    question_processor = datasets["train"].text_processor
    for split, dataset in datasets.items():
        ours = json.loads((export / f"{split}.json").read_text())
        assert len(dataset) == len(ours) > 0, split
        vqa_eval = export / "vqa_eval" / f"{split}_questions.json"
        questions = json.loads(vqa_eval.read_text())["questions"] if split != "train" else []
        by_id = {q["question_id"]: q["question"] for q in questions}
        for i, record in enumerate(ours):
            item = dataset[i]
            assert item["image"].shape[-2:] == (32, 32)
            assert item["text_input"] == question_processor(record["text_input"])
            if split == "train":
                # LAVIS weighs each distinct answer by its share of the list
                assert item["answers"] == list(dict.fromkeys(record["answer"]))
                assert sum(item["weights"]) == pytest.approx(1.0)
            else:
                # the id VQATask's scorer looks up in vqa_eval/{split}_questions.json
                assert by_id[item["question_id"]] == record["text_input"]


def _lavis_vqa_accuracy(export: Path, split: str, predictions: list[str], tmp: Path) -> dict:
    """LAVIS's VQATask scoring: VQA + loadRes + VQAEval on the export's vqa_eval files."""
    from lavis.common.vqa_tools.vqa import VQA
    from lavis.common.vqa_tools.vqa_eval import VQAEval

    records = json.loads((export / f"{split}.json").read_text())
    result = tmp / f"{split}_result.json"
    result.write_text(
        json.dumps(
            [
                {"question_id": r["question_id"], "answer": p}
                for r, p in zip(records, predictions, strict=True)
            ]
        )
    )
    questions = str(export / "vqa_eval" / f"{split}_questions.json")
    vqa = VQA(str(export / "vqa_eval" / f"{split}_annotations.json"), questions)
    scorer = VQAEval(vqa, vqa.loadRes(resFile=str(result), quesFile=questions), n=2)
    scorer.evaluate()
    return {"overall": scorer.accuracy["overall"], "per_question": scorer.evalQA}


@pytest.mark.parametrize("seed", range(4))
def test_eval_s_vqa_accuracy_equals_lavis_s_vqaeval_on_the_export(
    export: Path, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    for split in ("val", "test"):
        data = export / f"{split}.json"
        records = load_records(data)
        provenance = load_provenance(data, records)
        choices = {question: preds for question, _, preds in GENERAL}
        predictions = [
            rng.choice(choices.get(r["text_input"], ["yes", "no", "Yes.", "maybe"]))
            for r in records
        ]
        ours = score(records, provenance, predictions)
        lavis = _lavis_vqa_accuracy(export, split, predictions, tmp_path)
        raw = json.loads(data.read_text())
        for row, record in zip(ours["predictions"], raw, strict=True):
            assert round(100 * row["score"], 2) == lavis["per_question"][record["question_id"]], (
                row["question"],
                row["answers"],
                row["prediction"],
            )
        mean = sum(r["score"] for r in ours["predictions"]) / len(records)
        assert round(100 * mean, 2) == lavis["overall"]
        general = [r["score"] for r in ours["predictions"] if r["part"] == "general"]
        assert ours["general"]["vqa_accuracy"] == pytest.approx(sum(general) / len(general))


def test_answers_not_in_normal_form_score_as_lavis_scores_them(
    export: Path, tmp_path: Path
) -> None:
    """The case that disagreed: ground truth "two", "a dog", "Yes"; prediction "2", "dog",
    "yes". LAVIS's scorer normalises only the prediction, so the export writes the truth
    normalised; both say 100."""
    data = export / "test.json"
    records = load_records(data)
    wanted = {"How many dogs are there?": "2", "What animal is this?": "dog", "Is it sunny?": "yes"}
    keep = [i for i, r in enumerate(records) if r["text_input"] in wanted]
    predictions = [wanted.get(r["text_input"], r["answer"][0]) for r in records]
    ours = score(records, load_provenance(data, records), predictions)
    lavis = _lavis_vqa_accuracy(export, "test", predictions, tmp_path)
    raw = json.loads(data.read_text())
    for i in keep:
        assert ours["predictions"][i]["score"] == 1.0
        assert lavis["per_question"][raw[i]["question_id"]] == 100.0


def test_vqa_accuracy_equals_lavis_s_vqaeval_on_random_answers(tmp_path: Path) -> None:
    """Many hand-written answer forms (case, punctuation, digits in words, articles,
    contractions, commas in numbers) through the export's vqa_eval writer and LAVIS's
    scorer, against curate eval's function on the raw answers."""
    from curation.evaluate.metrics import vqa_accuracy
    from curation.export import _write_vqa_eval

    words = ["two", "2", "Two", "a dog", "dog", "the Dog.", "Yes", "yes", "no!", "dont",
             "don't", "1,000", "1000", "3.5", "left-hand", "left hand", "none", "0",
             "it's", "a", "the red, cup", "red cup", "x/y", "x y", "(cat)", "cat"]  # fmt: skip
    rng = random.Random(7)
    annotations, provenance, predictions = [], [], []
    for i in range(400):
        answers = [rng.choice(words) for _ in range(rng.choice([1, 1, 2, 3, 10]))]
        annotations.append({"text_input": f"q{i}?", "answer": answers})
        provenance.append({"source": "s", "answer_type": "other"})
        predictions.append(rng.choice(words))
    _write_vqa_eval(tmp_path / "vqa_eval", "test", annotations, provenance)
    records = [{"question_id": i} for i in range(len(annotations))]
    (tmp_path / "test.json").write_text(json.dumps(records))
    lavis = _lavis_vqa_accuracy(tmp_path, "test", predictions, tmp_path)
    for i, (a, p) in enumerate(zip(annotations, predictions, strict=True)):
        assert round(100 * vqa_accuracy(p, a["answer"]), 2) == lavis["per_question"][i], (
            a["answer"],
            p,
        )


def test_our_builder_reads_a_file_in_lavis_s_own_format_as_the_export(
    export: Path, tmp_path: Path
) -> None:
    """validate accepts LAVIS's coco-vqa format; curate train's builder must read it too:
    the export's train.json without text_input/instance_id gives the same items."""
    from curation.training import import_plugin

    plugin = import_plugin()
    import lavis.processors  # noqa: F401 - registers blip_image_eval, blip_question
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    vis = registry.get_processor_class("blip_image_eval").from_config(
        OmegaConf.create({"image_size": 32})
    )
    txt = registry.get_processor_class("blip_question").from_config(OmegaConf.create({}))
    ours = json.loads((export / "train.json").read_text())
    theirs = [
        {"question_id": r["instance_id"], "question": r["question"], "answer": r["answer"],
         "image": r["image"], "dataset": "vqa"}
        for r in ours
    ]  # fmt: skip
    (tmp_path / "lavis.json").write_text(json.dumps(theirs))
    from curation.validate import validate_files

    assert validate_files([tmp_path / "lavis.json"], export / "images").ok
    prompt = "Question: {} Short answer:"
    a = plugin.FalldownVQADataset(
        vis, txt, str(export / "images"), [str(export / "train.json")], prompt
    )
    b = plugin.FalldownVQADataset(
        vis, txt, str(export / "images"), [str(tmp_path / "lavis.json")], prompt
    )
    assert len(a) == len(b) == len(ours)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert (x["text_input"], x["answers"], x["instance_id"]) == (
            y["text_input"],
            y["answers"],
            y["instance_id"],
        )
        assert (x["image"] == y["image"]).all()
