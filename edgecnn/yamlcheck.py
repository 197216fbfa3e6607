"""What every edgecnn YAML reader (data.yaml, the device config, ``package --config``) asks of
a parsed document: where a syntax error is, and whether a key is set twice.

YAML loaders keep the last of two equal keys silently, and PyYAML's error text spans several
lines (a mark dump); the readers turn both into their own one-line errors.
"""

from __future__ import annotations

from collections import deque

import yaml


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """``(line, problem)`` of a PyYAML error: its 1-based line (None if unknown) and one line of text."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (mark.line + 1 if mark is not None else None), problem


def duplicate_key(node: yaml.Node | None) -> tuple[str, int, int] | None:
    """The first key that a mapping of the document sets twice, with both lines; None if none.

    Mappings are visited outer first, each node once (aliases share nodes), without recursion
    (the nesting depth is the file's to choose).
    """
    queue: deque[yaml.Node] = deque([node] if node is not None else [])
    visited: set[int] = set()
    while queue:
        current = queue.popleft()
        if id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, yaml.MappingNode):
            lines: dict[tuple[str, str], int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if (key.tag, key.value) in lines:
                        return key.value, lines[(key.tag, key.value)], line
                    lines[(key.tag, key.value)] = line
                queue.append(value)
        elif isinstance(current, yaml.SequenceNode):
            queue.extend(current.value)
    return None
