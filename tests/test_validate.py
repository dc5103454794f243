"""`curate validate`: every rule of the contract, through the CLI, on tiny real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, record, write_json
from typer.testing import CliRunner

from curation.cli import app
from curation.validate import validate_files

runner = CliRunner()


def run(*args: str | Path):
    return runner.invoke(
        app, ["validate", *map(str, args), "--max-shown", "50"], terminal_width=200
    )


def codes(path: Path, **kw) -> list[str]:
    return [p.code for p in validate_files([path], **kw).problems]


def test_valid_file_exits_0(good_file: Path) -> None:
    result = run(good_file)
    assert result.exit_code == 0, result.output
    assert "valid: 1 file(s), 2 record(s), 2 image(s) checked, 0 error(s)" in result.output


def test_string_answer_explains_the_yes_crash(image_dir: Path) -> None:
    f = write_json(image_dir / "a.json", [record(1, answer="yes"), record(2, "stand.png", ["no"])])
    result = run(f)
    assert result.exit_code == 1
    assert "a.json record #0 (instance_id=1)" in result.output
    assert 'got the string "yes"; LAVIS iterates it as "y","e","s"' in result.output
    assert '"answer": ["yes"] (or run with --fix)' in result.output


def test_wrong_key_gets_did_you_mean(image_dir: Path) -> None:
    rec = record(1)
    rec["prompt"] = rec.pop("text_input")
    f = write_json(image_dir / "a.json", [rec])
    result = run(f)
    assert result.exit_code == 1
    assert (
        "the record has 'prompt', which no builder reads: curate train's builder "
        "(falldown_vqa) reads 'text_input', LAVIS's coco-vqa builder reads 'question'"
    ) in result.output
    assert "rename 'prompt' to 'text_input'" in result.output


def lavis_coco_record(question_id: int, image: str, answer: list[str]) -> dict:
    """A record as LAVIS's own coco-vqa files hold it (coco/annotations/vqa_train.json)."""
    return {
        "question_id": question_id,
        "question": "Is anyone falling in this image?",
        "answer": answer,
        "image": image,
    }


def test_lavis_s_own_coco_vqa_format_is_accepted(image_dir: Path) -> None:
    f = write_json(
        image_dir / "a.json",
        [lavis_coco_record(1, "fall.png", ["yes"]), lavis_coco_record(2, "stand.png", ["no"])],
    )
    result = run(f)
    assert result.exit_code == 0, result.output
    assert "wrong_key" not in result.output and "unknown key" not in result.output
    from curation.validate import load_records

    loaded = load_records(f)
    assert [(r["instance_id"], r["text_input"]) for r in loaded] == [
        (1, "Is anyone falling in this image?"),
        (2, "Is anyone falling in this image?"),
    ]


def test_lavis_s_coco_vqa_format_is_checked_like_ours(image_dir: Path) -> None:
    first = lavis_coco_record(1, "fall.png", ["yes"])
    second = {**lavis_coco_record(1, "stand.png", ["no"]), "question": "  "}
    result = run(write_json(image_dir / "a.json", [first, second]))
    assert result.exit_code == 1
    assert "record #1 (instance_id=1): question: is empty or blank" in result.output
    # a duplicate question_id is a duplicate id
    second["question"] = "Is anyone falling in this image?"
    result = run(write_json(image_dir / "a.json", [first, second]))
    assert result.exit_code == 1 and "instance_id 1 is also record #0" in result.output


def test_a_question_that_differs_from_text_input_is_named(image_dir: Path) -> None:
    rec = {**record(1), "question": "What colour is the floor?", "question_id": 0}
    result = run(write_json(image_dir / "a.json", [rec, record(2, "stand.png", ["no"])]))
    assert result.exit_code == 0, result.output
    assert "'question' and 'text_input' differ" in result.output
    assert "LAVIS's coco-vqa builder reads 'question'" in result.output
    same = {**record(1), "question": record(1)["text_input"], "question_id": 0}
    result = run(write_json(image_dir / "a.json", [same, record(2, "stand.png", ["no"])]))
    assert result.exit_code == 0 and "0 warning(s)" in result.output, result.output


def test_unknown_key_is_a_warning(image_dir: Path) -> None:
    f = write_json(
        image_dir / "a.json",
        [record(1, source="x"), record(2, "stand.png", ["no"], answers=["no"])],
    )
    result = run(f)
    assert result.exit_code == 0, result.output
    assert "unknown key 'source' (LAVIS ignores it)" in result.output
    assert "unknown key 'answers' (LAVIS ignores it); did you mean 'answer'?" in result.output
    assert "2 warning(s)" in result.output


def test_trailing_comma_names_line_and_column(image_dir: Path) -> None:
    f = image_dir / "a.json"
    f.write_text(
        '[\n  {"instance_id": 1, "image": "fall.png", "text_input": "Q?", "answer": ["yes"]},\n]\n'
    )
    result = run(f)
    assert result.exit_code == 1
    assert "invalid JSON at line 3 column 1" in result.output
    assert "trailing comma on line 2" in result.output


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        (b'{"instance_id": 1}', "not_a_list", "LAVIS expects an array of records"),
        (b"[]", "empty_file", "empty list"),
        (
            b'[{"instance_id": 1, "image": "caf\xe9.png", "text_input": "Q", "answer": ["no"]}]',
            "not_utf8",
            "not UTF-8: byte 0xe9",
        ),
        (
            b'[{"instance_id": NaN, "image": "fall.png", "text_input": "Q", "answer": ["no"]}]',
            "nonfinite_number",
            "NaN is not valid JSON",
        ),
        (
            b'\xef\xbb\xbf[{"instance_id": 1, "image": "fall.png", "text_input": "Q", "answer": ["no"]}]',
            "utf8_bom",
            "byte-order mark",
        ),
        (b'["just a string"]', "record_not_object", "not an object"),
    ],
)
def test_file_level_problems(image_dir: Path, content: bytes, code: str, words: str) -> None:
    f = image_dir / "a.json"
    f.write_bytes(content)
    assert code in codes(f)
    result = run(f)
    assert result.exit_code == 1
    assert words in result.output


@pytest.mark.parametrize(
    ("rec", "code", "words"),
    [
        (record(True), "bad_instance_id", "instance_id"),
        (record(1, text_input="   "), "empty_value", "is empty or blank"),
        (record(1, answer=[]), "empty_value", "at least one answer"),
        (record(1, answer=["yes", ""]), "empty_value", "answer.1"),
        (record(1, answer=[1]), "bad_string_type", "answer.0"),
        (record(1, image="/abs/fall.png"), "bad_image_path", "is an absolute path"),
        (record(1, image="C:\\data\\fall.png"), "bad_image_path", "backslash"),
        (record(1, image="../fall.png"), "bad_image_path", "could escape the image root"),
        (
            {"instance_id": 1, "image": "fall.png", "answer": ["yes"]},
            "missing_key",
            "add 'text_input'",
        ),
    ],
)
def test_record_level_problems(image_dir: Path, rec: dict, code: str, words: str) -> None:
    f = write_json(image_dir / "a.json", [rec])
    assert code in codes(f)
    result = run(f)
    assert result.exit_code == 1
    assert words in result.output


def test_duplicate_ids_and_conflicts_and_duplicates(image_dir: Path) -> None:
    f = write_json(
        image_dir / "a.json",
        [
            record(1, "fall.png", ["yes"]),
            record(1, "stand.png", ["no"]),  # duplicate id
            record(3, "fall.png", ["no"]),  # conflicts with #0
            record(4, "fall.png", ["yes"]),  # exact copy of #0 under another id
            record("1", "stand2.jpg", ["no"]),  # "1" collides with 1
        ],
    )
    found = codes(f)
    assert found.count("duplicate_id") == 2
    assert "conflicting_answers" in found
    assert "duplicate_record" in found
    result = run(f)
    assert "instance_id 1 is also record #0" in result.output
    assert "same image and question as record #0 but answer ['no'] vs ['yes']" in result.output


def test_balance_warning_points_to_mix(image_dir: Path) -> None:
    recs = [
        record(i, "fall.png" if i % 2 else "dup.png", ["yes"], text_input=f"Q{i}")
        for i in range(19)
    ]
    recs.append(record(99, "stand.png", ["no"]))
    f = write_json(image_dir / "a.json", recs)
    result = run(f)
    assert result.exit_code == 0
    assert '95% of the 20 yes/no records answer "yes"' in result.output
    assert "curate mix --vqav2-ratio 0.7" in result.output


@pytest.mark.parametrize(
    ("image", "code", "words"),
    [
        ("missing.png", "image_missing", "file not found"),
        ("empty.png", "image_empty", "empty file"),
        ("notes.png", "image_undecodable", "not a readable image"),
        ("truncated.jpg", "image_corrupt", "corrupt or truncated"),
        ("tiny.png", "image_tiny", "only 8x8 px"),
    ],
)
def test_image_problems(image_dir: Path, image: str, code: str, words: str) -> None:
    f = write_json(image_dir / "a.json", [record(1, image, ["no"])])
    assert codes(f) == [code]
    result = run(f)
    assert result.exit_code == (0 if code == "image_tiny" else 1)
    assert words in result.output
    assert codes(f, check_image_files=False) == []
    assert run(f, "--no-images").exit_code == 0


def test_image_root_option(image_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    f = write_json(other / "elsewhere.json", [record(1, "fall.png", ["yes"])])
    assert run(f).exit_code == 1
    assert run(f, "--image-root", image_dir).exit_code == 0
    # the export layout: images/ beside the file is the default when the paths are there
    g = write_json(tmp_path / "beside.json", [record(1, "fall.png", ["yes"])])
    assert run(g).exit_code == 0


def test_all_problems_collected_in_one_pass(image_dir: Path) -> None:
    recs = [record(i, answer="no") for i in range(30)]
    f = write_json(image_dir / "a.json", recs)
    report = validate_files([f])
    assert [p.code for p in report.errors].count("answer_is_string") == 30
    result = runner.invoke(app, ["validate", str(f), "--max-shown", "5"])
    assert "26 more not shown" in result.output


def test_json_report_lists_every_problem(image_dir: Path, tmp_path: Path) -> None:
    f = write_json(
        image_dir / "a.json", [record(1, answer="yes"), record(2, "missing.png", ["no"])]
    )
    out = tmp_path / "report.json"
    result = run(f, "--json", out)
    assert result.exit_code == 1
    data = json.loads(out.read_text())
    assert data["ok"] is False and data["errors"] == 2
    problem = data["problems"][0]
    assert set(problem) == {
        "file",
        "index",
        "instance_id",
        "field",
        "code",
        "message",
        "fix",
        "severity",
    }
    assert (problem["index"], problem["instance_id"], problem["field"], problem["code"]) == (
        0,
        1,
        "answer",
        "answer_is_string",
    )


def test_fix_round_trip(image_dir: Path, tmp_path: Path) -> None:
    bad = [
        record(1, answer=" yes "),
        {
            "instance_id": 2,
            "image": "sub\\stand.png",
            "prompt": " Is anyone falling? ",
            "answer": "no",
        },
        record(1, answer="yes"),  # exact duplicate of #0 once fixed
        record(4, "missing.png", ["no"]),  # cannot be fixed
    ]
    (image_dir / "sub").mkdir()
    (image_dir / "sub" / "stand.png").write_bytes((image_dir / "stand.png").read_bytes())
    src = write_json(image_dir / "a.json", bad)
    before = src.read_bytes()
    out = tmp_path / "fixed.json"
    result = run(src, "--fix", out)
    assert src.read_bytes() == before  # input never changed
    assert result.exit_code == 1  # the missing image remains
    assert "renamed 'prompt' to 'text_input'" in result.output
    assert "dropped, the same image, question and answer as record #0" in result.output
    assert "could not fix" in result.output and "missing.png" in result.output
    fixed = json.loads(out.read_text())
    assert [r["instance_id"] for r in fixed] == [1, 2, 4]
    assert fixed[1] == {
        "instance_id": 2,
        "image": "sub/stand.png",
        "text_input": "Is anyone falling?",
        "answer": ["no"],
    }
    # drop the unfixable record by hand: the fixed copy is then clean
    write_json(out, fixed[:2])
    assert run(out, "--image-root", image_dir).exit_code == 0


def test_fix_refuses_to_overwrite_input(good_file: Path) -> None:
    result = run(good_file, "--fix", good_file)
    assert result.exit_code == 2  # a usage error: nothing is wrong with the data
    assert "would overwrite the input" in result.output


def test_usage_errors_exit_2(tmp_path: Path, good_file: Path) -> None:
    result = run(tmp_path / "nope.json")
    assert result.exit_code == 2
    assert "file not found" in result.output
    assert runner.invoke(app, ["validate", str(good_file), "--max-shown", "-1"]).exit_code == 2
    assert runner.invoke(app, ["validate", str(good_file), "--bogus"]).exit_code == 2


def test_several_files(good_file: Path, image_dir: Path) -> None:
    bad = write_json(image_dir / "b.json", [record(1, answer="yes")])
    result = run(good_file, bad)
    assert result.exit_code == 1
    assert "2 file(s), 3 record(s)" in result.output


def test_fix_drops_a_copy_in_lavis_s_coco_vqa_format(image_dir: Path, tmp_path: Path) -> None:
    first, copy = (
        lavis_coco_record(1, "fall.png", ["yes"]),
        lavis_coco_record(2, "fall.png", ["yes"]),
    )
    src = write_json(image_dir / "a.json", [first, copy, lavis_coco_record(3, "stand.png", ["no"])])
    result = run(src, "--fix", tmp_path / "fixed.json")
    assert "dropped, the same image, question and answer as record #0" in result.output
    fixed = json.loads((tmp_path / "fixed.json").read_text())
    assert [r["question_id"] for r in fixed] == [1, 3]
    assert "question" in fixed[0] and "text_input" not in fixed[0]  # left in LAVIS's format


@pytest.mark.parametrize(
    ("rec", "valid"),
    [
        (record(1), True),
        (lavis_coco_record(1, "fall.png", ["yes"]), True),
        ({**record(1), "question": "Is anyone falling in this image?", "question_id": 0}, True),
        ({"question_id": 1, "image": "fall.png", "answer": ["yes"]}, False),
        ({"question": "Is it?", "image": "fall.png", "answer": ["yes"]}, False),
        ({**lavis_coco_record(1, "fall.png", ["yes"]), "question": ""}, False),
    ],
)
def test_the_published_json_schema_accepts_what_validate_accepts(
    image_dir: Path, rec: dict, valid: bool
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "schemas" / "vqa_annotation_file.schema.json").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors([rec]))
    assert (not errors) == valid, errors
    assert validate_files([write_json(image_dir / "a.json", [rec])], image_dir).ok == valid
