"""Context-managed forward hooks: capture or edit module outputs, always removed on exit.

``TraceDict(model, paths)`` resolves every path before registering anything (an unknown path raises
``UnknownModulePathError`` naming it, and no hook is left behind), registers one forward hook per path,
and removes all of them when the ``with`` block ends, also when it ends with an exception.

Module outputs may be tensors or tuples whose first element is the tensor of interest (decoder layers
on older transformers return tuples). ``edit_output(output, path)`` receives and returns that tensor;
the tuple is rebuilt around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch import nn


class EditFn(Protocol):
    """Edits the primary output tensor of the module at ``path``; returns the tensor to use instead."""

    def __call__(self, output: torch.Tensor, path: str) -> torch.Tensor: ...


class StopForward(Exception):
    """Raised by a ``stop=True`` trace after its module ran, to skip the rest of the forward pass.

    ``TraceDict``/``Trace`` swallow it on exit, so ``with TraceDict(..., stop=True): model(x)`` returns
    normally with the outputs captured up to the stopping module.
    """


class UnknownModulePathError(KeyError):
    """A requested module path does not exist in the model."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    """Return the submodule at dotted ``path`` or raise ``UnknownModulePathError`` naming it."""
    try:
        return model.get_submodule(path)
    except AttributeError as exc:
        raise UnknownModulePathError(
            f"module path {path!r} does not exist in {type(model).__name__}"
        ) from exc


def _primary(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _replace_primary(output: Any, new: torch.Tensor) -> Any:
    return (new, *output[1:]) if isinstance(output, tuple) else new


class Trace:
    """Hook one module: optionally keep its output (``.output``) and optionally edit it.

    Attributes:
        path: dotted module path.
        output: the last primary output seen (detached), or None; with ``retain_all`` see ``outputs``.
        outputs: every primary output seen in order (one per forward call) when ``retain_all``.
        calls: number of forward calls the hook saw.
    """

    def __init__(
        self,
        model: nn.Module,
        path: str,
        *,
        retain_output: bool = True,
        retain_all: bool = False,
        edit_output: EditFn | None = None,
        stop: bool = False,
    ) -> None:
        self.path = path
        self.stop = stop
        self.module = resolve_module(model, path)
        self.retain_output = retain_output
        self.retain_all = retain_all
        self.edit_output = edit_output
        self.output: torch.Tensor | None = None
        self.outputs: list[torch.Tensor] = []
        self.calls = 0
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> Any:
        self.calls += 1
        result = output
        if self.edit_output is not None:
            result = _replace_primary(output, self.edit_output(_primary(output), self.path))
        if self.retain_output or self.retain_all:
            kept = _primary(result).detach()
            self.output = kept
            if self.retain_all:
                self.outputs.append(kept)
        if self.stop:
            raise StopForward(self.path)
        return result if self.edit_output is not None else None

    def __enter__(self) -> Trace:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def close(self) -> None:
        """Remove the hook (idempotent)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> bool:
        self.close()
        return exc_type is not None and issubclass(exc_type, StopForward)


class TraceDict(dict[str, Trace]):
    """Several ``Trace`` objects keyed by path, registered and removed together.

    All paths are resolved before any hook is registered, so a bad path leaves the model untouched.
    With ``stop=True`` the forward pass is cut short right after the *last* path's module ran (the
    remaining layers and the LM head are not computed); use it when only the traced outputs are needed.
    """

    def __init__(
        self,
        model: nn.Module,
        paths: Iterable[str],
        *,
        retain_output: bool = True,
        retain_all: bool = False,
        edit_output: EditFn | None = None,
        stop: bool = False,
    ) -> None:
        super().__init__()
        ordered = list(dict.fromkeys(paths))  # ordered, de-duplicated
        for path in ordered:
            self[path] = Trace(
                model,
                path,
                retain_output=retain_output,
                retain_all=retain_all,
                edit_output=edit_output,
                stop=stop and path == ordered[-1],
            )

    def __enter__(self) -> TraceDict:
        try:
            for trace in self.values():
                trace.__enter__()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Remove every hook (idempotent)."""
        for trace in self.values():
            trace.close()

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> bool:
        self.close()
        return exc_type is not None and issubclass(exc_type, StopForward)


def active_forward_hooks(model: nn.Module) -> int:
    """Number of forward hooks registered by ``Trace`` objects anywhere in ``model`` (for lifecycle tests).

    transformers registers forward hooks of its own (output recording); those are not counted.
    """
    return sum(
        isinstance(getattr(hook, "__self__", None), Trace)
        for module in model.modules()
        for hook in module._forward_hooks.values()
    )


__all__ = [
    "EditFn",
    "StopForward",
    "Trace",
    "TraceDict",
    "UnknownModulePathError",
    "active_forward_hooks",
    "resolve_module",
]
