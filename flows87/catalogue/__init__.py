"""The bundled catalogue: where the rules (with their settings) and the quality suites are.

The repository keeps them in its top-level `rules/` and `expectations/` folders, where users and
reviewers look for them. A built wheel carries copies inside this package (pyproject.toml's
`[tool.hatch.build.targets.wheel.force-include]` maps them to `flows87/catalogue/rules` and
`flows87/catalogue/expectations`), so an installed flows87 finds them without a checkout. This
module is the one place that knows both homes: the copy inside the package when there is one
(an installed wheel), else the checkout's top-level folder (a source checkout, or the editable
install, which imports the package from the checkout and leaves this folder without copies).

`--rules DIR` and `RunConfig.rules_dir` still override the rules; `flows87 rules init DIR`
copies the bundled ones out to edit.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

RULES = "rules"
SUITES = "expectations"


def _package_dir() -> Path:
    # A regular package imported from the file system: its resources are files in this folder.
    return Path(str(resources.files(__name__)))


def _checkout_dir() -> Path:
    """The repository root, when the package is imported from a checkout (flows87/catalogue/)."""
    return Path(__file__).resolve().parents[2]


def bundled(name: str) -> Path:
    """The folder of one part of the catalogue (`rules` or `expectations`)."""
    if name not in (RULES, SUITES):
        raise ValueError(f"no catalogue part {name!r}: {RULES!r} or {SUITES!r}")
    packaged = _package_dir() / name
    if packaged.is_dir():
        return packaged
    checkout = _checkout_dir() / name
    return checkout if checkout.is_dir() else packaged


def rules_dir() -> Path:
    """The bundled rules: one YAML file per rule, and settings/ (features, detectors, scoring)."""
    return bundled(RULES)


def suites_dir() -> Path:
    """The bundled quality suites: one great-expectations JSON suite per gate."""
    return bundled(SUITES)


def copy_rules(target: Path, *, force: bool = False) -> list[Path]:
    """Copy the bundled rules and their settings into `target`, for a researcher to edit.

    Refuses a folder that already holds files unless `force` (then same-named files are
    overwritten and others kept). Returns the files written, relative to `target`.
    """
    source = rules_dir()
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} is a file, not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise FileExistsError(f"{target} is not empty")
    files = sorted(
        p.relative_to(source)
        for p in source.rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".yml")
    )
    for rel in files:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, target / rel)
    return files
