"""The docs stay true to the code: the generated command reference is current,
every test the docs name exists, and no tracked file speaks of tracker numbers."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_cli_reference_is_current():
    gen = _generator()
    expected = gen.render()
    current = gen.CLI_DOC.read_text(encoding="utf-8") if gen.CLI_DOC.exists() else ""
    assert current == expected, f"docs/cli.md is stale. Regenerate it: {gen.REGENERATE}"


def test_cli_reference_lists_every_command():
    import typer.main

    from curation.cli import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]  # a typer app with commands is a click Group
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = [
        name for name, c in commands.items() if not c.hidden and f"## `curate {name}`" not in text
    ]
    assert not missing, f"docs/cli.md lacks {missing}. Regenerate it: {_generator().REGENERATE}"


def _defined_tests() -> set[str]:
    names: set[str] = set()
    pattern = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)\s*\(", re.MULTILINE)
    for path in TESTS.rglob("*.py"):
        names.update(pattern.findall(path.read_text(encoding="utf-8")))
    return names


def _named_tests(text: str) -> tuple[set[str], set[str]]:
    """Test functions and test files a doc names: ``test_x``, ``test_x[case]``, ``test_x.py``."""
    functions, files = set(), set()
    for match in re.finditer(r"(?<![\w/.-])(?:[\w/]+/)?(test_\w+)(\.py)?", text):
        name, is_file = match.group(1), match.group(2)
        (files if is_file else functions).add(match.group(0) if is_file else name)
    return functions, files


def test_named_tests_are_real_and_the_extractor_reads_every_form():
    functions, files = _named_tests(
        "`test_a[case-1]`, test_b, `tests/hostile/test_c.py::test_d`, docs/test_e.py"
    )
    assert functions == {"test_a", "test_b", "test_d"}
    assert files == {"tests/hostile/test_c.py", "docs/test_e.py"}


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_test_the_docs_name_exists(doc: Path):
    functions, files = _named_tests(doc.read_text(encoding="utf-8"))
    missing = sorted(functions - _defined_tests())
    test_files = {p.name for p in TESTS.rglob("test_*.py")}
    missing += sorted(f for f in files if Path(f).name not in test_files)
    assert not missing, (
        f"{doc.relative_to(ROOT)} names tests that do not exist: {missing}. "
        "Fix: name the test as it is now called in tests/ (or remove the mention)."
    )


# "issue" followed by a number, with or without "#" or a hyphen: a tracker's numbering;
# and a remote-run tool called with a `command=` keyword, which no user has
TRACKER_NUMBER = re.compile(r"\bissues?[ -]?#?[0-9]+|\brun\(command=", re.IGNORECASE)


def test_no_tracked_file_speaks_of_tracker_numbers():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    hits = []
    for name in listed.stdout.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files (images, clips)
        for number, line in enumerate(text.splitlines(), 1):
            if TRACKER_NUMBER.search(line):
                hits.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not hits, (
        "tracked files name tracker numbers or a remote-run tool; say what the thing does "
        "instead:\n" + "\n".join(hits)
    )


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            anchors.add(_slug(match.group(1)))
    return anchors


def test_slug_matches_github_anchors():
    assert _slug("## `curate find-issues`".lstrip("# ")) == "curate-find-issues"
    assert _slug("P(yes) and the operating point") == "pyes-and-the-operating-point"


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_in_the_docs_leads_somewhere(doc: Path):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.exists() or (
            anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
        ):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)} links to what does not exist: {broken}"


def test_model_help_names_every_preset():
    import typer.main

    from curation.cli import app
    from curation.presets import preset_names

    group = typer.main.get_command(app)
    root = group.context_class(group, info_name="curate")
    stale = {}
    for name, command in group.commands.items():  # type: ignore[attr-defined]  # a typer app with commands is a click Group
        ctx = command.context_class(command, info_name=name, parent=root)
        for param in command.get_params(ctx):
            if "--model" in getattr(param, "opts", ()):
                _, help_text = param.get_help_record(ctx)
                if "preset" not in help_text:
                    continue  # a --model that names a checkpoint, not a preset
                if missing := [p for p in preset_names() if p not in help_text]:
                    stale[name] = missing
    assert not stale, f"--model's help leaves out presets: {stale}"
