"""An exponential moving average of a model's weights, for evaluation and for release.

The averaged weights smooth out the last steps' noise, so they usually evaluate better
and vary less from checkpoint to checkpoint than the live ones. The average covers the
floating-point buffers as well as the parameters: a forward pass reads both (BatchNorm's
running statistics, for one), and evaluating averaged weights against buffers that belong
to the live weights would mix two different models. Integer buffers (BatchNorm's
``num_batches_tracked``) are counters, not weights; they are left out and keep their live
value.

:meth:`EMA.state_dict` holds only tensors, so an ``EMA`` can go straight into the
``modules`` mapping of :func:`training.state.save_training_state` and
:func:`~training.state.load_training_state`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn

_SHADOW = "shadow."
_COUNT = "num_updates"


def _averaged_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's floating-point parameters and buffers by name (tied ones once)."""
    named = [*model.named_parameters(), *model.named_buffers()]
    return {name: t for name, t in named if t.is_floating_point()}


class EMA:
    """Shadow copies of ``model``'s floating-point weights, averaged by :meth:`update`.

    Each update moves the shadow ``(1 - d)`` of the way towards the live weights, i.e.
    ``shadow = d * shadow + (1 - d) * live``. With ``warmup`` the decay ``d`` of the
    ``n``-th update (counting from 0) is ``min(decay, (1 + n) / (10 + n))``: 0.1, 0.18,
    0.25, ... rising to ``decay`` after ``(10 * decay - 1) / (1 - decay)`` updates (8990 for
    0.999). Without it the shadow starts as the random initialisation and, at 0.999, would
    still be mostly that after a thousand steps; the ramp makes it follow the early, fast
    changing weights closely and only average over a long window once training settles.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be within [0, 1], got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {
            name: t.detach().clone() for name, t in _averaged_tensors(model).items()
        }

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n))

    def _live(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """``model``'s tensors matching the shadow, refusing a model of another shape."""
        live = _averaged_tensors(model)
        missing = sorted(set(self.shadow) - set(live))
        extra = sorted(set(live) - set(self.shadow))
        if missing or extra:
            raise ValueError(
                "model does not match the EMA: "
                f"missing {missing[:5] or 'nothing'}, unexpected {extra[:5] or 'nothing'}"
            )
        for name, shadow in self.shadow.items():
            if live[name].shape != shadow.shape:
                raise ValueError(
                    f"model tensor {name} has shape {list(live[name].shape)}, "
                    f"the EMA holds {list(shadow.shape)}"
                )
        return live

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average; call after each optimizer step."""
        live = self._live(model)
        weight = 1.0 - self.current_decay()
        for name, shadow in self.shadow.items():
            shadow.lerp_(live[name].detach().to(shadow.device, shadow.dtype), weight)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s weights with the averaged ones (the live ones are lost)."""
        live = self._live(model)
        for name, shadow in self.shadow.items():
            live[name].copy_(shadow)

    @contextlib.contextmanager
    def swapped_into(self, model: nn.Module) -> Iterator[nn.Module]:
        """Run the ``with`` body on the averaged weights, then put the live ones back.

        The live weights are restored in place (the same tensor objects, so the optimizer
        still holds them) even when the body raises. Train/eval mode is left as it is.
        """
        live = self._live(model)
        with torch.no_grad():
            saved = {name: live[name].detach().clone() for name in self.shadow}
        try:
            self.copy_to(model)
            yield model
        finally:
            with torch.no_grad():
                for name, tensor in saved.items():
                    live[name].copy_(tensor)

    def to(self, device: torch.device | str) -> EMA:
        """Move the shadow weights, e.g. to keep them off a crowded GPU; returns ``self``."""
        self.shadow = {name: t.to(device) for name, t in self.shadow.items()}
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Shadow weights as ``shadow.<name>`` plus the update count, all tensors."""
        state = {_SHADOW + name: t for name, t in self.shadow.items()}
        state[_COUNT] = torch.tensor(self.num_updates, dtype=torch.int64)
        return state

    @torch.no_grad()
    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Strictly: the same names and shapes as :meth:`state_dict`; shadows keep their device."""
        expected = {_SHADOW + name for name in self.shadow} | {_COUNT}
        missing = sorted(expected - set(state_dict))
        extra = sorted(set(state_dict) - expected)
        if missing or extra:
            raise ValueError(
                "EMA state does not match: "
                f"missing {missing[:5] or 'nothing'}, unexpected {extra[:5] or 'nothing'}"
            )
        for name, shadow in self.shadow.items():
            value = state_dict[_SHADOW + name]
            if value.shape != shadow.shape:
                raise ValueError(
                    f"EMA state {_SHADOW + name} has shape {list(value.shape)}, "
                    f"expected {list(shadow.shape)}"
                )
        for name, shadow in self.shadow.items():
            shadow.copy_(state_dict[_SHADOW + name])
        self.num_updates = int(state_dict[_COUNT])
