"""The class map: OmniFall's 16 classes to yes / no / unsure, one file, loaded the same anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from curation.class_map import DEFAULT_CLASS_MAP_FILE, load_class_map
from curation.errors import ConfigError, UsageError

REPO = Path(__file__).resolve().parent.parent

# OmniFall's label ids, from the `omnifall` package's ACTIVITY_LABELS (0.2.0)
OMNIFALL = [
    "walk", "fall", "fallen", "sit_down", "sitting", "lie_down", "lying", "stand_up",
    "standing", "other", "kneel_down", "kneeling", "squat_down", "squatting", "crawl", "jump",
]  # fmt: skip


def test_the_shipped_config_is_the_package_default() -> None:
    shipped = (REPO / "configs" / "class_map.yaml").read_text()
    assert shipped == DEFAULT_CLASS_MAP_FILE.read_text()


def test_default_map_has_omnifall_ids_and_answers() -> None:
    cmap = load_class_map()
    assert [cmap.rule(i)[0] for i in range(16)] == OMNIFALL
    assert cmap.rule("1")[1].answer == "yes" and cmap.rule("fallen")[1].answer == "yes"
    assert cmap.negative_kind_of("lie_down") == "lie_down"
    assert cmap.negative_kind_of("fall") is None
    assert cmap.is_lookalike("sitting") and not cmap.is_lookalike("walk")
    with pytest.raises(KeyError):
        cmap.rule(16)
    with pytest.raises(KeyError):
        cmap.rule("cartwheel")


def test_bad_maps_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "map.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"classes": {"a": {"id": 0, "answer": "yes"}, "b": {"id": 0, "answer": "no"}}}
        )
    )
    with pytest.raises(ConfigError, match="share id 0"):
        load_class_map(bad)
    bad.write_text(
        yaml.safe_dump({"classes": {"a": {"id": 0, "answer": "yes", "negative_kind": "x"}}})
    )
    with pytest.raises(ConfigError, match='only for answer "no"'):
        load_class_map(bad)
    bad.write_text(
        yaml.safe_dump({"classes": {"a": {"id": 0, "answer": "no"}}, "lookalike_kinds": ["b"]})
    )
    with pytest.raises(ConfigError, match="lookalike_kinds"):
        load_class_map(bad)
    bad.write_text("classes: [unclosed")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 1, column 19\)"):
        load_class_map(bad)
    with pytest.raises(UsageError, match="not found"):
        load_class_map(tmp_path / "missing.yaml")


@pytest.mark.parametrize("label", ["²", "¹", "1²", "٣", "３", "①"])
def test_a_label_in_other_digits_is_no_class_id(label: str) -> None:
    # "²".isdigit() is true and int("²") fails; "٣" (Arabic-Indic three) was class 3
    cmap = load_class_map()
    with pytest.raises(KeyError):
        cmap.rule(label)
    assert cmap.rule(" 3 ")[0] == OMNIFALL[3]
