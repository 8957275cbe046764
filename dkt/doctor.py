"""What this environment can run, as one plain report (``dkt doctor``).

A failure deep inside ``dkt export`` or ``dkt evaluate`` is often only a missing optional
package, a CPU-only torch or weights in the wrong folder. This module gathers those facts in
a JSON-serialisable dict, so a user can paste it into an issue and the CLI can print it.
Every probe is guarded: the report is most needed exactly when an import is broken, so a
failing import or driver is recorded as text, never raised.

The weight lookups call the very functions the commands use (``find_relu3_weights``,
``find_vgg19_weights``, ``find_inception_weights``), so the report cannot drift from what
``dkt train`` and ``dkt evaluate`` would really load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dkt._version import __version__

__all__ = [
    "NOT_FOUND",
    "NOT_INSTALLED",
    "REPORTED_PACKAGES",
    "bundled_model_report",
    "cuda_report",
    "doctor_report",
    "package_version",
    "weights_report",
]

NOT_INSTALLED = "not installed"
NOT_FOUND = "not found"
#: Import names whose versions are reported: torch and numpy are hard dependencies, the rest
#: belong to the ``onnx``/``trt`` extras (``dkt export``, the onnxruntime/tensorrt backends).
REPORTED_PACKAGES = ("torch", "numpy", "onnx", "onnxruntime", "onnxscript", "tensorrt")
#: Beside a development checkout, the project keeps real pretrained files here. The commands
#: never search it (a stray folder must not change what a run loads); the report only hints.
SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights"


def _error_text(exc: BaseException) -> str:
    """One line: ``str(exc)`` may span lines (a native library's traceback text)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    """A :class:`DktError` already reads as one line for a user; anything else gets its type."""
    from dkt.errors import DktError

    return str(exc) if isinstance(exc, DktError) else _error_text(exc)


def _import(name: str) -> Any:
    """The module, or ``None`` when it is absent; any other failure is raised to the caller.

    ``ModuleNotFoundError`` for the package itself means "not installed"; one for a module it
    needs (or an ``OSError`` for a missing native library) means a broken install, which the
    report must not hide behind the same words.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def package_version(name: str) -> str:
    """``__version__`` of ``name``, ``"not installed"``, or why the import failed."""
    try:
        module = _import(name)
    except Exception as exc:
        return f"import failed ({_error_text(exc)})"
    if module is None:
        return NOT_INSTALLED
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
    return str(version)


def _onnxruntime_providers() -> list[str] | str:
    """Execution providers ORT offers here: the CUDA/TensorRT ones only with onnxruntime-gpu."""
    try:
        ort = _import("onnxruntime")
        return NOT_INSTALLED if ort is None else list(ort.get_available_providers())
    except Exception as exc:
        return f"unavailable ({_error_text(exc)})"


def cuda_report() -> dict[str, Any]:
    """The CUDA devices torch sees; a CPU-only torch build reports ``cuda_version`` ``None``."""
    try:
        torch = _import("torch")
        if torch is None:
            return {"available": False, "count": 0, "devices": [], "error": "torch not installed"}
        report: dict[str, Any] = {"available": torch.cuda.is_available(), "count": 0}
        report["cuda_version"] = torch.version.cuda
        devices = []
        if report["available"]:
            for index in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(index)
                devices.append(
                    {"index": index, "name": props.name, "memory_bytes": int(props.total_memory)}
                )
        report["count"] = len(devices)
        report["devices"] = devices
        return report
    except Exception as exc:
        return {"available": False, "count": 0, "devices": [], "error": _error_text(exc)}


def _cpu_report() -> dict[str, Any]:
    """Intra-op threads torch will use: too many on a shared machine make everything crawl."""
    report: dict[str, Any] = {"cpu_count": os.cpu_count()}
    try:
        torch = _import("torch")
        report["torch_threads"] = torch.get_num_threads() if torch else NOT_INSTALLED
    except Exception as exc:
        report["torch_threads"] = f"unavailable ({_error_text(exc)})"
    return report


# --------------------------------------------------------------------------- weights


def _env_place(env: Mapping[str, str], var: str) -> str:
    value = env.get(var)
    return f"${var}={value}" if value else f"${var} (unset)"


def _entry(
    what: str, path: Path | None, source: str | None, looked_in: list[str], reason: str = ""
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "what": what,
        "path": str(path) if path is not None else NOT_FOUND,
        "source": source,
        "looked_in": looked_in,
    }
    if reason:
        entry["reason"] = reason
    return entry


def _hint(entry: dict[str, Any], shared: Path, names: tuple[str, ...], var: str) -> None:
    """Name the checkout's shared folder when it holds what the lookup did not find.

    ``var`` names a folder when several files are needed together, else the one file.
    """
    if entry["path"] != NOT_FOUND:
        return
    if all((shared / name).is_file() for name in names):
        target = shared if len(names) > 1 else shared / names[0]
        entry["hint"] = f"found in {shared} (not searched): set ${var}={target}"


def _set_entries(
    env: Mapping[str, str], shared: Path, files: dict[str, tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """Entries for files looked up together (``key -> (file name, what it is)``)."""
    from dkt.dktnet.pretrained import ENV_DIR, find_pretrained
    from dkt.downloads import cache_dir

    names = tuple(name for name, _ in files.values())
    # A set variable is the only place searched (no fall-through to the cache), as in the lookup.
    looked = [_env_place(env, ENV_DIR)] + ([] if env.get(ENV_DIR) else [str(cache_dir(env))])
    try:
        found = find_pretrained(names, env=env)
    except Exception as exc:
        entries = {
            key: _entry(what, None, None, looked, _reason(exc)) for key, (_, what) in files.items()
        }
        for entry in entries.values():
            _hint(entry, shared, names, ENV_DIR)
        return entries
    return {
        key: _entry(what, path, found.source, looked)
        for (key, (_, what)), path in zip(files.items(), found.paths, strict=True)
    }


def _relu3_entries(env: Mapping[str, str], shared: Path) -> dict[str, dict[str, Any]]:
    from dkt.dktnet.pretrained import INVERTER_FILE, VGG_RELU3_FILE

    uses = "dkt train vgg19-relu3, dkt evaluate adain"
    return _set_entries(env, shared, {
        "vgg_relu3_1": (VGG_RELU3_FILE, f"VGG-19 truncated at relu3_1, {VGG_RELU3_FILE} ({uses})"),
        "inverter_relu3_1": (INVERTER_FILE, f"relu3_1 feature inverter, {INVERTER_FILE} ({uses})"),
    })  # fmt: skip


def _cd16x_entries(env: Mapping[str, str], shared: Path) -> dict[str, dict[str, Any]]:
    from dkt.dktnet.pretrained import CD16X_DECODER_RELU4_FILE, CD16X_ENCODER_RELU4_FILE

    uses = "dkt train cd16x-relu4, dkt evaluate adain-relu4"
    return _set_entries(env, shared, {
        "cd16x_encoder_relu4_1": (
            CD16X_ENCODER_RELU4_FILE,
            f"distilled VGG-19 approximation to relu4_1, {CD16X_ENCODER_RELU4_FILE} ({uses})",
        ),
        "cd16x_decoder_relu4_1": (
            CD16X_DECODER_RELU4_FILE,
            f"its relu4_1 decoder, {CD16X_DECODER_RELU4_FILE} ({uses})",
        ),
    })  # fmt: skip


def _vgg19_entry(env: Mapping[str, str], shared: Path) -> dict[str, Any]:
    from dkt.dktnet.pretrained import VGG_RELU3_FILE
    from dkt.downloads import cache_dir
    from training.lossnet import CACHE_NAMES, ENV_VAR, find_vgg19_weights

    folder = cache_dir(env)
    looked = [_env_place(env, ENV_VAR)]
    if not env.get(ENV_VAR):
        looked += [str(folder / name) for name in CACHE_NAMES]
    what = "full VGG-19 to relu4_1 (dkt train's loss network when --loss-network is not given)"
    try:
        path, source = find_vgg19_weights(env=env)
    except Exception as exc:
        entry = _entry(what, None, None, looked, _reason(exc))
        _hint(entry, shared, CACHE_NAMES[:1], ENV_VAR)
        return entry
    entry = _entry(what, path, source, looked)
    if path.name == VGG_RELU3_FILE:
        # The cache's last resort is WCT's truncated file: a loss on three taps, not four.
        entry["note"] = "truncated after conv3_1: relu1_1..relu3_1 only, no relu4_1"
    return entry


def _inception_entry(env: Mapping[str, str]) -> dict[str, Any]:
    from dkt.downloads import cache_dir
    from dkt.evaluation.inception import ENV_VAR, INCEPTION_FILENAME, find_inception_weights

    looked = [_env_place(env, ENV_VAR)]
    if not env.get(ENV_VAR):
        looked.append(str(cache_dir(env) / INCEPTION_FILENAME))
    what = "FID Inception-v3 (dkt evaluate's FID/KID)"
    try:
        lookup = find_inception_weights(env=env)
    except Exception as exc:
        return _entry(what, None, None, looked, _reason(exc))
    return _entry(what, lookup.path, lookup.source if lookup.path else None, looked, lookup.reason)


def _guarded(
    keys: tuple[str, ...], probe: Callable[[], dict[str, dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """The probe's entries, or one per key saying why the lookup itself could not run."""
    try:
        return probe()
    except Exception as exc:  # e.g. a broken torch: the modules holding the lookups fail to import
        reason = f"lookup unavailable ({_error_text(exc)})"
        return {
            key: {"what": key, "path": NOT_FOUND, "looked_in": [], "reason": reason} for key in keys
        }


def weights_report(
    env: Mapping[str, str] | None = None, shared: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Per pretrained file: its path or ``"not found"``, where it came from, where it looked.

    ``shared`` is the folder a hint may name (default :data:`SHARED_WEIGHTS`); it is never
    searched, so what is reported found is what the commands would load.
    """
    env = os.environ if env is None else env
    shared = SHARED_WEIGHTS if shared is None else shared
    report = _guarded(("vgg_relu3_1", "inverter_relu3_1"), lambda: _relu3_entries(env, shared))
    report.update(
        _guarded(
            ("cd16x_encoder_relu4_1", "cd16x_decoder_relu4_1"), lambda: _cd16x_entries(env, shared)
        )
    )
    report.update(_guarded(("vgg19",), lambda: {"vgg19": _vgg19_entry(env, shared)}))
    report.update(_guarded(("inception",), lambda: {"inception": _inception_entry(env)}))
    return report


# --------------------------------------------------------------------------- bundled model


def bundled_model_report(path: Path | None = None) -> dict[str, Any]:
    """Path, size, sha256 and parameters of the bundled model; ``error`` when it is unusable.

    The header is read too, not only hashed: a Git LFS pointer or a cut-off copy hashes fine
    but cannot be loaded. Size and sha256 are still reported for such a file, to compare with
    the release.
    """
    if path is None:
        from dkt.dktnet import BUNDLED_MODEL

        path = BUNDLED_MODEL
    report: dict[str, Any] = {"path": str(path)}
    try:
        from dkt.dktnet.checkpoint import file_sha256, read_checkpoint_info

        info = read_checkpoint_info(path)
    except Exception as exc:
        report["error"] = _reason(exc)
        try:
            report["size"] = path.stat().st_size
            report["sha256"] = file_sha256(path)
        except Exception:  # missing or unreadable: the error above already says so
            pass
        return report
    report.update(size=info.file_size, sha256=info.sha256, parameters=info.parameter_count)
    return report


def doctor_report(
    env: Mapping[str, str] | None = None,
    *,
    bundled_model: Path | None = None,
    shared: Path | None = None,
) -> dict[str, Any]:
    """The whole report, JSON-serialisable; it never raises for a missing piece.

    ``env`` stands in for ``os.environ`` (tests, or a report for another shell's settings);
    ``bundled_model`` for :data:`dkt.dktnet.BUNDLED_MODEL`, ``shared`` as in
    :func:`weights_report`.
    """
    env = os.environ if env is None else env
    versions = {"python": platform.python_version(), "dkt": __version__}
    versions.update({name: package_version(name) for name in REPORTED_PACKAGES})
    return {
        "versions": versions,
        "python_executable": sys.executable,
        "onnxruntime_providers": _onnxruntime_providers(),
        "cuda": cuda_report(),
        "cpu": _cpu_report(),
        "weights": weights_report(env, shared),
        "bundled_model": bundled_model_report(bundled_model),
    }
