"""Typed, strict configs loaded from YAML.

Every config is a pydantic model deriving from `StrictModel`: an unknown key fails with a message
naming it (and the file), and cross-field checks live in each config's validators.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound=BaseModel)


class ConfigError(ValueError):
    """A config file or override that cannot be turned into a valid config."""


class StrictModel(BaseModel):
    """Base for all configs: unknown keys are errors, assignments are validated, floats are finite
    (nan/inf in a weight or rate would only fail later, deep inside torch)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(),
                              allow_inf_nan=False)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{loc}'")
        else:
            lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def parse_overrides(overrides: list[str] | None) -> dict[str, Any]:
    """Turn ["train.lr=1e-4", "seed=3"] into a nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' conflicts with another override")
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def with_section_defaults(cls: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the values a section's default *instance* sets (e.g. `decode: DecodeConfig = DecodeConfig(
    depth=7)`) filled in under every section the data names, so `decode.mode=chain` keeps depth 7 instead of
    falling back to the class default; keys the data gives win."""
    out = dict(data)
    for name, field in cls.model_fields.items():
        sub = out.get(name)
        if not isinstance(sub, dict):
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            sub = deep_merge(default.model_dump(mode="json", include=default.model_fields_set), sub)
            out[name] = with_section_defaults(type(default), sub)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out[name] = with_section_defaults(field.annotation, sub)
    return out


def build_config(cls: type[T], data: dict[str, Any], source: str = "<dict>") -> T:
    try:
        return cls.model_validate(with_section_defaults(cls, data))
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Load `cls` from a YAML file (optional) plus dotted `key=value` overrides."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"invalid config ({path}): top level must be a mapping, got {type(loaded).__name__}")
        data = loaded
        source = str(path)
    data = deep_merge(data, parse_overrides(overrides))
    return build_config(cls, data, source)


def dump_config(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def config_keys(cls: type[BaseModel], prefix: str = "", instance: BaseModel | None = None) -> list[tuple[str, str]]:
    """[(dotted key, default as text)] of every leaf of a config class, nested configs flattened (a section's
    defaults are those of its default instance)."""
    out: list[tuple[str, str]] = []
    for name, field in cls.model_fields.items():
        value = getattr(instance, name) if instance is not None else (
            None if field.is_required() else field.get_default(call_default_factory=True))
        ann = field.annotation
        if isinstance(value, BaseModel) or (isinstance(ann, type) and issubclass(ann, BaseModel)):
            sub = type(value) if isinstance(value, BaseModel) else ann
            out += config_keys(sub, f"{prefix}{name}.", value if isinstance(value, BaseModel) else None)
            continue
        default = "required" if instance is None and field.is_required() else repr(value)
        out.append((f"{prefix}{name}", default if len(default) <= 60 else default[:57] + "..."))
    return out


def config_from_cli(cls: type[T], argv: list[str] | None, *, description: str | None, example: str) -> T:
    """The shared `--config YAML [key=value ...]` command line of every config-driven entry point;
    `--help` lists every config key with its default."""
    import argparse

    keys = config_keys(cls)
    width = max((len(k) for k, _ in keys), default=0)
    epilog = "config keys (default):\n" + "\n".join(f"  {k:<{width}}  {d}" for k, d in keys)
    ap = argparse.ArgumentParser(description=description, epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="YAML config file (keys below; the file's values, then the overrides)")
    ap.add_argument("overrides", nargs="*", help=f"dotted key=value overrides, e.g. {example}")
    args = ap.parse_intermixed_args(argv)  # overrides may come before or after --config
    return load_config(cls, args.config, args.overrides)


# ----------------------------------------------------------------------------- resume checks
def config_changes(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """{dotted key: (old, new)} for every leaf that differs (a key present on one side only counts)."""
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(old) | set(new), key=str):
        name = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.update(config_changes(a, b, f"{name}."))
        elif _normalise(a) != _normalise(b):
            out[name] = (a, b)
    return out


def _normalise(v: Any) -> Any:
    return [_normalise(x) for x in v] if isinstance(v, (list, tuple)) else v  # YAML/JSON turn tuples into lists


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in patterns)


def check_resume_config(stored: Mapping[str, Any] | BaseModel, current: Mapping[str, Any] | BaseModel, *,
                        may_change: Iterable[str] = (), source: str = "the checkpoint") -> dict[str, tuple[Any, Any]]:
    """Compare the config a run was started with (`stored`) with the one it is resumed with.

    Keys in `may_change` (dotted; a prefix covers its subtree) are returned as {key: (old, new)} for the
    caller to apply and log; any other change raises ConfigError naming each key with both values, so a
    setting is never recorded and silently ignored."""
    old = stored.model_dump(mode="json") if isinstance(stored, BaseModel) else dict(stored)
    new = current.model_dump(mode="json") if isinstance(current, BaseModel) else dict(current)
    allowed = list(may_change)
    changes = config_changes(old, new)
    refused = {k: v for k, v in changes.items() if not _matches(k, allowed)}
    if refused:
        lines = [f"  {k}: {a!r} in {source}, {b!r} now" for k, (a, b) in refused.items()]
        hint = f"; settings that may change on resume: {', '.join(allowed)}" if allowed else ""
        raise ConfigError("cannot resume with a changed config (restore these values or use a new output "
                          f"folder{hint}):\n" + "\n".join(lines))
    return changes
