"""Checks across the records of a file: duplicate ids and records, conflicting answers, label balance."""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from typing import Any

from curation._fastpath import Columns
from curation.answers import canonical_label, yes_no
from curation.report import Problem, ValidationReport
from curation.schemas.questions import same_question_key

#: One answer above this share of a yes/no set makes the model learn to always say it.
BALANCE_LIMIT = 0.90


def normalized_image(path: str) -> str:
    """An image path as the file system reads it: "./a.png" and "a//b.png" are one file."""
    return posixpath.normpath(path) if ("./" in path or "//" in path) else path


def _question_keys(questions: list[str]) -> list[str]:
    """Each question's comparison key; the task question's paraphrases share one key."""
    keys = {q: same_question_key(q) for q in set(questions)}
    return list(map(keys.__getitem__, questions))


def set_problems(file: str, cols: Columns, report: ValidationReport) -> None:
    """Duplicate ids, duplicate records and conflicting answers across the file."""
    ids = cols.instance_id
    # C-speed filters first; the per-record loops run only where they tripped
    if len(set(ids)) != len(ids) or (set(map(type, ids)) == {int, str}):
        first_by_id: dict[str, int] = {}
        for i, rid in zip(cols.index, ids, strict=True):
            first = first_by_id.setdefault(str(rid), i)
            if first != i:
                report.add(
                    Problem(
                        file,
                        "duplicate_id",
                        f"instance_id {rid!r} is also record #{first}.",
                        "give every record a unique instance_id.",
                        index=i,
                        instance_id=rid,
                        field="instance_id",
                    )
                )
    images = cols.image
    joined = "\n".join(images)
    if "./" in joined or "//" in joined:  # only then can two spellings name one file
        images = list(map(normalized_image, images))
    del joined
    _pair_problems(file, cols, images, _question_keys(cols.text_input), report, same_path=True)


def _pair_problems(
    file: str,
    cols: Columns,
    firsts: list[Any],
    seconds: list[str],
    report: ValidationReport,
    same_path: bool,
) -> None:
    """Records that share a key (image + question): duplicates, case-only and real conflicts."""
    # hashes first (no tuple kept per record): exact pairs only where a hash repeats
    hashes = list(map(hash, zip(firsts, seconds, strict=True)))
    if len(set(hashes)) == len(hashes):
        return
    counts = Counter(hashes)
    positions = [k for k, h in enumerate(hashes) if counts[h] > 1]
    del hashes, counts
    first_by_pair: dict[Any, tuple[int, list[str], str]] = {}
    for k in positions:
        i, rid, pair = cols.index[k], cols.instance_id[k], (firsts[k], seconds[k])
        answer, image = cols.answer[k], cols.image[k]
        twin, twin_answer, twin_image = first_by_pair.setdefault(pair, (i, answer, image))
        if twin == i:
            continue
        if not same_path:
            if normalized_image(image) == normalized_image(twin_image):
                continue  # reported by the path comparison already
            if set(answer) != set(twin_answer) and yes_no(answer) != yes_no(twin_answer):
                report.add(
                    Problem(
                        file,
                        "conflicting_answers",
                        f"conflicting answers: same image content as record #{twin} (identical files "
                        f"{json.dumps(image)} and {json.dumps(twin_image)}) and the same "
                        f"question, but answer {answer} vs {twin_answer}.",
                        "decide the right label and keep one record.",
                        index=i,
                        instance_id=rid,
                        field="answer",
                    )
                )
            continue
        if answer == twin_answer:
            report.add(
                Problem(
                    file,
                    "duplicate_record",
                    f"same image, question and answer as record #{twin}.",
                    "drop the copy (--fix drops the later one).",
                    "warning",
                    i,
                    rid,
                )
            )
        elif [a.casefold() for a in answer] == [a.casefold() for a in twin_answer]:
            report.add(
                Problem(
                    file,
                    "answer_case",
                    f"same image and question as record #{twin}; only the case differs "
                    f"({answer} vs {twin_answer}).",
                    'write labels one way, e.g. lower-case "yes"/"no" (--fix does for yes/no), '
                    "and keep one record.",
                    "warning",
                    i,
                    rid,
                    "answer",
                )
            )
        elif set(answer) != set(twin_answer):
            same = yes_no(answer) == yes_no(twin_answer) != "other"
            report.add(
                Problem(
                    file,
                    "answer_spelling" if same else "conflicting_answers",
                    ("" if same else "conflicting answers: ")
                    + f"same image and question as record #{twin} but answer {answer} vs "
                    f"{twin_answer}" + ("; both mean the same yes/no label." if same else "."),
                    'write the label one way ("yes"/"no"; --fix does) and keep one record.'
                    if same
                    else "decide the right label and keep one record.",
                    "warning" if same else "error",
                    i,
                    rid,
                    "answer",
                )
            )


def content_conflicts(
    file: str, cols: Columns, sha_by_image: dict[str, str], report: ValidationReport
) -> None:
    """Conflicting answers between byte-identical image files under different names."""
    if len(set(sha_by_image.values())) == len(sha_by_image):
        return
    keep = [k for k, image in enumerate(cols.image) if sha_by_image.get(image)]
    sub = Columns.empty()
    for k in keep:
        sub.append(
            cols.index[k], cols.instance_id[k], cols.image[k], cols.text_input[k], cols.answer[k]
        )
    shas = list(map(sha_by_image.__getitem__, sub.image))
    _pair_problems(file, sub, shas, _question_keys(sub.text_input), report, same_path=False)


def label_problems(
    file: str, cols: Columns, other_firsts: list[str], report: ValidationReport
) -> None:
    """The yes/no balance (by the one answer rule) and labels written other than "yes"/"no"."""
    firsts = Counter(cols.first_answer)
    firsts.update(other_firsts)
    label_of = {a: yes_no(a) for a in firsts}
    odd = {a: c for a in firsts if (c := canonical_label(a))}
    if odd:
        for i, rid, first in zip(cols.index, cols.instance_id, cols.first_answer, strict=True):
            if first in odd:
                report.add(
                    Problem(
                        file,
                        "noncanonical_label",
                        f'{json.dumps(first)} counts as "{odd[first]}" in eval but is '
                        f"not a canonical yes/no label; the model learns to generate it as "
                        "written.",
                        f'write "{odd[first]}" (--fix rewrites it).',
                        "warning",
                        i,
                        rid,
                        "answer",
                    )
                )
    counts: Counter[str] = Counter()
    for answer, n in firsts.items():
        if (label := label_of[answer]) != "other":
            counts[label] += n
    total = sum(counts.values())
    if total < 2:
        return
    answer, n = counts.most_common(1)[0]
    share = n / total
    if share <= BALANCE_LIMIT:
        return
    report.add(
        Problem(
            file,
            "unbalanced_answers",
            f'{share:.0%} of the {total} yes/no records answer "{answer}"; the model will learn '
            f'to always say "{answer}".',
            "add negatives and general VQA data: curate mix --vqav2-ratio 0.7 --yes-share 0.5.",
            "warning",
            field="answer",
        )
    )
