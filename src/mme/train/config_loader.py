"""Run configs: dataclass defaults <- YAML (``_base_`` includes) <- ``--set`` overrides.

Errors name the key and the file or ``--set`` item; a ``configs/...`` path missing locally names
the recipe installed with the package.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from mme.errors import ConfigError
from mme.utils.atomic import atomic_write_text

T = TypeVar("T")
INCLUDE_KEYS = ("_base_", "defaults")
# The installed recipes: in a checkout, src/mme/configs links to the repository's configs/.
RECIPES = Path(__file__).resolve().parents[1] / "configs"


def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """A ``schema`` instance from defaults, a YAML file and ``key=value`` items; errors are ConfigErrors."""
    merged = OmegaConf.structured(schema)
    moved = getattr(schema, "MOVED_KEYS", {})
    if path is not None:
        for source, data in _yaml_chain(recipe_path(path), ()):
            merged = _merge(merged, data, source, moved)
    for item in overrides:
        merged = _merge(merged, _parse_override(item), f"--set {item}", moved)
    try:
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except MissingMandatoryValue as error:
        key = getattr(error, "full_key", None) or str(error).splitlines()[0]
        raise ConfigError(
            f"config key '{key}' must be set (in the YAML file or with --set {key}=...)"
        ) from None
    except ConfigError:
        raise
    except (OmegaConfBaseException, ValueError, TypeError) as error:
        raise ConfigError(f"invalid config: {_first_line(error)}") from None


def recipe_path(path: str | Path) -> Path:
    """``path`` if it exists; else, for a ``configs/...`` path, the recipe installed with mme."""
    given = Path(path).expanduser()
    if given.exists() or given.is_absolute() or given.parts[:1] != ("configs",):
        return given
    installed = RECIPES.joinpath(*given.parts[1:])
    if not installed.is_file():
        raise ConfigError(
            f"config file {given} does not exist, neither here nor among the recipes installed "
            f"with mme ({RECIPES})"
        )
    return installed


def to_yaml(config: Any) -> str:
    """The resolved config as YAML (what ``config.yaml`` in a run folder holds)."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict (stored in checkpoints, loadable with ``weights_only=True``)."""
    return dataclasses.asdict(config)


def from_dict(schema: type[T], data: dict[str, Any], source: str) -> T:
    """Rebuild a config from :func:`to_dict` output (e.g. the config stored in a checkpoint)."""
    merged = _merge(OmegaConf.structured(schema), data, source, getattr(schema, "MOVED_KEYS", {}))
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def write_config(config: Any, path: str | Path) -> None:
    atomic_write_text(path, to_yaml(config))


def _yaml_chain(path: Path, seen: tuple[Path, ...]) -> list[tuple[str, dict[str, Any]]]:
    """``[(file, mapping), ...]`` with included files first, without their include keys."""
    path = path.expanduser()
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ConfigError(f"config include cycle: {chain}")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    includes: list[str] = []
    for key in INCLUDE_KEYS:
        value = data.pop(key, None)
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: '{key}' must be a file name or a list of file names")
        includes.extend(value)
    chain: list[tuple[str, dict[str, Any]]] = []
    for include in includes:
        chain.extend(_yaml_chain(path.parent / include, (*seen, resolved)))
    chain.append((str(path), data))
    return chain


def _parse_override(item: str) -> DictConfig:
    key, sep, _ = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {item!r}")
    try:
        return OmegaConf.from_dotlist([item])
    except OmegaConfBaseException as error:
        raise ConfigError(f"--set {item}: {_first_line(error)}") from None


def _merge(base: DictConfig, data: Any, source: str, moved: Mapping[str, str]) -> DictConfig:
    try:
        return OmegaConf.merge(base, data)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        message = _first_line(error)
        if isinstance(error, KeyError):
            if key in moved:
                raise ConfigError(
                    f"{source}: '{key}' is no longer a setting; the value lives in {moved[key]}"
                ) from None
            raise ConfigError(f"{source}: unknown config key '{key or message}'{_known(error)}") from None
        where = f" for key '{key}'" if key else ""
        raise ConfigError(f"{source}: invalid value{where}: {message}") from None


def _known(error: OmegaConfBaseException) -> str:
    """``; known keys there: ...`` for an unknown key of a dataclass section, else ''."""
    section = getattr(error, "object_type", None)
    if section is None or not dataclasses.is_dataclass(section):
        return ""
    return f"; known keys there: {', '.join(sorted(f.name for f in dataclasses.fields(section)))}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
