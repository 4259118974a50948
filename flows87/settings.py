"""Loading the YAML settings files of rules/settings/ into validated pydantic models."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from flows87.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: str | Path, model: type[M], what: str) -> M:
    """Read `path` as `model`; any problem is a ConfigError naming the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return model(**data)
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found", file=path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=path) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(map(str, err["loc"])) or None
        raise ConfigError(
            err["msg"].removeprefix("Value error, "), file=path, field=field
        ) from None
    except TypeError as exc:
        raise ConfigError(f"expected a mapping of settings: {exc}", file=path) from None
