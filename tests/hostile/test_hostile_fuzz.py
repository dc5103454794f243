"""Fuzz the CLI: arbitrary file contents, file names and option values.

Whatever the input, `curate validate` (with --json and --fix) and `curate
export --task` exit 0, 1 or 2, never show a traceback or let an exception
escape, and never touch a file outside their output folder.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from _harness import expect, invoke, untouched
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.synthetic import QUESTION, render_scene

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

strings = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "ok.png",
            "./ok.png",
            "ok.png/",
            "../ok.png",
            "/etc/passwd",
            "link.png",
            "a\x00.png",
            "a\nb.png",
            "\ud800",
            "yes",
            "Yes.",
            "no",
            " ",
            "",
            QUESTION,
            "[red]x[/red]",
        ]
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | strings,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=5),
    max_leaves=25,
)
record = st.fixed_dictionaries(
    {},
    optional={
        "instance_id": st.integers() | strings | st.booleans() | st.floats(),
        "image": strings,
        "text_input": strings,
        "answer": st.lists(strings, max_size=3) | strings,
        "extra": json_values,
    },
)


def _dump(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


contents = st.one_of(
    st.binary(max_size=300),
    json_values.map(_dump),
    st.lists(record, max_size=6).map(_dump),
    st.lists(record, min_size=1, max_size=4).map(
        lambda recs: "\n".join(json.dumps(r) for r in recs).encode("utf-8", "surrogatepass")
    ),
)
names = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200)
option_values = st.one_of(st.text(max_size=20), st.sampled_from(["-1", "0", "5", "--json", "."]))


def _inputs(tmp: Path, name: str, content: bytes) -> tuple[Path, Path, Path]:
    data = tmp / "in"
    data.mkdir()
    render_scene(True, 1, 64).save(data / "ok.png")
    (data / "link.png").symlink_to("/etc/passwd")
    f = data / name
    f.write_bytes(content)
    out = tmp / "out"
    out.mkdir()
    return data, f, out


def _check(outcome: object) -> None:
    assert outcome.exit_code in (0, 1, 2), str(outcome)
    expect(outcome, outcome.exit_code)  # no escaped exception, no traceback


@FUZZ
@given(content=contents, name=names, max_shown=option_values, root=option_values)
def test_validate_survives_anything(content: bytes, name: str, max_shown: str, root: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, f, out = _inputs(Path(tmp), name, content)
        args = ["validate", f, "--json", out / "r.json", "--fix", out / "fixed.json"]
        with untouched(data, allow=[out]):
            _check(invoke([*args, "--max-shown", max_shown]))
            _check(invoke([*args, "--image-root", root or "."], cwd=data.parent))
            _check(invoke(["validate", f, "--image-root", data]))


@FUZZ
@given(content=contents, name=names, seed=option_values)
def test_export_survives_anything(content: bytes, name: str, seed: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, f, out = _inputs(Path(tmp), name, content)
        with untouched(data, allow=[out]):
            _check(invoke(["export", "--task", f, "--out", out / "exp", "--seed", seed]))
