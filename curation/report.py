"""Problems found in data, collected in one pass and reported together."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from curation._io import atomic_write_text

Severity = Literal["error", "warning"]

#: Problems of one code kept in a report; the rest are counted (memory stays bounded
#: on a file where every record is wrong).
MAX_KEPT_PER_CODE = 10_000


def printable(text: str) -> str:
    """``text`` with lone surrogates written as escapes, so it can be printed and saved."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: where it is (file, record, field), what it is, and the fix."""

    file: str
    code: str
    message: str
    fix: str = ""
    severity: Severity = "error"
    index: int | None = None
    instance_id: int | str | None = None
    field: str | None = None

    def __post_init__(self) -> None:
        # text from a data file may hold lone surrogates: make every string printable
        for name in ("file", "message", "fix", "field", "instance_id"):
            value = getattr(self, name)
            if isinstance(value, str) and not value.isascii():
                object.__setattr__(self, name, printable(value))

    def where(self) -> str:
        """Human location, e.g. ``data/train.json record #1 (instance_id=1)``.

        The path as given, not the base name: two ``train.json`` in different
        folders must be told apart.
        """
        parts = [self.file]
        if self.index is not None:
            rec = f"record #{self.index}"
            if self.instance_id is not None:
                rec += f" (instance_id={self.instance_id})"
            parts.append(rec)
        return " ".join(parts)

    def render(self) -> str:
        """One line in the style ``file record #i (id): field: message. Fix: ...``."""
        head = self.where()
        body = f"{self.field}: {self.message}" if self.field else self.message
        text = f"{head}: {body}"
        if self.fix:
            text += f" Fix: {self.fix}"
        return text


@dataclass
class ValidationReport:
    """Everything ``validate`` found across one or more files."""

    files: list[str] = field(default_factory=list)
    records: int = 0
    images_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: problems counted but not kept, by code (beyond ``MAX_KEPT_PER_CODE`` of a code)
    omitted: dict[str, int] = field(default_factory=dict)
    omitted_errors: int = 0
    omitted_warnings: int = 0
    _kept: Counter[str] = field(default_factory=Counter, repr=False, compare=False)

    def add(self, problem: Problem) -> None:
        """Keep ``problem``, or only count it once its code has ``MAX_KEPT_PER_CODE`` kept."""
        if self._kept[problem.code] < MAX_KEPT_PER_CODE:
            self._kept[problem.code] += 1
            self.problems.append(problem)
            return
        self.omitted[problem.code] = self.omitted.get(problem.code, 0) + 1
        if problem.severity == "error":
            self.omitted_errors += 1
        else:
            self.omitted_warnings += 1

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.add(problem)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not self.omitted_errors and not any(p.severity == "error" for p in self.problems)

    def counts_by_code(self) -> dict[str, int]:
        counts = Counter(p.code for p in self.problems)
        counts.update(self.omitted)
        return dict(counts.most_common())

    def summary(self) -> str:
        n_err = len(self.errors) + self.omitted_errors
        n_warn = len(self.warnings) + self.omitted_warnings
        verdict = "valid" if self.ok else "INVALID"
        return (
            f"{verdict}: {len(self.files)} file(s), {self.records} record(s), "
            f"{self.images_checked} image(s) checked, {n_err} error(s), {n_warn} warning(s)"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "files": self.files,
            "records": self.records,
            "images_checked": self.images_checked,
            "errors": len(self.errors) + self.omitted_errors,
            "warnings": len(self.warnings) + self.omitted_warnings,
            "counts_by_code": self.counts_by_code(),
            "omitted_by_code": dict(self.omitted),
            "problems": [asdict(p) for p in self.problems],
        }

    #: an existing ``--json`` file is replaced only when it holds these keys (an earlier report)
    REPORT_KEYS = ("ok", "files", "records", "problems")

    def write_json(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
