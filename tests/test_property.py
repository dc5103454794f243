"""Property tests: the validator reports problems for any input and never crashes;
the fast path and the pydantic model accept exactly the same records."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation._fastpath import decode_clean, decode_record, gc_paused
from curation.schemas.annotation import VQARecord
from curation.validate import validate_files

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
field_values = st.one_of(
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.sampled_from(
        [
            "",
            " ",
            "\t",
            "1.jpg",
            "a/b.png",
            "../x.png",
            "/abs.png",
            "C:\\x.png",
            "x..y.png",
            "a:b.png",
            "a/..",
            "a\nb.png",
            "a\n/b.png",
            "ok.png/",
            "a\x00.png",
            "a\tb.png",
            "x" * 300 + ".png",
            "a/" * 600 + "b.png",
            "yes",
            "no",
            " yes",
        ]
    ),
    st.sampled_from(["1.jpg", "yes"]),
    st.text(max_size=5),
    st.lists(st.sampled_from(["yes", "no", "", " ", "2"]) | st.integers(), max_size=3),
)
records = st.fixed_dictionaries(
    {},
    optional={
        k: field_values
        for k in ("instance_id", "image", "text_input", "answer", "question", "question_id")
    }
    | {"extra": st.integers()},
)
SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _validate(tmp_path: Path, payload: bytes):
    f = tmp_path / "prop.json"
    f.write_bytes(payload)
    return validate_files([f], check_image_files=False)


@SETTINGS
@given(value=json_values)
def test_any_json_value_gives_a_report(tmp_path: Path, value: object) -> None:
    report = _validate(tmp_path, json.dumps(value).encode())
    if not (isinstance(value, list) and value):
        assert not report.ok  # not a non-empty list of records: always an error


def _problems_are_printable(report) -> None:
    for p in report.problems:
        assert p.code and p.message and p.fix, p
        p.render().encode("utf-8")  # printable and savable, even from hostile bytes


@SETTINGS
@given(payload=st.binary(max_size=200))
def test_any_bytes_give_a_report(tmp_path: Path, payload: bytes) -> None:
    report = _validate(tmp_path, payload)
    _problems_are_printable(report)
    if report.ok:  # valid: a non-empty UTF-8 JSON array of contract records
        records = json.loads(payload.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
        assert isinstance(records, list) and records
        for r in records:
            VQARecord.model_validate(r)


@SETTINGS
@given(recs=st.lists(records, min_size=1, max_size=4))
def test_fast_path_agrees_with_the_pydantic_model(recs: list[dict]) -> None:
    def reference_ok(r: dict) -> bool:
        try:
            model = VQARecord.model_validate(r)
        except ValueError:
            return False
        # LAVIS's coco-vqa keys are the contract's too; a question that differs from
        # text_input is a warning (the fast path leaves it to the record-by-record path)
        same = model.question is None or model.question == model.text_input
        return same and not (set(r) - set(VQARecord.model_fields))

    payload = json.dumps(recs).encode()
    with gc_paused():
        fast = decode_clean(payload)
    expected = [reference_ok(r) for r in recs]
    if fast is not None:  # soundness: the fast path never accepts what the model rejects
        assert all(expected)
    elif all(expected):
        # the fast path's only deliberate over-reach: ':' anywhere in an image path
        # (a newline in a path is an error in both: image_path_problem rejects it)
        assert any(":" in r["image"] for r in recs)
    # the record-by-record path (files with a bad record) agrees with the model exactly
    one_by_one = [decode_record(msgspec.Raw(json.dumps(r).encode())) is not None for r in recs]
    assert one_by_one == expected
