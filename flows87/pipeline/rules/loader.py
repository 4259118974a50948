"""Load and validate `rules/*.yaml`; refuse a bad file with its path, line, field and reason."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from flows87.errors import ConfigError
from flows87.pipeline.features import RULES_DIR
from flows87.pipeline.rules.compile import check_rule
from flows87.pipeline.rules.model import Rule


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that refuses duplicate keys (a silent override is a classic rule bug);
    libyaml's parser when PyYAML has it (the run loads the catalogue three times)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class LoadedRule:
    rule: Rule
    path: Path


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    line, node = k.start_mark.line + 1, v
                    break
            else:
                return line
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def load_rule(path: str | Path) -> Rule:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        raise ConfigError(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            file=path,
            row=mark.line + 1 if mark else None,
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("a rule file must be a YAML mapping of fields", file=path)

    def node() -> yaml.Node | None:
        """The file's node tree, for the line of a problem (composed only when there is one)."""
        return yaml.compose(text, Loader=yaml.SafeLoader)

    try:
        rule = Rule(**data)
    except ValidationError as exc:
        errors = exc.errors()
        # An unknown key usually explains a "missing" one (a typo): report it first.
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or None
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            known = list(Rule.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            reason = "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
        raise ConfigError(reason, file=path, row=_line_of(node(), loc), field=field) from None
    if rule.id != path.stem:
        raise ConfigError(
            f"id {rule.id!r} must equal the file name {path.stem!r}",
            file=path,
            row=_line_of(node(), ("id",)),
            field="id",
        )
    try:
        check_rule(rule)
    except ConfigError as exc:
        raise ConfigError(
            exc.reason,
            file=path,
            row=_line_of(node(), tuple(exc.field.split("."))) if exc.field else None,
            field=exc.field,
            hint=exc.hint,
        ) from None
    return rule


def load_rules(folder: str | Path | None = None) -> list[LoadedRule]:
    """Every rule in a folder (top level `*.yaml`), sorted by id; the first bad file raises."""
    folder = Path(folder) if folder else RULES_DIR
    if not folder.is_dir():
        raise ConfigError("rules folder not found", file=folder)
    loaded = [LoadedRule(load_rule(p), p) for p in sorted(folder.glob("*.yaml"))]
    ids: dict[str, Path] = {}
    for item in loaded:
        if item.rule.id in ids:
            raise ConfigError(
                f"duplicate rule id {item.rule.id!r} (also in {ids[item.rule.id]})", file=item.path
            )
        ids[item.rule.id] = item.path
    return sorted(loaded, key=lambda r: r.rule.id)


def lint(folder: str | Path | None = None) -> tuple[list[Path], list[ConfigError]]:
    """Check every rule file; return the good files and every error (not just the first)."""
    folder = Path(folder) if folder else RULES_DIR
    good, errors = [], []
    for p in sorted(folder.glob("*.yaml")):
        try:
            load_rule(p)
            good.append(p)
        except ConfigError as exc:
            errors.append(exc)
    return good, errors
