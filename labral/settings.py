"""One settings style for every ``labral`` command: a typed pydantic model per command.

The model's fields are the one statement of each key, its type and its default. Hydra still
composes the command's YAML (config groups, experiment files, command-line overrides), but
on top of the model's *schema*: :func:`register_schema` puts every field, with its default,
into Hydra's ConfigStore, and the command's YAML lists that schema first in its defaults
list and then holds only groups and the values that differ. A key the model does not
declare is an error at composition time (Hydra's struct mode) and again at validation.

The command then turns the composed config into its model with :func:`settings_from_config`
and hands the model to library code, which never reads ``configs/`` itself::

    class BenchSettings(Settings):
        suite: str = "synthetic-id"

    register_schema("bench_schema", BenchSettings)        # at import of the command module
    settings = settings_from_config(BenchSettings, cfg)   # in the command's run(cfg)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError, PydanticUndefined

from labral.errors import BadConfigError

SettingsT = TypeVar("SettingsT", bound=BaseModel)

#: composed keys that belong to Hydra or to shared config groups, not to a command's model
HYDRA_KEYS = ("hydra",)
#: error type of a check whose message already names its keys (cross-key checks)
NAMED = "named_setting"


def _number_as_text(value: Any) -> Any:
    """A number Hydra parsed from a path typed on the command line, as that text."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


#: a path or name from the command line: ``bundle=2024`` stays the text ``"2024"``, not an int
Text = Annotated[str, BeforeValidator(_number_as_text)]


class Settings(BaseModel):
    """Base of every command's settings: unknown keys are errors, values are checked."""

    model_config = ConfigDict(extra="forbid")


def schema_node(model: type[BaseModel]) -> dict[str, Any]:
    """Every field of ``model`` with its default as a plain mapping (``???`` when required).

    Nested settings models become nested mappings, so ``store.url=...`` overrides compose.
    """
    node: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            node[name] = schema_node(annotation)
            continue
        if field.default_factory is not None:
            value: Any = field.default_factory()  # type: ignore[call-arg]
        elif field.default is PydanticUndefined:
            value = MISSING
        else:
            value = field.default
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        node[name] = _plain(value)
    return node


def _plain(value: Any) -> Any:
    """A default as a value OmegaConf can hold (paths and tuples as str and list)."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def register_schema(
    name: str,
    model: type[BaseModel],
    *,
    leave_out: tuple[str, ...] = (),
    defaults: list[Any] | None = None,
) -> None:
    """Store ``model``'s schema in Hydra's ConfigStore under ``name`` (idempotent).

    Args:
        leave_out: top-level fields kept out of the schema: switches a user adds with
            ``+key=value`` on the command line (Hydra refuses ``+`` for a key it already has);
            the model still states their type and default.
        defaults: the schema's own defaults list, for a default that is a config group's
            choice (``labral synth``'s ``difficulty`` level), so it too is stated once.
    """
    node = {key: value for key, value in schema_node(model).items() if key not in leave_out}
    if defaults is not None:
        node = {"defaults": defaults, **node}
    ConfigStore.instance().store(name=name, node=node)


def settings_from_config(
    model: type[SettingsT], cfg: DictConfig | dict[str, Any], *, ignore: tuple[str, ...] = ()
) -> SettingsT:
    """Validate a composed config into ``model``.

    Args:
        model: the command's settings model.
        cfg: the composed config (or a plain mapping of the same shape).
        ignore: top-level keys composed for Hydra or other groups that ``model`` does not
            hold (``hydra`` is always ignored).

    Raises:
        BadConfigError: a value has the wrong type or range, or a key is unknown; the message
            names each offending key the way the command line writes it (:func:`as_bad_config`).
    """
    skipped = {*HYDRA_KEYS, *ignore}
    # only the model's keys are resolved: an ignored node (``hydra`` composed with
    # return_hydra_config, ``paths`` outside a run) may hold interpolations that cannot be
    # resolved there
    data = {
        str(key): _resolved(cfg, str(key)) if isinstance(cfg, DictConfig) else cfg[key]
        for key in cfg
        if key not in skipped
    }
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise as_bad_config(error) from None


def _resolved(cfg: DictConfig, key: str) -> Any:
    """``cfg[key]`` with its interpolations resolved (against the whole config)."""
    value = cfg[key]
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def named_error(setting: str, value: Any, why: str) -> PydanticCustomError:
    """A validation error whose message is ``"<setting>=<value>: <why>"`` as it stands (for a
    check across keys, whose location pydantic cannot give)."""
    return PydanticCustomError(NAMED, "{message}", {"message": f"{setting}={value!r}: {why}"})


def as_bad_config(error: ValidationError, prefix: str = "") -> BadConfigError:
    """One :class:`BadConfigError` naming every refused key as the command line writes it
    (``prefix`` + dotted location): ``clip.frames=2: why``, ``key: missing; set it``,
    ``key: unknown setting``; a :func:`named_error` as it stands."""
    return BadConfigError("; ".join(_problem(problem, prefix) for problem in error.errors()))


def _problem(problem: Mapping[str, Any], prefix: str) -> str:
    key = prefix + ".".join(str(part) for part in problem["loc"])
    why = str(problem["msg"]).removeprefix("Value error, ")
    if problem["type"] == NAMED or not key or why.startswith(f"{key}="):
        return why  # the message names its key already
    if problem["type"] == "missing":
        return f"{key}: missing; set it"
    if problem["type"] == "extra_forbidden":
        return f"{key}: unknown setting"
    return f"{key}={problem['input']!r}: {why}"
