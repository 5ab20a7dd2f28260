"""Reading a scenario's YAML into plain data plus the line of every field, so an error can name file, line and field.

Responsible for: parsing with PyYAML's safe loader (no tags that build objects), keeping dates and times as the
strings the author wrote (the schema and the loader parse them, with their own messages), refusing a key given
twice in one mapping (YAML would silently keep the last), and a map from each field's path (``("steps", 3,
"pull", "patient")``) to its 1-based line. Not responsible for what the fields mean (``schema.json``, ``loader``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

Path = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """The safe loader without the YAML 1.1 timestamp rule: ``2027-01-31`` stays the text the author wrote."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class YamlSyntaxError(ValueError):
    def __init__(self, line: int, path: Path, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class YamlDocument:
    data: Any
    lines: dict[Path, int]  # field path -> line of its key (or of the value, for list items and the root)

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of the nearest enclosing field that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


def read_yaml(text: str) -> YamlDocument:
    """Parse one YAML document. Raises ``YamlSyntaxError`` with the line of the problem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None, {(): 1})
        lines = dict(_walk(node, ()))
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, (), f"not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, (), f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return YamlDocument(data, lines)


def _walk(node: yaml.Node, path: Path) -> Iterator[tuple[Path, int]]:
    if not path:
        yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise YamlSyntaxError(line, (*path, key), f"{key!r} is given twice (first on line {seen[key]})")
            seen[key] = line
            yield (*path, key), line
            yield from _walk(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield (*path, index), item.start_mark.line + 1
            yield from _walk(item, (*path, index))
