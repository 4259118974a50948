"""The chosen setting as a patch of the rule files' `default:` values (and settings files' keys).

The YAML text is edited in place at the exact span of each value (from the composed node's
marks), so comments, flow style and key order stay as the researcher wrote them; the patch is a
unified diff (difflib) with `a/` and `b/` prefixes relative to the repository root, applicable
with `git apply` or `patch -p1` there. The rule files themselves are never rewritten.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import yaml

from flows87.errors import ConfigError
from flows87.research.sweep.space import SweepParam


def format_value(value: float | int, typ: str) -> str:
    if typ == "int":
        return str(int(value))
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _node_at(root: yaml.Node | None, path: tuple[str, ...]) -> yaml.ScalarNode:
    """The scalar at `path` in `root` (None: an empty file); KeyError when there is none."""
    node = root
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            raise KeyError(part)
        for k, v in node.value:
            if k.value == part:
                node = v
                break
        else:
            raise KeyError(part)
    if not isinstance(node, yaml.ScalarNode):
        raise KeyError(path[-1])
    return node


def set_values(text: str, edits: dict[tuple[str, ...], str]) -> str:
    """`text` with the scalar at each key path replaced by the given text."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    spans = []
    for path, new in edits.items():
        node = _node_at(root, path)
        spans.append((node.start_mark.index, node.end_mark.index, new))
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def repo_root(path: Path) -> Path:
    """The git work tree holding `path`, or the folder above it (the rules folder's parent)."""
    path = path.resolve()
    for parent in [path, *path.parents]:
        if (parent / ".git").exists():
            return parent
    return path.parent


def make_patch(
    setting: dict[str, float | int], space: dict[str, SweepParam], root: Path | None = None
) -> str:
    """A unified diff setting each changed parameter's default to its value in `setting`."""
    by_file: dict[Path, dict[tuple[str, ...], str]] = {}
    for key, value in sorted(setting.items()):
        p = space[key]
        if p.file is None:
            raise ConfigError(f"no file holds the default of {key}")
        path: tuple[str, ...] = ("params", p.name, "default") if p.is_rule else (p.name,)
        by_file.setdefault(Path(p.file), {})[path] = format_value(value, p.type)
    if not by_file:
        return ""
    root = (root or repo_root(next(iter(by_file)).parent)).resolve()
    out: list[str] = []
    for file, edits in sorted(by_file.items()):
        before = file.read_text(encoding="utf-8")
        try:
            after = set_values(before, edits)
        except KeyError as exc:
            raise ConfigError(f"cannot find {exc} to change", file=file) from None
        check = yaml.safe_load(after)
        for path, new in edits.items():
            node = check
            for part in path:
                node = node[part]
            if float(node) != float(yaml.safe_load(new)):
                raise ConfigError(
                    f"patched value of {'.'.join(path)} reads back as {node}", file=file
                )
        rel = Path(os.path.relpath(file.resolve(), root)).as_posix()
        out.extend(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile=f"a/{rel}",
                tofile=f"b/{rel}",
            )
        )
    text = "".join(out)
    return text if text.endswith("\n") else text + "\n"


def patched_settings(
    setting: dict[str, float | int], space: dict[str, SweepParam], folder: Path
) -> dict[str, Path]:
    """Copies of the settings files (detectors, scoring) with the setting's values, in `folder`,
    by owner; rule parameters are left to RunConfig.rule_overrides."""
    edits: dict[str, dict[tuple[str, ...], str]] = {}
    files: dict[str, Path] = {}
    for key, value in setting.items():
        p = space[key]
        if p.is_rule or p.file is None:
            continue
        edits.setdefault(p.owner, {})[(p.name,)] = format_value(value, p.type)
        files[p.owner] = Path(p.file)
    out: dict[str, Path] = {}
    for owner, e in edits.items():
        target = folder / f"{owner}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(set_values(files[owner].read_text(encoding="utf-8"), e), encoding="utf-8")
        out[owner] = target
    return out
