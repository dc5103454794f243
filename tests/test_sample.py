"""The bundled sample is valid, honest about being synthetic, and reproducible."""

from __future__ import annotations

import hashlib
import json

from conftest import SAMPLE

from curation.synthetic import render_scene
from curation.validate import validate_files


def test_bundled_annotations_are_valid() -> None:
    report = validate_files([SAMPLE / "annotations.json"])
    assert report.ok, [p.render() for p in report.problems]
    assert report.records == report.images_checked == 49


def test_seed_style_file_shows_the_seed_mistakes() -> None:
    codes = {p.code for p in validate_files([SAMPLE / "seed_train.json"]).problems}
    assert {"answer_is_string", "bad_image_path", "wrong_key", "unbalanced_answers"} <= codes


def test_manifest_marks_synthetic_and_real_images() -> None:
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    images = manifest["images"]
    assert sum(not e["synthetic"] for e in images) == 1
    real = next(e for e in images if not e["synthetic"])
    assert real["license"] == "CC0" and real["answer"] == "no"
    for entry in images:
        digest = hashlib.sha256((SAMPLE / entry["image"]).read_bytes()).hexdigest()
        assert digest == entry["sha256"], entry["image"]


def test_scene_rendering_is_deterministic() -> None:
    a, b = render_scene(True, 7, 64).tobytes(), render_scene(True, 7, 64).tobytes()
    assert a == b
    assert render_scene(False, 7, 64).tobytes() != a


def test_bundled_clips_match_their_manifest_and_stay_small() -> None:
    videos = SAMPLE / "videos"
    manifest = json.loads((videos / "manifest.json").read_text())
    assert manifest["videos"] and all(e["synthetic"] for e in manifest["videos"])
    total = 0
    for entry in manifest["videos"]:
        data = (videos / entry["video"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["video"]
        total += len(data)
    assert total < 300_000  # the sample stays small
    header = (videos / "labels.csv").read_text().splitlines()[0]
    assert header == "path,label,start,end,subject,cam,dataset"
    assert len({e["subject"] for e in manifest["videos"]}) >= 3  # enough for a split by subject
