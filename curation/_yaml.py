"""Reading the YAML files users write (configs, class maps, questions, curate.yaml): one rule.

PyYAML's ``safe_load`` keeps the last of two equal keys, so a second
``lookalike_kinds:`` or a ``run:`` section written twice silently replaced the
first. Every YAML file a user edits is read here: safe (no tags that build
objects), UTF-8, a repeated key refused with its line, and a syntax error named
by line and column with the fix.

Aliases are bounded too: ``&a [*b, *b, ...]`` nested nine deep is 2 KB of text
but a billion values once expanded, and whatever walks the loaded data (the
config's validation, an override's copy) walks every one. The composed node
graph is counted, aliases expanded, before anything is built from it; a file
over ``MAX_YAML_BYTES`` is refused unread.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from curation._io import read_user_file
from curation.errors import ConfigError


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
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


#: no YAML a user edits (a run config, a class map, a question list) comes near these
MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_YAML_VALUES = 200_000


class YAMLTooLarge(yaml.YAMLError):
    """The document expands to more values than ``MAX_YAML_VALUES`` (an alias bomb)."""


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` holds with every alias expanded (counted, never built).

    Raises:
        YAMLTooLarge: over ``MAX_YAML_VALUES``, or an alias inside its own anchor.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise YAMLTooLarge(
                f"the value anchored at line {node.start_mark.line + 1} holds an alias to "
                "itself: it would hold itself without end"
            )
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_VALUES:
                raise YAMLTooLarge(
                    f"its aliases (*name) expand to more than {MAX_YAML_VALUES:,} values "
                    f"(from line {node.start_mark.line + 1}): no config is that large; an "
                    "alias repeated inside aliases multiplies (a YAML 'billion laughs')"
                )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)


def parse_yaml(text: str) -> Any:
    """``text`` as YAML, safely, refusing repeated keys and alias bombs (``yaml.YAMLError``).

    Raises:
        YAMLTooLarge: longer than ``MAX_YAML_BYTES``, or aliases that expand past
            ``MAX_YAML_VALUES``.
        yaml.YAMLError: any other YAML problem.
    """
    if len(text) > MAX_YAML_BYTES:
        raise YAMLTooLarge(
            f"{len(text):,} characters, more than the {MAX_YAML_BYTES:,} a YAML file may hold"
        )
    loader = UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path, fix: str) -> Any:
    """The YAML file at ``path``.

    Raises:
        UsageError: not a regular file (a device, FIFO or folder), or over ``MAX_YAML_BYTES``.
        ConfigError: not UTF-8 text, not valid YAML (line and column named), a key given
            twice, aliases that expand past ``MAX_YAML_VALUES``, or nested too deeply;
            each message ends with ``fix``.
    """
    data = read_user_file(path, "YAML file", fix, max_bytes=MAX_YAML_BYTES)
    try:
        return parse_yaml(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file ({exc}). {fix}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply. {fix}") from None
    except YAMLTooLarge as exc:
        raise ConfigError(f"{path}: not a config: {exc}. {fix}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}. {fix}") from None
