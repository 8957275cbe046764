"""Resumable training state: one ``.safetensors`` file holding everything a run needs to go on.

A resumed run must make exactly the parameter updates the uninterrupted run would have made,
so the file holds the module weights, the optimizers' per-parameter state and hyperparameters,
the schedulers, every global random generator and whatever the caller adds (step, data
position, config). Like the model checkpoint (``dkt.dktnet.checkpoint``) it is safetensors plus
JSON metadata, so resuming from a file someone hands over can never execute code, and
loading is strict: a file that does not fit the run is refused before anything is changed,
with the file and the offending entry in a one-line :class:`~dkt.errors.CheckpointError`.

File layout (tensor names; all tensors are stored on the CPU):

* ``module.<name>.<key>``: ``modules[name].state_dict()[key]``
* ``optim.<name>.state.<param index>.<key>``: per-parameter optimizer state tensors
* ``optim.<name>.group.<group index>.<key>``, ``sched.<name>.<path>``, ``meta.<path>``:
  tensors found inside param groups, scheduler states or ``meta`` (rare; e.g. a tensor lr)
* ``rng.torch``, ``rng.cuda.<device>``: torch generator states
* ``tensors.<key>``: the caller's extra tensors

Metadata (strings; all but the first three are JSON): ``format`` (``dkt-training-state``),
``format_version``, ``step``, ``modules`` (names), ``optimizers`` (per name: class, param
groups without their ``params`` lists, the parameter layout, non-tensor per-parameter state),
``schedulers`` (per name: class, ``state_dict()``), ``rng`` (Python and NumPy states),
``meta``, ``tensors`` (names) and ``torch_version`` (informative only).

JSON cannot tell a tuple from a list, an ``int`` dict key from a ``str`` one or a ``Counter``
from a dict, and schedulers and optimizers rely on all three (Adam's ``betas`` tuple,
MultiStepLR's ``Counter`` of milestones), so such values are written as one-key tagged
objects (``{"__tuple__": [...]}``, ``{"__items__": [[k, v], ...]}``, ``{"__counter__": ...}``,
``{"__tensor__": name}``) and come back with their type. Anything else that JSON cannot hold
(a function, an arbitrary object) is refused when saving, naming where it was found.
"""

from __future__ import annotations

import json
import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from dkt.atomic import atomic_path
from dkt.errors import CheckpointError

FORMAT_NAME = "dkt-training-state"
FORMAT_VERSION = 1
_MODEL_FORMAT = "dkt-dktnet"  # dkt.dktnet.checkpoint's tag, recognised only to give a better error
_SHOWN_NAMES = 5
_RNG_KINDS = ("python", "numpy", "torch", "cuda")

_TUPLE = "__tuple__"
_TENSOR = "__tensor__"
_ITEMS = "__items__"
_COUNTER = "__counter__"
_TAGS = frozenset({_TUPLE, _TENSOR, _ITEMS, _COUNTER})


class TensorStateful(Protocol):
    """Anything whose whole state is a flat mapping of tensors: ``nn.Module``, ``EMA``."""

    def state_dict(self) -> Mapping[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class LoadedState:
    """What :func:`load_training_state` hands back beyond the objects it restored in place.

    ``rng`` is not applied on loading: the caller restores it with :func:`restore_rng` right
    before the first resumed step, after building data loaders and anything else that may
    draw random numbers while it sets up.
    """

    step: int
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    rng: dict[str, Any]


# --------------------------------------------------------------------------- random state


def capture_rng() -> dict[str, Any]:
    """Every global random generator a training step may draw from.

    Python's and NumPy's states become plain lists (JSON), torch's are uint8 tensors. CUDA
    generators are captured only where this process has initialised CUDA: before that
    nothing can have drawn from them, and asking would create a context on every GPU.
    """
    version, internal, gauss_next = random.getstate()
    legacy = np.random.get_state(legacy=True)
    # A tuple while NumPy's global generator is its MT19937, which dkt never replaces; the
    # stubs also allow the dict other bit generators give.
    assert isinstance(legacy, tuple)
    name, keys, pos, has_gauss, cached_gaussian = legacy
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss_next],
        "numpy": [str(name), keys.tolist(), int(pos), int(has_gauss), float(cached_gaussian)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Put back what :func:`capture_rng` took; kinds absent from ``state`` are left alone.

    CUDA states are skipped where CUDA is unavailable (a GPU run resumed on a CPU cannot
    replay the GPU's random numbers anyway), and only as many are restored as there are
    devices now.
    """
    unknown = sorted(set(state) - set(_RNG_KINDS))
    if unknown:
        raise ValueError(f"unknown random generator state(s): {', '.join(unknown)}")
    if "python" in state:
        version, internal, gauss_next = state["python"]
        random.setstate((int(version), tuple(int(x) for x in internal), gauss_next))
    if "numpy" in state:
        name, keys, pos, has_gauss, cached_gaussian = state["numpy"]
        keys_array = np.asarray(keys, dtype=np.uint32)
        np.random.set_state(
            (str(name), keys_array, int(pos), int(has_gauss), float(cached_gaussian))
        )
    if "torch" in state:
        torch.set_rng_state(state["torch"].to("cpu", torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        for device, generator in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(generator.to("cpu", torch.uint8), device)


def _check_rng(state: Any) -> None:
    """Refuse a malformed RNG section at load time, before it can fail halfway through."""
    if not isinstance(state, dict) or not {"python", "numpy", "torch"} <= set(state):
        raise ValueError("python, numpy and torch states expected")
    if set(state) - set(_RNG_KINDS):
        raise ValueError(f"unknown kinds {sorted(set(state) - set(_RNG_KINDS))}")
    py = state["python"]
    if not (isinstance(py, list) and len(py) == 3 and isinstance(py[1], list)):
        raise ValueError("python state is not [version, internal state, gauss_next]")
    if not all(isinstance(x, int) for x in py[1]):
        raise ValueError("python state holds non-integers")
    npy = state["numpy"]
    if not (isinstance(npy, list) and len(npy) == 5 and isinstance(npy[1], list)):
        raise ValueError("numpy state is not [name, keys, pos, has_gauss, cached_gaussian]")
    generators = [state["torch"], *state.get("cuda", [])]
    for generator in generators:
        if not (isinstance(generator, torch.Tensor) and generator.dtype == torch.uint8):
            raise ValueError("torch generator states must be uint8 tensors")


# --------------------------------------------------------------------------- JSON codec


class _TensorStore:
    """The tensors headed for the file: unique names, CPU, contiguous, no shared storage."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._storages: set[int] = set()

    def put(self, name: str, tensor: torch.Tensor) -> None:
        if name in self.tensors:
            raise ValueError(f"two entries would both be stored as {name!r}; rename one")
        if tensor.layout != torch.strided:
            raise TypeError(f"cannot store {name}: {tensor.layout} tensors are not supported")
        stored = tensor.detach().to("cpu").contiguous()
        # safetensors refuses tensors that share memory (tied weights, views of one buffer).
        pointer = stored.untyped_storage().data_ptr()
        if pointer in self._storages:
            stored = stored.clone()
            pointer = stored.untyped_storage().data_ptr()
        self._storages.add(pointer)
        self.tensors[name] = stored


def _encode(value: Any, name: str, store: _TensorStore | None) -> Any:
    """``value`` as JSON with its Python types kept; tensors go to ``store`` as ``name``.

    ``store`` is None for dict keys, where a tensor makes no sense.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return _encode(value.item(), name, store)
    if isinstance(value, torch.Tensor) and store is not None:
        store.put(name, value)
        return {_TENSOR: name}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, f"{name}.{i}", store) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{name}.{i}", store) for i, v in enumerate(value)]
    if isinstance(value, Counter):
        return {_COUNTER: [[_encode(k, name, None), v] for k, v in value.items()]}
    if type(value) in (dict, OrderedDict):
        plain = all(isinstance(k, str) for k in value) and not (
            len(value) == 1 and next(iter(value)) in _TAGS
        )
        if plain:
            return {k: _encode(v, f"{name}.{k}", store) for k, v in value.items()}
        return {
            _ITEMS: [
                [_encode(k, name, None), _encode(v, f"{name}.{k}", store)] for k, v in value.items()
            ]
        }
    raise TypeError(
        f"cannot store {name} (a {type(value).__qualname__}): training state holds only "
        "tensors, None, bool, int, float, str, list, tuple, dict and Counter values"
    )


def _decode(value: Any, tensor: Callable[[str], Any]) -> Any:
    """Undo :func:`_encode`; ``tensor(name)`` supplies the stored tensors."""
    if isinstance(value, list):
        return [_decode(v, tensor) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == _TENSOR:
            if not isinstance(inner, str):
                raise ValueError(f"malformed {_TENSOR} entry")
            return tensor(inner)
        if tag == _TUPLE:
            return tuple(_decode(list(inner), tensor))
        if tag == _ITEMS:
            return {_decode(k, tensor): _decode(v, tensor) for k, v in inner}
        if tag == _COUNTER:
            return Counter({_decode(k, tensor): v for k, v in inner})
    return {k: _decode(v, tensor) for k, v in value.items()}


def _tensor_refs(value: Any) -> set[str]:
    refs: set[str] = set()

    def collect(name: str) -> None:
        refs.add(name)

    _decode(value, collect)
    return refs


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --------------------------------------------------------------------------- saving


def _check_names(kind: str, names: Mapping[str, Any]) -> None:
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{kind} names must be non-empty strings, got {name!r}")


def _parameter_names(modules: Mapping[str, Any]) -> dict[int, str]:
    """Which stored tensor each parameter is, so a reordered optimizer is caught on load."""
    names: dict[int, str] = {}
    for module_name, module in modules.items():
        if isinstance(module, nn.Module):
            for key, param in module.named_parameters():
                names.setdefault(id(param), f"module.{module_name}.{key}")
    return names


def _parameter_layout(optimizer: torch.optim.Optimizer, names: dict[int, str]) -> list[Any]:
    return [
        [{"name": names.get(id(p)), "shape": list(p.shape)} for p in group["params"]]
        for group in optimizer.param_groups
    ]


def _optimizer_entry(
    name: str, optimizer: torch.optim.Optimizer, names: dict[int, str], store: _TensorStore
) -> dict[str, Any]:
    state = optimizer.state_dict()
    prefix = f"optim.{name}"
    groups = [
        _encode({k: v for k, v in group.items() if k != "params"}, f"{prefix}.group.{i}", store)
        for i, group in enumerate(state["param_groups"])
    ]
    per_param = {
        str(index): _encode(entries, f"{prefix}.state.{index}", store)
        for index, entries in state["state"].items()
    }
    return {
        "class": type(optimizer).__qualname__,
        "param_groups": groups,
        "params": _parameter_layout(optimizer, names),
        "state": per_param,
    }


def save_training_state(
    path: str | Path,
    *,
    step: int,
    modules: Mapping[str, nn.Module | TensorStateful],
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler],
    tensors: Mapping[str, torch.Tensor] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Write everything :func:`load_training_state` needs to continue the run at ``step``.

    The global random generators are captured here, so call it between steps, exactly where
    the resumed run will start. The file is written atomically: a crash mid-save leaves the
    previous file at ``path`` intact. ``modules`` may hold anything with a tensor-only
    ``state_dict``/``load_state_dict`` pair, e.g. :class:`training.ema.EMA`. Values that JSON
    cannot hold raise ``TypeError`` before anything is written.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    for kind, mapping in (
        ("module", modules),
        ("optimizer", optimizers),
        ("scheduler", schedulers),
        ("tensor", tensors or {}),
    ):
        _check_names(kind, mapping)

    store = _TensorStore()
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"module {name!r} state entry {key!r} is a {type(value).__qualname__}, "
                    "not a tensor"
                )
            store.put(f"module.{name}.{key}", value)

    names = _parameter_names(modules)
    optimizer_entries = {
        name: _optimizer_entry(name, optimizer, names, store)
        for name, optimizer in optimizers.items()
    }
    scheduler_entries = {
        name: {
            "class": type(scheduler).__qualname__,
            "state": _encode(scheduler.state_dict(), f"sched.{name}", store),
        }
        for name, scheduler in schedulers.items()
    }
    rng = _encode(capture_rng(), "rng", store)
    meta_json = _encode(dict(meta or {}), "meta", store)
    for key, value in (tensors or {}).items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"tensors[{key!r}] is a {type(value).__qualname__}, not a tensor")
        store.put(f"tensors.{key}", value)

    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "step": str(step),
        "modules": _dumps(list(modules)),
        "optimizers": _dumps(optimizer_entries),
        "schedulers": _dumps(scheduler_entries),
        "rng": _dumps(rng),
        "meta": _dumps(meta_json),
        "tensors": _dumps(list(tensors or {})),
        "torch_version": torch.__version__,
    }
    with atomic_path(path) as tmp:
        save_file(store.tensors, str(tmp), metadata=metadata)


# --------------------------------------------------------------------------- loading


def _name_list(names: list[str] | set[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_SHOWN_NAMES])
    more = len(ordered) - _SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _reason(exc: BaseException) -> str:
    """An exception as one short line: errors here must fit the one-line message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_header(path: Path) -> tuple[dict[str, str], list[str]]:
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            keys = list(fh.keys())
    except Exception as exc:
        hint = (
            " (pickle-based .pth/.pt/.ckpt files are never loaded)"
            if path.suffix in {".pth", ".pt", ".ckpt", ".pkl"}
            else ""
        )
        raise CheckpointError(path, f"not a safetensors training state{hint}") from exc
    tag = metadata.get("format")
    if tag == _MODEL_FORMAT:
        raise CheckpointError(path, "a DKTNet model checkpoint, not a training state")
    if tag != FORMAT_NAME:
        raise CheckpointError(path, "safetensors file without dkt training-state metadata")
    try:
        version = int(metadata.get("format_version", "0"))
    except ValueError as exc:
        raise CheckpointError(path, f"corrupt training-state metadata ({_reason(exc)})") from exc
    if version > FORMAT_VERSION:
        raise CheckpointError(
            path,
            f"training-state format {version} is newer than this dkt reads ({FORMAT_VERSION}); "
            "upgrade dkt",
        )
    return metadata, keys


def _parse_sections(path: Path, metadata: dict[str, str]) -> dict[str, Any]:
    """The JSON metadata, with each section's outer type checked."""
    kinds = {
        "modules": list,
        "optimizers": dict,
        "schedulers": dict,
        "rng": dict,
        "meta": dict,
        "tensors": list,
    }
    try:
        sections: dict[str, Any] = {key: json.loads(metadata[key]) for key in kinds}
        sections["step"] = int(metadata["step"])
        for key, kind in kinds.items():
            if not isinstance(sections[key], kind):
                raise ValueError(f"{key} is not a {kind.__name__}")
        for key in ("optimizers", "schedulers"):
            for name, entry in sections[key].items():
                if not isinstance(entry, dict) or "class" not in entry:
                    raise ValueError(f"{key} entry {name!r} is malformed")
    except (KeyError, ValueError) as exc:
        raise CheckpointError(path, f"corrupt training-state metadata ({_reason(exc)})") from exc
    return sections


def _check_section_names(
    path: Path, kind: str, in_file: list[str], in_run: Mapping[str, Any]
) -> None:
    missing = [name for name in in_run if name not in in_file]
    unexpected = [name for name in in_file if name not in in_run]
    if missing:
        raise CheckpointError(path, f"no state for {kind}(s) {_name_list(missing)} in the file")
    if unexpected:
        raise CheckpointError(
            path, f"the file has state for {kind}(s) {_name_list(unexpected)} the run lacks"
        )


def _check_optimizer_layout(
    path: Path,
    name: str,
    optimizer: torch.optim.Optimizer,
    entry: dict[str, Any],
    names: dict[int, str],
) -> None:
    if entry["class"] != type(optimizer).__qualname__:
        raise CheckpointError(
            path,
            f"optimizer {name!r} is {entry['class']} in the file, "
            f"{type(optimizer).__qualname__} in the run",
        )
    saved = entry["params"]
    current = _parameter_layout(optimizer, names)
    if [len(g) for g in saved] != [len(g) for g in current]:
        raise CheckpointError(
            path,
            f"optimizer {name!r} has parameter groups of sizes {[len(g) for g in saved]} in the "
            f"file, {[len(g) for g in current]} in the run",
        )
    index = 0
    for saved_group, current_group in zip(saved, current, strict=True):
        for before, now in zip(saved_group, current_group, strict=True):
            if before["name"] and now["name"] and before["name"] != now["name"]:
                raise CheckpointError(
                    path,
                    f"optimizer {name!r} parameter {index} is {before['name']} in the file, "
                    f"{now['name']} in the run",
                )
            if before["shape"] != now["shape"]:
                raise CheckpointError(
                    path,
                    f"optimizer {name!r} parameter {index} has shape {before['shape']} in the "
                    f"file, {now['shape']} in the run",
                )
            index += 1


def _optimizer_state(
    optimizer: torch.optim.Optimizer,
    entry: dict[str, Any],
    tensor: Callable[[str], torch.Tensor],
) -> dict[str, Any]:
    """The ``state_dict`` to hand to ``optimizer.load_state_dict``.

    ``params`` lists come from the optimizer itself. Per-parameter tensors stay on the CPU:
    ``Optimizer.load_state_dict`` moves each onto its parameter's device and dtype by
    torch's own rules (Adam's ``step`` stays on the CPU unless capturable or fused). A tensor
    hyperparameter (a tensor lr) goes where the freshly built optimizer keeps its own.
    """
    fresh = optimizer.state_dict()["param_groups"]
    groups = []
    for fresh_group, saved in zip(fresh, entry["param_groups"], strict=True):
        group = _decode(saved, tensor)
        for key, value in group.items():
            current = fresh_group.get(key)
            if isinstance(value, torch.Tensor) and isinstance(current, torch.Tensor):
                group[key] = value.to(current.device)
        group["params"] = fresh_group["params"]
        groups.append(group)
    state = {int(index): _decode(entries, tensor) for index, entries in entry["state"].items()}
    return {"state": state, "param_groups": groups}


def _needed_tensors(
    path: Path, sections: dict[str, Any], modules: Mapping[str, Any]
) -> dict[str, torch.Tensor | None]:
    """Every tensor the file must hold, with what the run has for it where it has one."""
    needed: dict[str, torch.Tensor | None] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            needed[f"module.{name}.{key}"] = value
    try:
        for section in ("optimizers", "schedulers", "rng", "meta"):
            needed.update(dict.fromkeys(_tensor_refs(sections[section])))
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(path, f"corrupt training-state metadata ({_reason(exc)})") from exc
    needed.update(dict.fromkeys(f"tensors.{key}" for key in sections["tensors"]))
    return needed


def _read_tensors(
    path: Path, keys: list[str], needed: dict[str, torch.Tensor | None]
) -> dict[str, torch.Tensor]:
    """All of the file's tensors on the CPU, once their names, shapes and dtypes fit the run."""
    missing = [key for key in needed if key not in keys]
    unexpected = [key for key in keys if key not in needed]
    if missing:
        raise CheckpointError(path, f"missing tensor(s): {_name_list(missing)}")
    if unexpected:
        raise CheckpointError(path, f"unexpected tensor(s): {_name_list(unexpected)}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            stored = {key: fh.get_tensor(key) for key in keys}
    except Exception as exc:
        raise CheckpointError(path, f"unreadable tensor data ({_reason(exc)})") from exc
    for key, want in needed.items():
        if want is None:
            continue
        have = stored[key]
        if have.shape != want.shape:
            raise CheckpointError(
                path,
                f"tensor {key} has shape {list(have.shape)}, the run needs {list(want.shape)}",
            )
        if have.dtype != want.dtype:
            raise CheckpointError(
                path, f"tensor {key} has dtype {have.dtype}, the run needs {want.dtype}"
            )
    return stored


def read_state_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta`` saved with a state, without building anything or reading the weights.

    A resumed run needs its saved config before it can build the objects to load into.
    """
    path = Path(path)
    metadata, keys = _read_header(path)
    meta = _parse_sections(path, metadata)["meta"]
    try:
        refs = _tensor_refs(meta)
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(path, f"corrupt training-state metadata ({_reason(exc)})") from exc
    absent = sorted(refs - set(keys))
    if absent:
        raise CheckpointError(path, f"missing tensor(s): {_name_list(absent)}")
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        return _decode(meta, fh.get_tensor)


def load_training_state(
    path: str | Path,
    *,
    modules: Mapping[str, nn.Module | TensorStateful],
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler],
) -> LoadedState:
    """Restore ``modules``, ``optimizers`` and ``schedulers`` in place from ``path``.

    Pass freshly built objects, set up as in the saved run (same modules on the devices
    wanted now, optimizers over the same parameters in the same order); the state lands on
    the device of what it belongs to, so a GPU run can resume on a CPU and vice versa.
    Everything that can be checked (names, tensor names, shapes and dtypes, optimizer and
    scheduler classes, parameter layout) is checked before anything is changed; a mismatch
    raises a one-line :class:`CheckpointError` naming the file and the entry. Extra tensors
    (``LoadedState.tensors``) come back on the CPU.
    """
    path = Path(path)
    metadata, keys = _read_header(path)
    sections = _parse_sections(path, metadata)
    optimizer_entries: dict[str, Any] = sections["optimizers"]
    scheduler_entries: dict[str, Any] = sections["schedulers"]
    _check_section_names(path, "module", sections["modules"], modules)
    _check_section_names(path, "optimizer", list(optimizer_entries), optimizers)
    _check_section_names(path, "scheduler", list(scheduler_entries), schedulers)
    stored = _read_tensors(path, keys, _needed_tensors(path, sections, modules))

    names = _parameter_names(modules)
    for name, optimizer in optimizers.items():
        try:
            _check_optimizer_layout(path, name, optimizer, optimizer_entries[name], names)
        except (KeyError, TypeError) as exc:
            raise CheckpointError(
                path, f"corrupt state for optimizer {name!r} ({_reason(exc)})"
            ) from exc
    for name, scheduler in schedulers.items():
        saved_class = scheduler_entries[name]["class"]
        if saved_class != type(scheduler).__qualname__:
            raise CheckpointError(
                path,
                f"scheduler {name!r} is {saved_class} in the file, "
                f"{type(scheduler).__qualname__} in the run",
            )
    rng = _decode(sections["rng"], stored.__getitem__)
    try:
        _check_rng(rng)
    except ValueError as exc:
        raise CheckpointError(path, f"corrupt random generator state ({_reason(exc)})") from exc

    # Everything checked: from here on the objects change.
    for name, module in modules.items():
        prefix = f"module.{name}."
        module.load_state_dict({key: stored[prefix + key] for key in module.state_dict()})
    for name, optimizer in optimizers.items():
        try:
            optimizer.load_state_dict(
                _optimizer_state(optimizer, optimizer_entries[name], stored.__getitem__)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                path, f"optimizer {name!r} state does not fit ({_reason(exc)})"
            ) from exc
    for name, scheduler in schedulers.items():
        try:
            scheduler.load_state_dict(_decode(scheduler_entries[name]["state"], stored.__getitem__))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(
                path, f"scheduler {name!r} state does not fit ({_reason(exc)})"
            ) from exc

    return LoadedState(
        step=sections["step"],
        meta=_decode(sections["meta"], stored.__getitem__),
        tensors={key: stored[f"tensors.{key}"] for key in sections["tensors"]},
        rng=rng,
    )
