"""The event engine's parameters: one pydantic model, defaults in one YAML."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from curation.errors import ConfigError

_FIX = "Fix: see configs/events.yaml for every key, its meaning and its default"


class EventParams(BaseModel):
    """How frame scores become alerts; every time is in seconds of the video's own clock."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fps: float = Field(2.0, gt=0, le=120, allow_inf_nan=False)
    smoothing: Literal["ema", "median", "none"] = "ema"
    smoothing_seconds: float = Field(1.0, ge=0, le=600, allow_inf_nan=False)
    on_threshold: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    off_threshold: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    off_ratio: float = Field(0.5, gt=0, le=1, allow_inf_nan=False)
    min_duration: float = Field(1.0, ge=0, le=3600, allow_inf_nan=False)
    refractory: float = Field(30.0, ge=0, le=86400, allow_inf_nan=False)
    long_lie: float | None = Field(60.0, gt=0, le=86400, allow_inf_nan=False)

    @model_validator(mode="after")
    def _off_below_on(self) -> EventParams:
        on, off = self.on_threshold, self.off_threshold
        if on is not None and off is not None and off > on:
            raise ValueError(f"off_threshold ({off}) must not be above on_threshold ({on})")
        return self

    def thresholds(self, operating_threshold: float) -> tuple[float, float]:
        """``(on, off)``: on defaults to the operating point's threshold, ``off`` to a share of it."""
        on = self.on_threshold if self.on_threshold is not None else operating_threshold
        off = self.off_threshold if self.off_threshold is not None else on * self.off_ratio
        return on, min(off, on)


def default_events_yaml() -> str:
    """The text of the shipped ``events.yaml`` (package data)."""
    return resources.files("curation").joinpath("data/events.yaml").read_text(encoding="utf-8")


def load_event_params(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> EventParams:
    """The shipped defaults, then the YAML at ``path``, then ``key=value`` overrides.

    Raises:
        ConfigError: a key that does not exist, a value out of range, a file that is not YAML.
    """
    import yaml

    from curation._yaml import parse_yaml, read_yaml

    data: dict[str, Any] = dict(parse_yaml(default_events_yaml()) or {})
    where = "the shipped events.yaml"
    if path is not None:
        where = str(path)
        loaded = read_yaml(Path(path), _FIX)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of event parameters. {_FIX}")
        data.update(loaded)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"event override {item!r}: expected key=value. {_FIX}")
        try:
            data[key.strip()] = parse_yaml(value) if value.strip() else None
        except yaml.YAMLError:
            raise ConfigError(
                f"event override {item!r}: the value is not valid YAML. {_FIX}"
            ) from None
        where = f"{where} with overrides"
    try:
        return EventParams.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "(the parameters)"
            lines.append(f"{loc}: {err['msg']}")
        raise ConfigError(f"{where}: " + "; ".join(lines) + f". {_FIX}") from None
