"""Hostile input for `curate validate`.

Each case checks the documented promises: exit 1 for bad data (2 for usage), the
problem named with its fix, no traceback, and no input touched.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from _harness import expect, invoke, untouched
from PIL import Image

from curation.synthetic import QUESTION, render_scene


def rec(i: object, image: str = "ok.png", answer: object = ("yes",), **extra: object) -> dict:
    out = {"instance_id": i, "image": image, "text_input": QUESTION, "answer": list(answer)}
    out.update(extra)
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A data folder: two real images and nothing else."""
    data = tmp_path / "data"
    data.mkdir()
    render_scene(True, 1, 64).save(data / "ok.png")
    render_scene(False, 2, 64).save(data / "other.png")
    return data


def write(path: Path, records: object) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def validate(root: Path, *args: str | Path, allow: tuple[Path, ...] = ()) -> object:
    with untouched(root, allow=allow):
        return invoke(["validate", *args, "--max-shown", "50"])


# a record that is wrong in a way only the slow (pydantic) path reports: forces the fallback
SLOW = {"instance_id": 99, "image": "other.png", "text_input": QUESTION, "answer": "no"}


# ---------------------------------------------------------------- hostile image paths


@pytest.mark.parametrize("slow", [False, True], ids=["fast", "fallback"])
@pytest.mark.parametrize(
    ("image", "needle"),
    [
        ("ok\x00.png", "NUL"),
        ("a/" * 2500 + "x.png", "too long"),
        ("ok.png/", "ends with '/'"),
        ("ok\n.png", "control character"),
        ("ok\ud800.png", "lone surrogate"),
    ],
    ids=["nul", "5000-chars", "trailing-slash", "newline", "surrogate"],
)
def test_hostile_image_path_is_one_clear_error(
    root: Path, image: str, needle: str, slow: bool
) -> None:
    records = [rec(1, image), rec(2, "other.png", ["no"])] + ([SLOW] if slow else [])
    f = root / "t.json"
    # ensure_ascii keeps a lone surrogate as the JSON escape \ud800, as a hostile file has it
    f.write_text(json.dumps(records), encoding="utf-8")
    out = validate(root, f)
    expect(out, 1, "record #0 (instance_id=1)", "image", needle, "Fix:")
    assert out.output.count(needle) == 1, out.output


def test_path_through_a_file_is_an_error(root: Path) -> None:
    f = write(root / "t.json", [rec(1, "ok.png/b.png"), rec(2, "other.png", ["no"])])
    out = validate(root, f)
    expect(out, 1, "record #0 (instance_id=1)", "image", "ok.png", "not a folder", "Fix:")


def test_decompression_bomb_is_refused_without_decoding(root: Path) -> None:
    Image.new("1", (20000, 20000)).save(root / "bomb.png")
    f = write(root / "t.json", [rec(1, "bomb.png"), rec(2, "other.png", ["no"])])
    out = validate(root, f)
    expect(out, 1, "record #0 (instance_id=1)", "too large", "bomb.png", "pixels", "Fix:")


@pytest.mark.parametrize("slow", [False, True], ids=["fast", "fallback"])
@pytest.mark.parametrize("where", ["value", "extra_key"])
def test_deep_nesting_is_one_error(root: Path, where: str, slow: bool) -> None:
    deep = "[" * 5000 + "]" * 5000
    good = json.dumps(rec(1, "ok.png"))
    bad = (
        f'{{"instance_id": 2, "image": "other.png", "text_input": "q", "answer": {deep}}}'
        if where == "value"
        else f'{{"instance_id": 2, "image": "other.png", "text_input": "q", '
        f'"answer": ["no"], "meta": {deep}}}'
    )
    extra = "," + json.dumps(SLOW) if slow else ""
    f = root / "t.json"
    f.write_text(f"[{good},{bad}{extra}]")
    out = validate(root, f)
    expect(out, 1, "nested", "Fix:")
    assert "RecursionError" not in out.output


@pytest.mark.parametrize("slow", [False, True], ids=["fast", "fallback"])
@pytest.mark.parametrize("where", ["id", "key"])
def test_lone_surrogate_in_id_or_key(root: Path, where: str, slow: bool) -> None:
    bad = rec("x\ud800") if where == "id" else {**rec(1), "k\ud800": 1}
    records = [bad, rec(2, "other.png", ["no"])] + ([SLOW] if slow else [])
    f = root / "t.json"
    f.write_text(json.dumps(records), encoding="utf-8")
    out = validate(root, f, "--json", root.parent / "out" / "r.json", allow=(root.parent / "out",))
    expect(out, 1, "record #0", "lone surrogate", "Fix:")


# ---------------------------------------------------------------- symlinks


def test_symlink_escaping_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    render_scene(True, 5, 64).save(outside)
    (root / "leak.png").symlink_to(outside)
    (root / "passwd.png").symlink_to("/etc/passwd")
    f = write(
        root / "t.json",
        [rec(1, "leak.png"), rec(2, "passwd.png", ["no"]), rec(3, "other.png", ["no"])],
    )
    out = validate(root, f)
    expect(out, 1, "record #0 (instance_id=1)", "leak.png", str(outside), "outside the image root")
    expect(out, 1, "record #1 (instance_id=2)", "/etc/passwd", "Fix:")
    assert "not a readable image" not in out.output  # /etc/passwd was never opened


def test_symlink_inside_the_root_is_fine(root: Path) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "link.png").symlink_to("../ok.png")
    f = write(root / "t.json", [rec(1, "sub/link.png"), rec(2, "other.png", ["no"])])
    expect(validate(root, f), 0, "valid")


# ---------------------------------------------------------------- images other tools misread


def test_16_bit_and_exif_rotated_images_warn(root: Path) -> None:
    Image.new("I;16", (64, 64), 40000).save(root / "deep.png")
    rotated = render_scene(True, 3, 64)
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 on display
    rotated.save(root / "rot.jpg", exif=exif)
    f = write(
        root / "t.json",
        [rec(1, "deep.png"), rec(2, "rot.jpg", ["no"]), rec(3, "other.png", ["no"])],
    )
    out = validate(root, f)
    expect(out, 0, "16-bit", "EXIF orientation", "open_rgb", "LAVIS")


def test_scan_image_hashes_the_oriented_image(root: Path) -> None:
    from curation.images import scan_image

    im = render_scene(True, 3, 96).crop((0, 0, 96, 64))
    im.save(root / "plain.jpg", quality=95)
    turned = im.transpose(Image.Transpose.ROTATE_90)  # stored turned, EXIF turns it back
    exif = turned.getexif()
    exif[0x0112] = 6
    turned.save(root / "turned.jpg", exif=exif, quality=95)
    a, b = scan_image(root / "plain.jpg"), scan_image(root / "turned.jpg")
    import imagehash

    distance = imagehash.hex_to_hash(a.phash) - imagehash.hex_to_hash(b.phash)
    assert distance <= 8, distance


# ---------------------------------------------------------------- conflicts and duplicates


def test_conflict_through_a_dot_slash_path(root: Path) -> None:
    f = write(root / "t.json", [rec(1, "ok.png", ["yes"]), rec(2, "./ok.png", ["no"])])
    out = validate(root, f)
    expect(out, 1, "record #1 (instance_id=2)", "conflicting", "record #0")


def test_conflict_through_identical_files(root: Path) -> None:
    data = (root / "ok.png").read_bytes()
    records = []
    for i in range(10):
        (root / f"copy{i}.png").write_bytes(data)
        records.append(rec(i, f"copy{i}.png", ["yes" if i % 2 else "no"]))
    f = write(root / "t.json", records)
    out = validate(root, f)
    expect(out, 1, "conflicting", "same image content")


def test_conflict_through_a_paraphrase(root: Path) -> None:
    from curation.schemas.questions import load_questions

    paraphrase = next(q for q in load_questions().questions if q.casefold() != QUESTION.casefold())
    f = write(
        root / "t.json", [rec(1, "ok.png"), {**rec(2, "ok.png", ["no"]), "text_input": paraphrase}]
    )
    expect(validate(root, f), 1, "conflicting", "record #0")


def test_case_only_conflict_says_only_the_case_differs(root: Path) -> None:
    f = write(root / "t.json", [rec(1, "ok.png", ["yes"]), rec(2, "ok.png", ["Yes"])])
    out = validate(root, f)
    expect(out, 0, "only the case differs")
    assert "conflicting" not in out.output


def test_duplicate_with_other_id_is_dropped_by_fix(root: Path, tmp_path: Path) -> None:
    f = write(root / "t.json", [rec(1, "ok.png"), rec(2, "ok.png"), rec(3, "other.png", ["no"])])
    out = validate(root, f)
    expect(out, 0, "duplicate", "--fix drops")
    fixed = tmp_path / "out" / "fixed.json"
    fixed.parent.mkdir()
    out = validate(root, f, "--fix", fixed, "--image-root", root, allow=(fixed.parent,))
    expect(out, 0, "record #1: dropped", "the fixed copy is valid", "0 warning(s))")
    assert [r["instance_id"] for r in json.loads(fixed.read_text())] == [1, 3]


# ---------------------------------------------------------------- yes/no labels


def test_non_canonical_yes_counts_for_balance_and_is_fixed(root: Path, tmp_path: Path) -> None:
    records = [
        rec(i, "ok.png" if i % 2 else "other.png", ["Yeah" if i % 2 else "yes."]) for i in range(20)
    ]
    records = [dict(r, text_input=f"{QUESTION} {i}") for i, r in enumerate(records)]
    f = write(root / "t.json", records)
    out = validate(root, f)
    expect(out, 0, '"yes"', "100%", "not a canonical", "--fix")
    fixed = tmp_path / "out" / "fixed.json"
    fixed.parent.mkdir()
    out = validate(root, f, "--fix", fixed, "--image-root", root, allow=(fixed.parent,))
    expect(out, 0)
    assert {a for r in json.loads(fixed.read_text()) for a in r["answer"]} == {"yes"}


# ---------------------------------------------------------------- messages


def test_json_lines_is_named_with_the_conversion(root: Path) -> None:
    f = root / "t.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [rec(1), rec(2, "other.png", ["no"])]) + "\n")
    expect(validate(root, f), 1, "JSON Lines", "jq -s")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_utf16_is_named_with_the_conversion(root: Path, encoding: str) -> None:
    f = root / "t.json"
    f.write_bytes(json.dumps([rec(1)]).encode(encoding))
    expect(validate(root, f), 1, "UTF-16", "iconv -f UTF-16")


def test_nfc_name_against_nfd_file(root: Path) -> None:
    nfd = unicodedata.normalize("NFD", "café.png")
    (root / "ok.png").rename(root / nfd)
    nfc = unicodedata.normalize("NFC", "café.png")
    if (root / nfc).exists():  # a file system that normalises names (macOS): nothing to see
        pytest.skip("the file system normalises names")
    f = write(root / "t.json", [rec(1, nfc), rec(2, "other.png", ["no"])])
    expect(validate(root, f), 1, "NFD", "NFC", "Fix:")


@pytest.mark.parametrize("bad_id", [True, 1.5])
def test_bool_or_float_id_is_one_error(root: Path, bad_id: object) -> None:
    f = write(root / "t.json", [rec(bad_id), rec(2, "other.png", ["no"])])
    out = validate(root, f)
    expect(out, 1, "instance_id", "Fix:")
    assert "1 error(s)" in out.output, out.output


def test_multi_file_report_names_the_paths(root: Path) -> None:
    (root / "a").mkdir()
    (root / "b").mkdir()
    bare = {**rec(1), "answer": "yes"}  # an error in each file
    fa = write(root / "a" / "train.json", [bare])
    fb = write(root / "b" / "train.json", [bare])
    out = validate(root, fa, fb, "--no-images")
    expect(out, 1, f"{fa} record #0", f"{fb} record #0")


# ---------------------------------------------------------------- image root default


def test_export_layout_needs_no_image_root(root: Path) -> None:
    """validate OUT/train.json works like eval: images/ beside the file."""
    out_dir = root / "export"
    (out_dir / "images").mkdir(parents=True)
    render_scene(True, 1, 64).save(out_dir / "images" / "a.png")
    render_scene(False, 2, 64).save(out_dir / "images" / "b.png")
    f = write(out_dir / "train.json", [rec(1, "a.png"), rec(2, "b.png", ["no"])])
    expect(validate(root, f), 0, "valid", "2 image(s) checked")


def test_flat_layout_with_an_images_folder_still_uses_the_file_folder(root: Path) -> None:
    (root / "images").mkdir()  # unrelated folder: the paths resolve beside the file
    f = write(root / "t.json", [rec(1, "ok.png"), rec(2, "other.png", ["no"])])
    expect(validate(root, f), 0, "valid", "2 image(s) checked")


def test_one_default_image_root_rule(root: Path) -> None:
    from curation.evaluate.run import default_image_root as eval_default
    from curation.images import default_image_root

    (root / "images").mkdir()
    render_scene(True, 1, 64).save(root / "images" / "a.png")
    f = write(root / "t.json", [rec(1, "a.png")])
    assert default_image_root(f) == eval_default(f) == root / "images"
    g = write(root / "u.json", [rec(1, "ok.png")])
    assert default_image_root(g) == eval_default(g) == root


def test_export_uses_the_same_image_root_default(root: Path) -> None:
    data = root / "export"
    (data / "images").mkdir(parents=True)
    records = []
    for i in range(6):
        render_scene(i % 2 == 0, i, 64).save(data / "images" / f"{i}.png")
        records.append(rec(i, f"{i}.png", ["yes" if i % 2 == 0 else "no"]))
    f = write(data / "train.json", records)
    out_dir = root.parent / "out"
    with untouched(root, allow=[out_dir]):
        out = invoke(
            [
                "export",
                "--task",
                f,
                "--out",
                out_dir / "exp",
                "--val-share",
                "0.34",
                "--test-share",
                "0.33",
            ]
        )
    expect(out, 0)
    assert (out_dir / "exp" / "manifest.json").is_file()
