"""One way to build a training part from its config group: ``hydra.utils.instantiate`` with
the project's typed errors (a user's mistake is a :class:`~labral.errors.BadConfigError`)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from labral.errors import BadConfigError, LabralError


def instantiate_group(node: DictConfig, group: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)`` for the config group ``group``.

    Args:
        node: the group's node (``cfg.data``, ``cfg.logger``, ...) with a ``_target_``.
        group: its name, for messages (``"data"``).
        kwargs: arguments only known at run time (a run dir, a rank), passed to the target.

    Raises:
        LabralError: what the target's constructor raised (unwrapped from Hydra's
            ``InstantiationException``, so it keeps its code and message).
        BadConfigError: anything else (a wrong ``_target_``, an unknown or missing argument).
    """
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Hydra wraps import and argument errors alike
        if isinstance(exc.__cause__, LabralError):
            raise exc.__cause__ from None
        target = node.get("_target_", "<missing>")
        reason = str(exc.__cause__ or exc).splitlines()[0]  # the constructor's own complaint
        raise BadConfigError(
            f"{group}._target_={target} cannot be built ({reason}); fix the arguments in "
            f"configs/{group}/ or on the command line"
        ) from exc
