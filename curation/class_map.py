"""The class map: which activity classes of timed video segments answer "yes", "no" or neither.

One rule, one place: video ingest (OmniFall CSVs, generic segment files,
``fall/`` and ``no_fall/<kind>/`` clip folders), ``curate mix
--hard-negative-share`` and the per-kind reports all read it from here. The
default is package data (``curation/data/class_map.yaml``, equal to
``configs/class_map.yaml``), found the same way from any current folder.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from curation.errors import ConfigError, UsageError

#: Package data: the default class map (OmniFall's 16 classes).
DEFAULT_CLASS_MAP_FILE = Path(__file__).resolve().parent / "data" / "class_map.yaml"

#: What a class's frames answer: a task answer, or "unsure" (out of exports until relabelled).
ClassAnswer = Literal["yes", "no", "unsure"]

#: The FiftyOne fields a frame sample cut from a video carries (beside the curator's own).
FRAME_FIELDS: dict[str, str] = {
    "video": "StringField",  # the video, relative to the --videos folder
    "time": "FloatField",  # seconds from the video's start
    "frame_index": "IntField",
    "segment": "StringField",  # the labelled segment the frame lies in: "start-end" seconds
    "subject": "StringField",  # None when unknown (OmniFall's -1)
    "camera": "StringField",
    "source_dataset": "StringField",  # OmniFall's `dataset` column (le2i, up_fall, ...)
    "activity": "StringField",  # the class name from the class map
    "negative_kind": "StringField",  # for "no" frames: the class map's negative_kind
    "sampling": "StringField",  # the schedule it was cut with: "fps=2 margin=0.5 middle=yes"
}


class ClassRule(BaseModel):
    """One activity class."""

    model_config = ConfigDict(extra="forbid")
    id: int = Field(ge=0, strict=True)  # strict: YAML's `true` is not class 1, nor 1.5 class 1
    answer: ClassAnswer
    negative_kind: str | None = None

    @model_validator(mode="after")
    def _kind_only_for_no(self) -> ClassRule:
        if self.negative_kind is not None and self.answer != "no":
            raise ValueError(
                f'negative_kind {self.negative_kind!r} is only for answer "no" (got {self.answer!r})'
            )
        return self


class ClassMap(BaseModel):
    """Every class of the segment labels, and which negative kinds look like a fall."""

    model_config = ConfigDict(extra="forbid")
    classes: dict[str, ClassRule] = Field(min_length=1)
    lookalike_kinds: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids_known_kinds(self) -> ClassMap:
        seen: dict[int, str] = {}
        for name, rule in self.classes.items():
            if rule.id in seen:
                raise ValueError(f"classes {seen[rule.id]!r} and {name!r} share id {rule.id}")
            seen[rule.id] = name
        kinds = {r.negative_kind or n for n, r in self.classes.items() if r.answer == "no"}
        unknown = [k for k in self.lookalike_kinds if k not in kinds]
        if unknown:
            raise ValueError(
                f"lookalike_kinds {unknown} name no negative_kind of a class answering "
                f'"no" (known: {sorted(kinds)})'
            )
        return self

    def rule(self, label: str | int) -> tuple[str, ClassRule]:
        """The class named ``label`` (or with that id, as OmniFall's CSV gives it).

        Raises:
            KeyError: no such class (the caller names the file and row).
        """
        text = label.strip() if isinstance(label, str) else label
        # ASCII digits only: "²" and "٣" pass str.isdigit(), and int() refuses the first
        if isinstance(text, int) or (text.isascii() and text.isdigit()):
            wanted = int(text)
            for name, rule in self.classes.items():
                if rule.id == wanted:
                    return name, rule
            raise KeyError(label)
        name = str(text)
        if name in self.classes:
            return name, self.classes[name]
        raise KeyError(label)

    def known_labels(self) -> str:
        """For error messages: ``0 walk, 1 fall, ...``."""
        return ", ".join(f"{r.id} {n}" for n, r in sorted(self.classes.items(), key=_by_id))

    def negative_kind_of(self, name: str) -> str | None:
        """The kind of a "no" class (its own name when the map gives none); None otherwise."""
        rule = self.classes.get(name)
        if rule is None or rule.answer != "no":
            return None
        return rule.negative_kind or name

    def is_lookalike(self, kind: str | None) -> bool:
        return kind is not None and kind in self.lookalike_kinds


def _by_id(item: tuple[str, ClassRule]) -> int:
    return item[1].id


_EXAMPLE = (
    "classes:\n"
    '  fall:    {id: 1, answer: "yes"}\n'
    '  sitting: {id: 4, answer: "no", negative_kind: sitting}\n'
    "lookalike_kinds: [sitting]"
)


_BOOL_HINT = (
    " (YAML reads unquoted yes, no, on, off, true and false as booleans: write text in "
    'quotes, e.g. answer: "no", and an id as a number)'
)


def load_class_map(path: str | Path | None = None) -> ClassMap:
    """Read a class map (default: the package's OmniFall map, independent of the cwd).

    Raises:
        UsageError: the file is missing or a folder.
        ConfigError: not YAML, or not a class map (the message names the key and the fix).
    """
    if path is None:
        return _default()
    return _read(Path(path))


@functools.cache
def _default() -> ClassMap:
    return _read(DEFAULT_CLASS_MAP_FILE)


def _read(path: Path) -> ClassMap:
    from curation._io import not_a_file, path_kind

    kind = path_kind(path, "--class-map")
    if kind != "file":
        raise UsageError(
            f"class map {not_a_file(kind)}: {path}. Fix: --class-map FILE.yaml "
            "(configs/class_map.yaml is the commented default)"
        )
    from curation._yaml import read_yaml

    data = read_yaml(path, f"Fix: a file like\n{_EXAMPLE}")
    try:
        return ClassMap.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            + (_BOOL_HINT if isinstance(e.get("input"), bool) else "")
            for e in errors[:5]
        ) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise ConfigError(f"{path}: {problems}. Fix: a file like\n{_EXAMPLE}") from None
