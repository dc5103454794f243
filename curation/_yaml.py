"""Reading the YAML files users write (configs, class maps, questions, curate.yaml): one rule.

PyYAML's ``safe_load`` keeps the last of two equal keys, so a second
``lookalike_kinds:`` or a ``run:`` section written twice silently replaced the
first. Every YAML file a user edits is read here: safe (no tags that build
objects), UTF-8, a repeated key refused with its line, and a syntax error named
by line and column with the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from curation.errors import ConfigError


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                twice = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader names it below
                continue
            if twice:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key!r} is given twice (line {key_node.start_mark.line + 1}); "
                    "only the last would count",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """``text`` as YAML, safely, refusing repeated keys (``yaml.YAMLError`` otherwise)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: Path, fix: str) -> Any:
    """The YAML file at ``path``.

    Raises:
        ConfigError: not UTF-8 text, not valid YAML (line and column named), a key given
            twice, or nested too deeply; each message ends with ``fix``.
    """
    try:
        return parse_yaml(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file ({exc}). {fix}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply. {fix}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}. {fix}") from None
