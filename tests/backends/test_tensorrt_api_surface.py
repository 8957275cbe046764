"""The TensorRT Python API that dkt calls, checked against the real ``tensorrt`` package.

``dkt/export/tensorrt.py`` and ``backends/tensorrt_backend.py`` are otherwise only ever run
against ``tests/backends/fake_tensorrt.py``, which can share our own misreadings of the API.
Here the list of what they use is read from their source (an AST walk that follows the values
that come from ``tensorrt``: the module, what its classes build, what their methods return,
through local variables, function parameters and ``self`` attributes), and every use is looked
up in a *surface*: the classes, enum members, methods (with their pybind11 signatures),
properties and attributes of one TensorRT release.

Surfaces are recorded from the real package in ``tests/backends/tensorrt_surface_<version>.json``
(each with a header saying how it was read), so most of this runs without TensorRT. With
TensorRT importable (the interpreter running pytest, or the one in ``$DKT_TENSORRT_PYTHON``),
the last two tests read a fresh surface from it, check the code against it and compare it
with the recording of that version; without, they skip, saying why. Those two are marked
slow (``-m slow``: they may compile stand-in libraries); the rest take about two seconds and
run in the default suite.

TensorRT's pip wheels split into ``tensorrt-cuXX-bindings`` (the Python module, on PyPI) and
``tensorrt-cuXX-libs`` (``libnvinfer``, fetched from NVIDIA's own index by a stub sdist). With
the bindings alone, the module's native dependencies are missing; ``--stub-libs DIR`` then
compiles empty stand-ins for the few C entry points it links against (only so that it loads:
nothing can be built or run, and no GPU is needed), which is how the recordings were made::

    python -m venv /tmp/trt && /tmp/trt/bin/pip install --no-deps tensorrt-cu12-bindings==X
    /tmp/trt/bin/python tests/backends/test_tensorrt_api_surface.py --record --stub-libs /tmp/s

The part of this file above the ``__main__`` guard uses the standard library only, so it also
runs in an interpreter that has nothing but TensorRT.
"""

from __future__ import annotations

import ast
import ctypes
import importlib
import inspect
import json
import os
import platform
import re
import subprocess
import sys
import sysconfig
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: The modules whose use of TensorRT is checked.
CODE = ("dkt/export/tensorrt.py", "backends/tensorrt_backend.py")
SURFACE_PREFIX = "tensorrt_surface_"
EXIT_NO_TENSORRT = 3  # --dump/--record: tensorrt is not importable here

# ------------------------------------------------------------------ reading a real surface

#: Dunder members worth recording: the protocols code relies on without naming them.
_DUNDERS = (
    "__init__",
    "__call__",
    "__int__",
    "__index__",
    "__iter__",
    "__getitem__",
    "__len__",
    "__str__",
    "__repr__",
    "__eq__",
    "__hash__",
    "__enter__",
    "__exit__",
)
_TRT_PREFIX = re.compile(r"\btensorrt(?:_bindings|_lean|_dispatch)?\.(?:tensorrt\.)?")
_POS_ONLY_NAME = re.compile(r"arg\d+")  # pybind11's name for an argument without py::arg


def _clean_type(text: str | None) -> str | None:
    if text is None:
        return None
    return _TRT_PREFIX.sub("", text.strip())


def _top_level(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets, ``<...>`` reprs and quotes."""
    parts, depth, quote, current = [], 0, "", []
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{<":
            depth += 1
        elif char in ")]}>" and text[i - 1 : i + 1] != "->":
            depth -= 1
        elif (
            char == sep
            and depth == 0
            and (sep != "=" or (text[i - 1 : i] not in "=!<>" and text[i + 1 : i + 2] != "="))
        ):
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _parse_params(text: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    kw_only = False
    for part in _top_level(text, ","):
        if part == "/":
            for param in params:
                param["kind"] = "pos_only"
            continue
        if part == "*":
            kw_only = True
            continue
        head, *default = _top_level(part, "=")
        name, _, annotation = head.partition(":")
        name = name.strip()
        if name.startswith("**"):
            kind, name = "var_kw", name[2:]
        elif name.startswith("*"):
            kind, name, kw_only = "var_pos", name[1:], True
        elif kw_only:
            kind = "kw_only"
        else:
            kind = "pos_only" if _POS_ONLY_NAME.fullmatch(name) else "pos"
        params.append(
            {
                "name": name,
                "kind": kind,
                "default": bool(default),
                "type": _clean_type(annotation) or None,
            }
        )
    return params


def parse_signature(text: str) -> dict[str, Any]:
    """``"(a: int, b: str = ...) -> R"`` (as recorded) -> ``{"params": [...], "returns": R}``."""
    depth, end = 0, 0
    for end, char in enumerate(text):  # noqa: B007 - the closing parenthesis is what is wanted
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            break
    returns = text[end + 1 :].strip()
    return {
        "params": _parse_params(text[1:end]),
        "returns": returns[3:].strip() if returns.startswith("->") else None,
    }


_PARSED: dict[str, dict[str, Any]] = {}


def overloads_of(entry: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A recorded member's overloads, parsed; None where its signature could not be read."""
    if entry.get("overloads") is None:
        return None
    for text in entry["overloads"]:
        if text not in _PARSED:
            _PARSED[text] = parse_signature(text)
    return [_PARSED[text] for text in entry["overloads"]]


def _pybind_overloads(name: str, doc: str | None) -> list[str] | None:
    """The overloads in a pybind11 docstring (``name(self: T, a: int = 0) -> R`` lines), as
    ``"(a: int = 0) -> R"``: the text pybind11 wrote, less ``self`` and module prefixes."""
    lines = [line.strip() for line in (doc or "").splitlines()]
    if not lines:
        return None
    line_re = re.compile(rf"(?:\d+\. )?{re.escape(name)}\((.*)\)(?: -> (.+))?")
    candidates = [lines[0]]
    if lines[0] == f"{name}(*args, **kwargs)" and "Overloaded function." in lines[1:2]:
        candidates = [line for line in lines[2:] if re.match(rf"\d+\. {re.escape(name)}\(", line)]
    overloads = []
    for line in candidates:
        match = line_re.fullmatch(line)
        if match:
            params = _top_level(_clean_type(match.group(1)) or "", ",")
            if params and params[0].split(":")[0].strip() == "self":
                params = params[1:]
            returns = f" -> {_clean_type(match.group(2))}" if match.group(2) else ""
            overloads.append(f"({', '.join(params)}){returns}")
    return overloads or None


def _python_overloads(func: Any, bound: bool) -> list[str] | None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    if bound and params and params[0].kind <= inspect.Parameter.POSITIONAL_OR_KEYWORD:
        params = params[1:]
    text = str(signature.replace(parameters=params, return_annotation=signature.empty))
    return [re.sub(r"=[^,)]+", "=...", text)]


def _overloads(name: str, func: Any, bound: bool) -> list[str] | None:
    inner = getattr(func, "__func__", func)
    if inspect.isfunction(inner):
        return _python_overloads(inner, bound)
    return _pybind_overloads(name, getattr(func, "__doc__", None))


def _type_name(kind: type) -> str:
    module = getattr(kind, "__module__", "") or ""
    if module == "builtins" or _TRT_PREFIX.match(module + "."):
        return kind.__qualname__
    return f"{module}.{kind.__qualname__}"


def _is_enum(kind: type) -> bool:
    return isinstance(getattr(kind, "__members__", None), dict)


def _has_buffer(kind: type) -> bool | None:
    """Whether instances of ``kind`` export the buffer protocol (``memoryview(x)`` works)."""
    if sys.version_info >= (3, 12):
        return hasattr(kind, "__buffer__")
    if sys.implementation.name != "cpython" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None

    def slot(t: type) -> bool:  # PyTypeObject.tp_as_buffer -> bf_getbuffer
        procs = ctypes.c_void_p.from_address(id(t) + 20 * 8).value
        return bool(procs) and bool(ctypes.c_void_p.from_address(procs).value)

    if not slot(bytes) or slot(int):  # the layout is not the one assumed
        return None
    return slot(kind)


def _value_entry(value: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": "value", "type": _type_name(type(value))}
    if _is_enum(type(value)):
        entry["value"] = int(value)
    elif isinstance(value, (str, int, float, bool)):
        entry["value"] = value
    return entry


def _member_entry(name: str, raw: Any, owner: type, classes: list[type]) -> dict[str, Any]:
    if isinstance(raw, property):
        doc = getattr(raw.fget, "__doc__", None) or ""
        match = re.match(r"\([^)]*\) -> (.+)", doc.strip().splitlines()[0] if doc else "")
        return {
            "kind": "property",
            "type": _clean_type(match.group(1)) if match else None,
            "writable": raw.fset is not None,
        }
    if isinstance(raw, type):
        classes.append(raw)
        return {"kind": "class", "ref": _type_name(raw)}
    if isinstance(raw, staticmethod):
        return {"kind": "staticmethod", "overloads": _overloads(name, raw.__func__, False)}
    if isinstance(raw, classmethod):
        return {"kind": "classmethod", "overloads": _overloads(name, raw.__func__, True)}
    if _is_enum(owner) and isinstance(raw, owner):
        return {"kind": "enum_member", "value": int(raw)}
    if callable(raw):
        return {"kind": "method", "overloads": _overloads(name, raw, True)}
    return _value_entry(raw)


def _class_entry(kind: type, classes: list[type]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    defined = [k for k in kind.__mro__ if k is not object and k.__name__ != "pybind11_object"]
    for name in sorted(dir(kind)):
        if name.startswith("_") and name not in _DUNDERS:
            continue
        if name.startswith("__") and not any(name in vars(k) for k in defined):
            continue  # object's own __str__, __eq__, ...: every class has them
        try:
            raw = inspect.getattr_static(kind, name)
        except AttributeError:
            continue
        if name == "__hash__" and raw is None:
            continue
        members[name] = _member_entry(name, raw, kind, classes)
    return {
        "enum": _is_enum(kind),
        "buffer": _has_buffer(kind),
        "bases": [_type_name(b) for b in kind.__bases__],
        "members": members,
    }


def _resolve_cxx_names(surface: dict[str, Any]) -> None:
    """pybind11 writes a type not yet registered when a method was bound by its C++ name
    (``nvonnxparser::IParserError``); map such names to the Python class they became."""
    classes = surface["classes"]

    def fix(text: str | None) -> str | None:
        def python_name(match: re.Match) -> str:
            base = match.group(0).rsplit("::", 1)[1]
            for candidate in (base, base[1:] if base.startswith("I") else base):
                if candidate in classes:
                    return candidate
            return match.group(0)

        return re.sub(r"\w+(?:::\w+)+", python_name, text) if text else text

    for entry in [{"members": surface["module"]}, *classes.values()]:
        for member in entry["members"].values():
            if member.get("overloads"):
                member["overloads"] = [fix(o) for o in member["overloads"]]
            if member["kind"] == "property":
                member["type"] = fix(member["type"])


def read_surface(trt: Any) -> dict[str, Any]:
    """The public API of an imported ``tensorrt`` module, as plain JSON-able data."""
    module: dict[str, Any] = {}
    queue: list[type] = []
    for name in sorted(dir(trt)):
        if name.startswith("_") and name != "__version__":
            continue
        value = getattr(trt, name)
        if inspect.ismodule(value):
            module[name] = {"kind": "module"}
        elif isinstance(value, type):
            queue.append(value)
            module[name] = {"kind": "class", "ref": _type_name(value)}
        elif callable(value):
            module[name] = {"kind": "function", "overloads": _overloads(name, value, False)}
        else:
            module[name] = _value_entry(value)
    classes: dict[str, Any] = {}
    while queue:
        kind = queue.pop()
        if _type_name(kind) not in classes and _TRT_PREFIX.match(kind.__module__ + "."):
            classes[_type_name(kind)] = _class_entry(kind, queue)
    surface = {"module": module, "classes": dict(sorted(classes.items()))}
    _resolve_cxx_names(surface)
    return surface


# ----------------------------------------------------- importing the bindings without libnvinfer


def _import_tensorrt() -> tuple[Any, str]:
    """``tensorrt``, or ``tensorrt_bindings`` where only the bindings wheel is installed
    (``tensorrt`` itself is ``from tensorrt_bindings import *``)."""
    for name in ("tensorrt", "tensorrt_bindings"):
        try:
            return importlib.import_module(name), name
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    raise ModuleNotFoundError("neither tensorrt nor tensorrt_bindings is installed")


def _binding_libraries() -> list[Path]:
    from importlib.util import find_spec

    found = []
    for package in ("tensorrt_bindings", "tensorrt"):
        spec = find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            found += sorted(Path(folder).glob("tensorrt*.so"))
    return found


def _run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def build_stub_libraries(folder: Path) -> list[str]:
    """Compile empty stand-ins for the native libraries the bindings need and cannot find,
    exporting every C symbol they import that this process cannot resolve, and load them
    (RTLD_GLOBAL), so that the bindings' own ``dlopen`` finds them by soname."""
    folder.mkdir(parents=True, exist_ok=True)
    process = ctypes.CDLL(None)
    made = []
    for binding in _binding_libraries():
        missing = re.findall(r"^\s*(\S+) => not found", _run("ldd", str(binding)), re.M)
        symbols = sorted(
            {
                line.split()[-1]
                for line in _run("nm", "-D", "--undefined-only", str(binding)).splitlines()
                if line.split()[:1] == ["U"] and "@" not in line
            }
        )
        symbols = [s for s in symbols if not hasattr(process, s)]
        source = folder / "stub.c"
        source.write_text("".join(f"void *{s}(void) {{ return 0; }}\n" for s in symbols))
        for soname in missing:
            target = folder / soname
            _run("cc", "-shared", "-fPIC", "-o", str(target), f"-Wl,-soname,{soname}", str(source))
            ctypes.CDLL(str(target), mode=ctypes.RTLD_GLOBAL)
            made.append(soname)
    return made


def import_for_surface(stub_dir: Path | None) -> tuple[Any, str, list[str]]:
    try:
        return (*_import_tensorrt(), [])
    except ImportError as exc:
        if stub_dir is None or "cannot open shared object file" not in str(exc):
            raise
    for name in [m for m in sys.modules if m.split(".")[0] in ("tensorrt", "tensorrt_bindings")]:
        del sys.modules[name]
    stubs = build_stub_libraries(stub_dir)
    return (*_import_tensorrt(), stubs)


def _distributions() -> list[str]:
    from importlib import metadata

    names = set()
    for top in ("tensorrt", "tensorrt_bindings", "tensorrt_libs"):
        names.update(metadata.packages_distributions().get(top, []))
    return sorted(f"{n}=={metadata.version(n)}" for n in names)


def surface_with_header(stub_dir: Path | None) -> dict[str, Any]:
    trt, module_name, stubs = import_for_surface(stub_dir)
    native = (
        f"empty stand-ins for {', '.join(stubs)} (compiled by --stub-libs; the bindings "
        "wheel was installed without tensorrt-cuXX-libs, and no GPU or driver was used)"
        if stubs
        else "as installed"
    )
    header = {
        "tensorrt_version": str(trt.__version__),
        "read_from": f"import {module_name}"
        + (
            " (the tensorrt package itself is `from tensorrt_bindings import *`)"
            if module_name == "tensorrt_bindings"
            else ""
        ),
        "distributions": _distributions(),
        "native_libraries": native,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": sysconfig.get_platform(),
        "how": "dir() of the module and of every class reachable from it; methods' signatures "
        "parsed from their pybind11 docstrings (every overload), properties' types from their "
        "getters, enum members with their values, the buffer protocol from the type's slots",
        "regenerate": "python tests/backends/test_tensorrt_api_surface.py --record "
        "[--stub-libs DIR] (with that TensorRT importable)",
    }
    return {"header": header, **read_surface(trt)}


def dumps_surface(surface: dict[str, Any]) -> str:
    """JSON with one module name or class member a line (reviewable diffs between releases)."""

    def compact(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["{", f' "header": {json.dumps(surface["header"], indent=1)},'.replace("\n", "\n ")]
    lines.append(' "module": {')
    lines += [f"  {compact(k)}: {compact(v)}," for k, v in surface["module"].items()]
    lines[-1] = lines[-1].rstrip(",")
    lines += [" },", ' "classes": {']
    for name, entry in surface["classes"].items():
        head = {k: v for k, v in entry.items() if k != "members"}
        lines.append(f'  {compact(name)}: {compact(head)[:-1]}, "members": {{')
        lines += [f"   {compact(k)}: {compact(v)}," for k, v in entry["members"].items()]
        lines[-1] = lines[-1].rstrip(",") if entry["members"] else lines[-1]
        lines.append("  }},")
    lines[-1] = "  }}"
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Read the installed TensorRT's API surface.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--dump", action="store_true", help="print it as JSON")
    action.add_argument("--record", action="store_true", help=f"write {SURFACE_PREFIX}*.json")
    parser.add_argument("--stub-libs", type=Path, help="where to build stand-in native libs")
    args = parser.parse_args(argv)
    try:
        surface = surface_with_header(args.stub_libs)
    except (ImportError, OSError, subprocess.CalledProcessError) as exc:
        print(f"tensorrt is not importable: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_NO_TENSORRT
    text = dumps_surface(surface)
    if args.dump:
        sys.stdout.write(text)
    else:
        path = HERE / f"{SURFACE_PREFIX}{surface['header']['tensorrt_version']}.json"
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

import pytest  # noqa: E402 - the part above also runs where only TensorRT is installed

# ------------------------------------------------------------ what the code uses, from its AST


@dataclass(frozen=True, order=True)
class Use:
    """One use of TensorRT: ``owner.name`` used as ``how``, at ``where``."""

    owner: str  # "tensorrt" (the module) or a class's qualified name
    name: str  # a member, or "<buffer>", "<iter>", "<int>" for a protocol
    how: str  # "call", "value", "set", "has" (hasattr), "protocol"
    optional: bool  # guarded by hasattr(...) or read with getattr(..., default)
    where: str
    positional: int = 0
    starred: bool = False  # *args or **kwargs in the call: the count is not known
    keywords: tuple[str, ...] = ()

    def __str__(self) -> str:
        what = f"{self.owner}.{self.name}"
        if self.how == "call":
            args = [f"<{self.positional}{'+' if self.starred else ''} positional>"]
            what += f"({', '.join(args + [f'{k}=' for k in self.keywords])})"
        return f"{self.where}: {what}" + (" [optional]" if self.optional else "")


#: Names that hold TensorRT objects in the code; one the walk could not type is an error,
#: so a use cannot escape the check by going through a path the walk does not follow.
TRT_LOOKING = {
    "trt",
    "tensorrt",
    "builder",
    "network",
    "config",
    "parser",
    "trt_profile",
    "runtime",
    "engine",
    "context",
    "logger",
    "serialized",
}
_ITERATE = {"tuple", "list", "sorted", "set", "iter", "enumerate", "zip", "frozenset"}


def _element_type(kind: str | None) -> str | None:
    """``X`` for ``list[X]``, ``List[X]`` (TensorRT 10.0 writes typing's), ``tuple[X, ...]``."""
    match = re.fullmatch(
        r"(?:list|List|Sequence|tuple|Tuple)\[([^\[\],]+)(?:, \.\.\.)?\]", kind or ""
    )
    return match.group(1) if match else None


def _const_strings(node: ast.AST) -> list[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return [e.value for e in node.elts]
    return None


def lookup(surface: dict[str, Any], owner: str, name: str) -> dict[str, Any] | None:
    """The recorded entry for ``owner.name`` (owner "tensorrt": the module), or None."""
    if owner == "tensorrt":
        return surface["module"].get(name)
    return surface["classes"].get(owner, {}).get("members", {}).get(name)


class CodeWalk:
    """Follows the values that come from ``tensorrt`` through the given modules.

    Types are strings: ``"module"`` (tensorrt itself), ``"class:X"`` (the class object X),
    ``"X"`` (an instance of X, or a type a signature names, like ``"list[Dims]"``),
    ``"py:C"`` / ``"pycls:C"`` (an instance / the class of a class defined in the code).
    Flow-insensitive per function, repeated to a fixed point across functions.
    """

    def __init__(self, surface: dict[str, Any], files: tuple[str, ...] = CODE) -> None:
        self.surface = surface
        self.funcs: dict[str, tuple[ast.FunctionDef, str | None, str]] = {}
        self.classes: set[str] = set()
        for file in files:
            tree = ast.parse((ROOT / file).read_text(), file)
            self.funcs[f"<module {file}>"] = (tree, None, file)  # its top-level statements
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    self.funcs[node.name] = (node, None, file)
                elif isinstance(node, ast.ClassDef):
                    self.classes.add(node.name)
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef):
                            self.funcs[f"{node.name}.{item.name}"] = (item, node.name, file)
        self.params: dict[str, dict[str, str]] = defaultdict(dict)
        self.returns: dict[str, str] = {}
        self.attrs: dict[str, dict[str, str]] = defaultdict(dict)
        self.globals: dict[str, dict[str, str]] = defaultdict(dict)  # per file
        self.uses: set[Use] = set()
        self.untyped: set[str] = set()
        self.recording = False
        for _ in range(10):
            before = self._state()
            for key in self.funcs:
                self._function(key)
            if before == self._state():
                break
        self.recording = True
        for key in self.funcs:
            self._function(key)

    # -- helpers

    def _state(self) -> str:
        parts = (self.params, self.returns, self.attrs, self.globals)
        return repr([sorted(part.items()) for part in parts])

    def _trt_owner(self, kind: str | None) -> str | None:
        if kind == "module":
            return "tensorrt"
        if kind and kind.startswith("class:"):
            return kind[6:]
        if kind in self.surface["classes"]:
            return kind
        return None

    def lookup(self, owner: str, name: str) -> dict[str, Any] | None:
        return lookup(self.surface, owner, name)

    def _record(self, node: ast.AST, owner: str, name: str, how: str, optional: bool, **kw):
        if self.recording:
            optional = optional or any((owner, name) in guard for guard in self.guards)
            where = f"{self.file}:{node.lineno}"
            self.uses.add(Use(owner, name, how, optional, where, **kw))

    def _entry_type(self, owner: str, entry: dict[str, Any] | None) -> str | None:
        if entry is None:
            return None
        kind = entry["kind"]
        if kind == "class":
            return f"class:{entry['ref']}"
        if kind == "enum_member":
            return owner
        if kind in ("property", "value"):
            return entry.get("type")
        return None

    def _params(self, key: str) -> list[str]:
        node, owner, _ = self.funcs[key]
        names = [a.arg for a in node.args.posonlyargs + node.args.args]
        static = any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list
        )
        if owner is not None and not static:
            names = names[1:]
        return names + [a.arg for a in node.args.kwonlyargs]

    def _bind(self, key: str, node: ast.Call, args: list[str | None], kws: dict) -> str | None:
        names = self._params(key)
        for name, kind in zip(names, args, strict=False):
            if kind and name not in self.params[key]:
                self.params[key][name] = kind
        for name, kind in kws.items():
            if kind and name in names and name not in self.params[key]:
                self.params[key][name] = kind
        if key.endswith(".__init__"):
            return f"py:{key.split('.')[0]}"
        return self.returns.get(key)

    # -- statements

    def _function(self, key: str) -> None:
        node, owner, file = self.funcs[key]
        self.file, self.key, self.guards = file, key, []
        if isinstance(node, ast.Module):
            self.env, self.strings = self.globals[file], {}
            self._body([s for s in node.body if not isinstance(s, (ast.FunctionDef, ast.ClassDef))])
            return
        env = {**self.globals[file], **self.params[key]}
        args = node.args.posonlyargs + node.args.args
        decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
        if owner is not None and args and "staticmethod" not in decorators:
            env[args[0].arg] = f"pycls:{owner}" if "classmethod" in decorators else f"py:{owner}"
        self.env = env
        for _ in range(2):
            self.strings: dict[str, list[str]] = {}
            self._body(node.body)

    def _body(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self._statement(statement)

    def _statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            kind = self._expr(node.value)
            for target in node.targets:
                self._assign(target, kind, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._assign(node.target, self._expr(node.value), node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self._loop(node.target, node.iter, self._expr(node.iter))
            self._body(node.body)
            self._body(node.orelse)
        elif isinstance(node, ast.If):
            self._expr(node.test)
            self.guards.append(self._hasattr_guards(node.test))
            self._body(node.body)
            self.guards.pop()
            self._body(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                kind = self._expr(item.context_expr)
                if isinstance(item.optional_vars, ast.Name) and kind:
                    self.env[item.optional_vars.id] = kind
            self._body(node.body)
        elif isinstance(node, ast.Try):
            self._body(node.body)
            for handler in node.handlers:
                self._body(handler.body)
            self._body(node.orelse)
            self._body(node.finalbody)
        elif isinstance(node, ast.While):
            self._expr(node.test)
            self._body(node.body)
            self._body(node.orelse)
        elif isinstance(node, ast.Return) and node.value is not None:
            kind = self._expr(node.value)
            if kind and self.key not in self.returns:
                self.returns[self.key] = kind
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "tensorrt":
                    self.env[alias.asname or alias.name] = "module"
        elif isinstance(node, ast.ImportFrom) and node.module == "tensorrt":
            for alias in node.names:
                self._record(node, "tensorrt", alias.name, "value", False)
                kind = self._entry_type("tensorrt", self.lookup("tensorrt", alias.name))
                if kind:
                    self.env[alias.asname or alias.name] = kind
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._body(node.body)  # a closure: walked with the enclosing function's names
        elif not isinstance(node, ast.ClassDef):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self._expr(child)

    def _assign(self, target: ast.expr, kind: str | None, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            if kind:
                self.env[target.id] = kind
            strings = _const_strings(value) if value is not None else None
            if strings is not None:
                self.strings[target.id] = strings
            else:
                self.strings.pop(target.id, None)
        elif isinstance(target, ast.Attribute):
            base = self._expr(target.value)
            if base and base.startswith("py:") and kind and target.attr not in self.attrs[base[3:]]:
                self.attrs[base[3:]][target.attr] = kind
            owner = self._trt_owner(base)
            if owner:
                self._record(target, owner, target.attr, "set", False)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) else None
            for i, element in enumerate(target.elts):
                if values is not None and len(values) == len(target.elts):
                    self._assign(element, self._expr(values[i]), values[i])
                else:
                    self._assign(element, None, None)
        elif isinstance(target, ast.Starred):
            self._assign(target.value, None, None)
        else:
            self._expr(target)

    def _loop(self, target: ast.expr, source: ast.expr, kind: str | None) -> None:
        element = _element_type(kind)
        if element is None and self._trt_owner(kind) and kind != "module":
            self._record(source, self._trt_owner(kind), "<iter>", "protocol", False)
        if isinstance(target, ast.Name):
            if element:
                self.env[target.id] = element
            strings = _const_strings(source)
            if strings is None and isinstance(source, ast.Name):
                strings = self.strings.get(source.id)
            if strings is not None:
                self.strings[target.id] = strings

    def _hasattr_guards(self, test: ast.expr) -> set[tuple[str, str]]:
        guards: set[tuple[str, str]] = set()
        if any(isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not) for n in ast.walk(test)):
            return guards  # "if not hasattr(...)": the body is not the guarded branch
        for node in ast.walk(test):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "hasattr"
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Constant)
            ):
                owner = self._trt_owner(self._expr(node.args[0]))
                if owner:
                    guards.add((owner, node.args[1].value))
        return guards

    # -- expressions

    def _expr(self, node: ast.expr | None) -> str | None:
        if node is None:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            return f"pycls:{node.id}" if node.id in self.classes else None
        if isinstance(node, ast.Attribute):
            return self._member(self._expr(node.value), node, "value")
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.BoolOp):
            kinds = [self._expr(value) for value in node.values]
            return next((k for k in kinds if k), None)
        if isinstance(node, ast.IfExp):
            self._expr(node.test)
            body, orelse = self._expr(node.body), self._expr(node.orelse)
            return body or orelse
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for generator in node.generators:
                self._loop(generator.target, generator.iter, self._expr(generator.iter))
                for condition in generator.ifs:
                    self._expr(condition)
            for part in ("elt", "key", "value"):
                self._expr(getattr(node, part, None))
            return None
        if isinstance(node, ast.Subscript):
            base = self._expr(node.value)
            self._expr(node.slice)
            return _element_type(base)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self._expr(child)
        return None

    def _member(self, base: str | None, node: ast.Attribute, how: str, optional=False, **kw):
        if base is None:
            receiver = node.value
            if isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name):
                receiver_name = receiver.attr if receiver.value.id == "self" else None
            else:
                receiver_name = receiver.id if isinstance(receiver, ast.Name) else None
            if self.recording and receiver_name in TRT_LOOKING:
                self.untyped.add(f"{self.file}:{node.lineno}: {ast.unparse(node)}")
            return None
        if base.startswith("py:"):
            return self.attrs[base[3:]].get(node.attr)
        owner = self._trt_owner(base)
        if owner is None:
            return None
        self._record(node, owner, node.attr, how, optional, **kw)
        entry = self.lookup(owner, node.attr)
        return self._entry_type(owner, entry) if how == "value" else None

    def _call(self, node: ast.Call) -> str | None:
        args = [self._expr(a.value if isinstance(a, ast.Starred) else a) for a in node.args]
        kws = {k.arg: self._expr(k.value) for k in node.keywords}
        shape = {
            "positional": sum(not isinstance(a, ast.Starred) for a in node.args),
            "starred": any(isinstance(a, ast.Starred) for a in node.args) or None in kws,
            "keywords": tuple(sorted(k for k in kws if k)),
        }
        func = node.func
        first = node.args[0] if node.args else None
        if isinstance(func, ast.Attribute):
            if (
                func.attr == "import_module"
                and isinstance(first, ast.Constant)
                and first.value == "tensorrt"
            ):
                return "module"
            base = self._expr(func.value)
            owner = self._trt_owner(base)
            if owner:
                self._member(base, func, "call", **shape)
                return self._call_result(owner, func.attr, shape)
            if base and base.startswith(("py:", "pycls:")):
                key = f"{base.split(':')[1]}.{func.attr}"
                if key in self.funcs:
                    return self._bind(key, node, args, kws)
            self._member(base, func, "call")  # reports an untyped TensorRT-looking receiver
            return None
        if not isinstance(func, ast.Name):
            self._expr(func)
            return None
        name = func.id
        if name in ("require_module", "import_module") and isinstance(first, ast.Constant):
            return "module" if first.value == "tensorrt" else None
        if name in ("getattr", "hasattr") and len(node.args) >= 2:
            return self._getattr(node, args[0], name == "hasattr")
        owner = self._trt_owner(args[0]) if args else None
        if owner and owner != "tensorrt" and not args[0].startswith("class:"):
            if name in ("memoryview", "bytes", "bytearray"):
                self._record(node, owner, "<buffer>", "protocol", False)
            elif name == "int":
                self._record(node, owner, "<int>", "protocol", False)
            elif name in _ITERATE:
                self._record(node, owner, "<iter>", "protocol", False)
        if name in ("tuple", "list") and args and _element_type(args[0]):
            return args[0]
        kind = self.env.get(name) or (f"pycls:{name}" if name in self.classes else None)
        if kind and kind.startswith("class:"):  # from tensorrt import Builder; Builder(...)
            self._record(node, kind[6:], "__init__", "call", False, **shape)
            return kind[6:]
        if kind and kind.startswith("pycls:"):
            key = f"{kind[6:]}.__init__"
            return self._bind(key, node, args, kws) if key in self.funcs else f"py:{kind[6:]}"
        if name in self.funcs:
            return self._bind(name, node, args, kws)
        return None

    def _getattr(self, node: ast.Call, base: str | None, presence: bool) -> str | None:
        owner = self._trt_owner(base)
        if owner is None:
            return None
        target = node.args[1]
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            names = [target.value]
        elif isinstance(target, ast.Name) and target.id in self.strings:
            names = self.strings[target.id]
        else:
            self._record(node, owner, f"<dynamic: {ast.unparse(target)}>", "value", False)
            return None
        optional = presence or len(node.args) >= 3
        kinds = set()
        for name in names:
            self._record(node, owner, name, "has" if presence else "value", optional)
            kinds.add(self._entry_type(owner, self.lookup(owner, name)))
        return kinds.pop() if len(kinds) == 1 and not presence else None

    def _call_result(self, owner: str, name: str, shape: dict[str, Any]) -> str | None:
        entry = self.lookup(owner, name)
        if entry is None:
            return None
        if entry["kind"] == "class":
            return entry["ref"]
        for overload in overloads_of(entry) or ():
            if accepts(overload, **shape) is None:
                return overload["returns"]
        return None


def accepts(overload: dict[str, Any], positional: int, starred: bool, keywords) -> str | None:
    """None if a call of that shape can bind to the overload, else why not."""
    params = overload["params"]
    by_name = {p["name"]: p for p in params}
    slots = [p for p in params if p["kind"] in ("pos", "pos_only")]
    var_pos = any(p["kind"] == "var_pos" for p in params)
    var_kw = any(p["kind"] == "var_kw" for p in params)
    if positional > len(slots) and not var_pos:
        return f"takes at most {len(slots)} positional arguments, given {positional}"
    filled = {p["name"] for p in slots[:positional]}
    for keyword in keywords:
        param = by_name.get(keyword)
        if param is None or param["kind"] in ("pos_only", "var_pos", "var_kw"):
            if not var_kw:
                return f"has no keyword argument '{keyword}'"
        elif keyword in filled:
            return f"'{keyword}' is given twice"
        filled.add(keyword)
    if not starred:
        missing = [
            p["name"]
            for p in params
            if p["kind"] in ("pos", "pos_only", "kw_only")
            and not p["default"]
            and p["name"] not in filled
        ]
        if missing:
            return f"misses required argument(s) {missing}"
    return None


def _signature_text(overload: dict[str, Any]) -> str:
    params = [p["name"] + ("=..." if p["default"] else "") for p in overload["params"]]
    return f"({', '.join(params)}) -> {overload['returns']}"


def check_uses(uses: set[Use], surface: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, things that could not be verified) for the uses against one surface."""
    classes = surface["classes"]
    problems, unverified = [], []
    for use in sorted(uses):
        if use.owner != "tensorrt" and use.owner not in classes:
            problems.append(f"{use}: there is no class {use.owner}")
            continue
        if use.how == "protocol":
            members = classes[use.owner]["members"]
            if use.name == "<buffer>":
                ok = classes[use.owner]["buffer"]
                if ok is None:
                    unverified.append(f"{use}: the buffer protocol could not be read")
                elif not ok:
                    problems.append(f"{use}: {use.owner} does not export the buffer protocol")
            elif use.name == "<iter>" and not {"__iter__", "__getitem__"} & set(members):
                problems.append(f"{use}: {use.owner} is not iterable")
            elif use.name == "<int>" and not {"__int__", "__index__"} & set(members):
                problems.append(f"{use}: {use.owner} has no __int__/__index__")
            continue
        entry = lookup(surface, use.owner, use.name)
        if entry is None:
            if not use.optional:
                problems.append(f"{use}: no such member")
            continue
        kind = entry["kind"]
        callables = ("method", "function", "staticmethod", "classmethod")
        if use.how == "value" and kind in callables:
            problems.append(f"{use}: is a {kind}, used as a value (a missing call?)")
        elif use.how == "set" and not (kind == "property" and entry["writable"]):
            problems.append(f"{use}: assigned, but it is a read-only {kind}")
        elif use.how == "call":
            if kind == "class":
                init = classes.get(entry["ref"], {}).get("members", {}).get("__init__", {})
                overloads = overloads_of(init)
            elif kind in callables:
                overloads = overloads_of(entry)
            else:
                problems.append(f"{use}: called, but it is a {kind}")
                continue
            if overloads is None:
                unverified.append(f"{use}: the signature could not be read")
                continue
            reasons = [accepts(o, use.positional, use.starred, use.keywords) for o in overloads]
            if all(reasons):
                found = "; ".join(
                    f"{_signature_text(o)} {r}" for o, r in zip(overloads, reasons, strict=True)
                )
                problems.append(f"{use}: no overload accepts the call: {found}")
    return problems, unverified


# ------------------------------------------------------------------------ recorded surfaces


def recorded_surfaces() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(HERE.glob(f"{SURFACE_PREFIX}*.json")):
        surface = json.loads(path.read_text())
        found[surface["header"]["tensorrt_version"]] = surface
    return found


RECORDED = recorded_surfaces()
NEWEST = max(RECORDED, key=lambda v: tuple(map(int, v.split("."))), default=None)


def _major(version: str) -> int:
    return int(version.split(".")[0])


def test_the_premises_of_trt_build_hold() -> None:
    """What dkt/export/tensorrt.py's strongly typed design rests on, in every recorded release:
    the STRONGLY_TYPED network flag exists (11 dropped EXPLICIT_BATCH, so it is 0 there, 1 in
    10), and 11 has none of the weak-typing precision flags."""
    weak = {"FP16", "BF16", "INT8", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS"}
    for version, surface in RECORDED.items():
        flags = surface["classes"]["NetworkDefinitionCreationFlag"]["members"]
        assert flags["STRONGLY_TYPED"] == {
            "kind": "enum_member",
            "value": 0 if _major(version) >= 11 else 1,
        }, version
        builder_flags = set(surface["classes"]["BuilderFlag"]["members"])
        assert "TF32" in builder_flags, version
        if _major(version) >= 11:
            assert not weak & builder_flags, (version, weak & builder_flags)
        else:
            assert weak - {"FP4", "INT4", "FP8"} <= builder_flags, version


def test_surfaces_are_recorded_for_tensorrt_10_and_11() -> None:
    assert {_major(v) for v in RECORDED} >= {10, 11}, sorted(RECORDED)
    for version, surface in RECORDED.items():
        path = HERE / f"{SURFACE_PREFIX}{version}.json"
        assert surface["module"]["__version__"]["value"] == version, path
        assert {"read_from", "native_libraries", "how", "distributions"} <= set(surface["header"])


@pytest.mark.parametrize("version", sorted(RECORDED))
def test_the_code_uses_only_what_the_recorded_tensorrt_has(version: str) -> None:
    surface = RECORDED[version]
    walk = CodeWalk(surface)
    problems, unverified = check_uses(walk.uses, surface)
    for line in unverified:
        print(f"TensorRT {version}: not verified: {line}")
    assert not problems, f"TensorRT {version}:\n" + "\n".join(problems)
    assert not walk.untyped, "the walk lost track of TensorRT objects:\n" + "\n".join(
        sorted(walk.untyped)
    )


def test_the_walk_finds_the_uses_it_should() -> None:
    """Guards the walk itself: uses from both files, through parameters, ``self`` attributes,
    return types, ``getattr`` over a list of names and hasattr guards."""
    walk = CodeWalk(RECORDED[NEWEST])
    found = {(u.owner, u.name, u.how, u.optional) for u in walk.uses}
    expected = {
        ("tensorrt", "Builder", "call", False),
        ("Builder", "create_network", "call", False),
        ("INetworkDefinition", "num_inputs", "value", False),  # via _parse's parameter
        ("ITensor", "name", "value", False),  # the return type of get_input
        ("IBuilderConfig", "set_timing_cache", "call", False),  # via _load_timing_cache
        ("BuilderFlag", "TF32", "value", True),  # behind hasattr(trt.BuilderFlag, "TF32")
        ("NetworkDefinitionCreationFlag", "STRONGLY_TYPED", "value", True),  # getattr loop
        ("NetworkDefinitionCreationFlag", "<int>", "protocol", False),
        ("IHostMemory", "<buffer>", "protocol", False),
        ("ICudaEngine", "get_tensor_profile_shape", "call", False),  # via self.engine
        ("Dims", "<iter>", "protocol", False),
        ("IExecutionContext", "execute_async_v3", "call", False),  # via self.context
        ("tensorrt", "bfloat16", "value", True),
        ("Logger", "WARNING", "value", False),
    }
    assert expected <= found, sorted(expected - found)
    assert {u.where.split(":")[0] for u in walk.uses} == set(CODE)
    assert not any(u.name.startswith("<dynamic") for u in walk.uses)


def test_optional_uses_exist_in_some_release() -> None:
    """A name behind hasattr/getattr(..., default) may be missing in a release, but one that
    no release has is a typo."""
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    optional = set()
    for version, surface in RECORDED.items():
        walk = CodeWalk(surface)
        for use in walk.uses:
            if use.optional:
                optional.add((use.owner, use.name, use.where))
                if walk.lookup(use.owner, use.name) is not None:
                    seen[(use.owner, use.name)].append(version)
    missing = sorted(o for o in optional if not seen[o[:2]])
    assert not missing, f"in no recorded TensorRT: {missing}"


# --------------------------------------------------------------------- the stand-in module

#: The classes of fake_tensorrt.py and the real class each stands for (the ones the fake module
#: exposes as ``trt.X`` are also paired by that name, and the two must agree).
FAKE_CLASSES = {
    "FakeNetwork": "INetworkDefinition",
    "FakeParser": "OnnxParser",
    "FakeTimingCache": "ITimingCache",
    "FakeConfig": "IBuilderConfig",
    "FakeProfile": "IOptimizationProfile",
    "FakeBuilder": "Builder",
    "FakeContext": "IExecutionContext",
    "FakeEngine": "ICudaEngine",
}
FAKE_VERSIONS = ("10.8.0.43", "11.4.0.106")  # the releases the fake is used as


def _fake_members(cls: type) -> dict[str, Any]:
    members = {}
    for klass in reversed(cls.__mro__[:-1]):
        for name, raw in vars(klass).items():
            if not name.startswith("_") or name == "__init__":
                members[name] = raw
    return members


def _fake_params(func: Any) -> list[tuple[str, bool]]:
    params = list(inspect.signature(func).parameters.values())[1:]
    return [(p.name, p.default is not inspect.Parameter.empty) for p in params]


def _fake_fits(fake: list[tuple[str, bool]], real: list[dict[str, Any]]) -> bool:
    """Whether every call the fake's parameters accept, the real overload accepts too: the
    same names in the same order, the real one's extra trailing parameters optional, and
    a default in the fake only where the real one has one."""
    slots = [p for p in real if p["kind"] in ("pos", "pos_only")]
    if len(fake) > len(slots) or any(p["default"] is False for p in slots[len(fake) :]):
        return False
    return all(
        name == p["name"] and (p["default"] or not default)
        for (name, default), p in zip(fake, slots, strict=False)
    )


def _compare_fake_class(fake: type, real: str, surface: dict, constructed: bool) -> list[str]:
    problems = []
    members = surface["classes"][real]["members"]
    for name, raw in _fake_members(fake).items():
        if name == "__init__" and not constructed:
            continue  # built by the tests, never by dkt's code: its signature is the fake's own
        is_property = isinstance(raw, property)
        if not is_property and not inspect.isfunction(raw):
            continue  # a knob or a record the tests read (FakeBuilder.last, ...)
        where = f"{fake.__name__}.{name} (for {real}.{name})"
        entry = members.get(name)
        if entry is None:
            problems.append(f"{where}: the real class has no such member")
            continue
        if is_property != (entry["kind"] == "property"):
            problems.append(
                f"{where}: a {'property' if is_property else 'method'} in the fake, "
                f"a {entry['kind']} in TensorRT"
            )
            continue
        overloads = overloads_of(entry)
        if is_property or overloads is None:
            continue
        params = _fake_params(raw)
        if not any(_fake_fits(params, o["params"]) for o in overloads):
            text = ", ".join(f"{n}{'=...' if d else ''}" for n, d in params)
            options = " | ".join(entry["overloads"])
            problems.append(f"{where}: the fake takes ({text}), TensorRT {options}")
        returns = inspect.get_annotations(raw, eval_str=False).get("return")
        if isinstance(returns, str) and returns in FAKE_CLASSES:
            real_returns = {o["returns"] for o in overloads}
            if FAKE_CLASSES[returns] not in real_returns:
                problems.append(
                    f"{where}: returns a {returns} (for {FAKE_CLASSES[returns]}), "
                    f"TensorRT returns {sorted(map(str, real_returns))}"
                )
    return problems


def check_fake(version: str, surface: dict[str, Any]) -> list[str]:
    from tests.backends import fake_tensorrt

    trt = fake_tensorrt.make_fake_tensorrt(version)
    module, classes = surface["module"], surface["classes"]
    label = f"fake {version} vs TensorRT {surface['header']['tensorrt_version']}"
    problems = []
    pairs = [(getattr(fake_tensorrt, f), r, False) for f, r in FAKE_CLASSES.items()]
    for name, value in vars(trt).items():
        if name.startswith("_") and name != "__version__":
            continue
        entry = module.get(name)
        if entry is None:
            problems.append(f"trt.{name}: TensorRT has no such name")
        elif isinstance(value, type):
            if entry["kind"] != "class":
                problems.append(f"trt.{name}: a class in the fake, a {entry['kind']} in TensorRT")
            else:
                pairs.append((value, entry["ref"], True))
        elif isinstance(value, fake_tensorrt._Enum):
            real = classes.get(entry.get("ref", ""), {})
            if not real.get("enum"):
                problems.append(f"trt.{name}: an enum in the fake, not in TensorRT")
                continue
            for member, number in vars(value).items():
                real_member = real["members"].get(member)
                if real_member is None or real_member["kind"] != "enum_member":
                    problems.append(f"trt.{name}.{member}: TensorRT has no such member")
                elif real_member["value"] != number:
                    problems.append(
                        f"trt.{name}.{member} is {number} in the fake, "
                        f"{real_member['value']} in TensorRT"
                    )
        elif entry["kind"] in ("class", "function", "module"):
            problems.append(f"trt.{name}: a plain value in the fake, a {entry['kind']} in TensorRT")
    by_class: dict[type, tuple[type, str, bool]] = {}
    for fake, real, constructed in pairs:
        if fake in by_class and by_class[fake][1] != real:
            problems.append(f"{fake.__name__} stands for {by_class[fake][1]} and for {real}")
        if fake not in by_class or constructed:  # trt.X(...) in the code: __init__ counts
            by_class[fake] = (fake, real, constructed)
    pairs = list(by_class.values())
    mapped = {klass.__name__ for klass in by_class}
    unmapped = [
        name
        for name, value in vars(fake_tensorrt).items()
        if isinstance(value, type) and name.startswith("Fake") and name not in mapped
    ]
    problems += [
        f"{name}: not in FAKE_CLASSES (which real class does it stand for?)" for name in unmapped
    ]
    for fake, real, constructed in pairs:
        if real not in classes:
            problems.append(f"{fake.__name__}: TensorRT has no class {real}")
            continue
        for member, raw in _fake_members(fake).items():  # class-level values the code reads
            if (
                not callable(raw)
                and not isinstance(raw, property)
                and member in classes[real]["members"]
            ):
                real_entry = classes[real]["members"][member]
                if "value" in real_entry and real_entry["value"] != raw:
                    problems.append(
                        f"{fake.__name__}.{member} is {raw!r} in the fake, "
                        f"{real_entry['value']!r} in TensorRT"
                    )
        problems += _compare_fake_class(fake, real, surface, constructed)
    return [f"{label}: {p}" for p in problems]


@pytest.mark.parametrize(
    ("fake", "real"),
    [(f, r) for f in FAKE_VERSIONS for r in sorted(RECORDED) if _major(f) == _major(r)],
)
def test_the_fake_matches_the_recorded_tensorrt(fake: str, real: str) -> None:
    problems = check_fake(fake, RECORDED[real])
    assert not problems, "\n".join(problems)


def test_what_the_code_uses_and_the_fake_lacks_is_listed() -> None:
    """Not a failure: the uses only the real-TensorRT tests exercise (printed with -s)."""
    from tests.backends import fake_tensorrt

    surface = RECORDED[NEWEST]
    trt = fake_tensorrt.make_fake_tensorrt(FAKE_VERSIONS[-1])
    stands_for = {r: getattr(fake_tensorrt, f) for f, r in FAKE_CLASSES.items()}
    stands_for |= {
        e["ref"]: getattr(trt, n)
        for n, e in surface["module"].items()
        if e["kind"] == "class" and hasattr(trt, n)
    }
    lacking, plain = set(), set()
    for use in CodeWalk(surface).uses:
        holder = trt if use.owner == "tensorrt" else stands_for.get(use.owner)
        if holder is None:
            plain.add(use.owner)
        elif use.how != "protocol" and not hasattr(holder, use.name):
            lacking.add(f"{use.owner}.{use.name}")
    print("used by dkt, not in the fake:", ", ".join(sorted(lacking)) or "nothing")
    print("stood in for by plain objects (tuples, bytes, str, ...):", ", ".join(sorted(plain)))


# ------------------------------------------------------------------- the checker itself

MISREAD = """
def build(trt, onnx):
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, size=1 << 30)
    parser = trt.OnnxParser(network)
    for i in range(network.num_inputs()):
        print(network.get_input(i).name)
    config.set_timing_cache(config.create_timing_cache(b""))
    return builder.build_engine(network, config)


def main():
    import tensorrt

    build(tensorrt, "model.onnx")
"""


MISREAD_IMPORTED = """
import tensorrt as trt
from tensorrt import Runtime


def load(data):
    def deserialize():
        return Runtime().deserialize_cuda_engine(data)

    return trt.Builder(), deserialize
"""


def test_the_checker_catches_misreadings(tmp_path: Path) -> None:
    source = tmp_path / "misread.py"
    source.write_text(MISREAD)
    expected = {
        "NetworkDefinitionCreationFlag.EXPLICIT_BATCH: no such member",  # gone in 11
        "BuilderFlag.FP16: no such member",  # gone in 11
        "has no keyword argument 'size'",
        "OnnxParser(<1 positional>): no overload accepts the call: (network, logger) -> None "
        "misses required argument(s) ['logger']",
        "INetworkDefinition.num_inputs(<0 positional>): called, but it is a property",
        "misses required argument(s) ['ignore_mismatch']",
        "Builder.build_engine(<2 positional>): no such member",  # gone in 10
    }
    for version, surface in RECORDED.items():
        walk = CodeWalk(surface, files=(str(source),))
        problems = "\n".join(check_uses(walk.uses, surface)[0])
        for text in expected:
            if _major(version) < 11 and ("EXPLICIT_BATCH" in text or "FP16" in text):
                assert text not in problems, (version, text)
            else:
                assert text in problems, (version, text, problems)
        assert ("ITensor", "name") in {(u.owner, u.name) for u in walk.uses}
    source.write_text(MISREAD_IMPORTED)  # imported at the top, by name, used in a closure
    walk = CodeWalk(RECORDED[NEWEST], files=(str(source),))
    problems = "\n".join(check_uses(walk.uses, RECORDED[NEWEST])[0])
    assert ":10: tensorrt.Builder(<0 positional>): no overload" in problems
    assert ":8: Runtime.__init__(<0 positional>): no overload" in problems
    assert ("Runtime", "deserialize_cuda_engine") in {(u.owner, u.name) for u in walk.uses}


def test_the_fake_check_catches_misreadings(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.backends import fake_tensorrt

    assert not check_fake(FAKE_VERSIONS[-1], RECORDED[NEWEST])
    monkeypatch.setattr(fake_tensorrt.FakeParser, "parse_from_file", lambda self, path: True)
    monkeypatch.setattr(fake_tensorrt.FakeNetwork, "num_inputs", lambda self: 2)
    make = fake_tensorrt.make_fake_tensorrt

    def misread(version: str) -> Any:
        trt = make(version)
        trt.BuilderFlag = fake_tensorrt._Enum(TF32=7, FP16=0)
        return trt

    monkeypatch.setattr(fake_tensorrt, "make_fake_tensorrt", misread)
    problems = "\n".join(check_fake(FAKE_VERSIONS[-1], RECORDED[NEWEST]))
    assert "FakeParser.parse_from_file (for OnnxParser.parse_from_file): the fake takes (path)" in (
        problems
    )
    assert "FakeNetwork.num_inputs (for INetworkDefinition.num_inputs): a method in the fake" in (
        problems
    )
    assert "trt.BuilderFlag.TF32 is 7 in the fake, 6 in TensorRT" in problems
    assert "trt.BuilderFlag.FP16: TensorRT has no such member" in problems


# ---------------------------------------------------------------- against a real TensorRT


@pytest.fixture(scope="module")
def installed_surface(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The surface of the TensorRT importable by ``$DKT_TENSORRT_PYTHON`` (default: this
    interpreter), read in a child process (stand-in native libraries, where they are needed,
    never enter this one)."""
    python = os.environ.get("DKT_TENSORRT_PYTHON", sys.executable)
    stubs = tmp_path_factory.mktemp("trt-stub-libs")
    command = [python, __file__, "--dump", "--stub-libs", str(stubs)]
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)
    if proc.returncode == EXIT_NO_TENSORRT:
        reason = (proc.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"{python}: {reason} (pip install 'dkt[trt]', or set DKT_TENSORRT_PYTHON)")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_the_code_uses_only_what_the_installed_tensorrt_has(installed_surface) -> None:
    version = installed_surface["header"]["tensorrt_version"]
    walk = CodeWalk(installed_surface)
    problems, unverified = check_uses(walk.uses, installed_surface)
    print(
        f"TensorRT {version} ({installed_surface['header']['native_libraries']}): "
        f"{len(walk.uses)} uses checked; not verified: {unverified or 'none'}"
    )
    assert not problems, "\n".join(problems)
    assert not walk.untyped, sorted(walk.untyped)
    for fake in FAKE_VERSIONS:
        if _major(fake) == _major(version):
            assert not check_fake(fake, installed_surface)


@pytest.mark.slow
def test_the_recording_matches_the_installed_tensorrt(installed_surface) -> None:
    version = installed_surface["header"]["tensorrt_version"]
    if version not in RECORDED:
        pytest.skip(
            f"no {SURFACE_PREFIX}{version}.json (record it: python {Path(__file__).name} --record"
            " --stub-libs DIR); the code was checked against it all the same"
        )
    recorded = RECORDED[version]
    for part in ("module", "classes"):
        fresh, old = installed_surface[part], recorded[part]
        changed = sorted(k for k in fresh.keys() | old.keys() if fresh.get(k) != old.get(k))
        assert not changed, f"{part} differs from the recording of {version}: {changed[:20]}"
