"""A stand-in for the ``tensorrt`` module: the parts of its Python API dkt calls, recording
every call, so the builder and the backend can be tested on machines without TensorRT.

It follows the TensorRT 10/11 name-based API; ``version`` picks the release. TensorRT 11 has
no weak-typing builder flags, so the fake 11 has no ``BuilderFlag.FP16`` (touching it fails
like the real one). Its names, parameter names and enum values are checked against surfaces
recorded from the real package by ``test_tensorrt_api_surface.py``.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, ClassVar

import torch

INPUTS = ("composite", "mask")
#: The style strength's input of engines built from exports that have it: shape (1,).
STRENGTH = "strength"


class _Enum:
    def __init__(self, **members: int) -> None:
        for name, value in members.items():
            setattr(self, name, value)


class FakeNetwork:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.input_names: list[str] = []
        self.output_names: list[str] = []

    @property
    def num_inputs(self) -> int:
        return len(self.input_names)

    @property
    def num_outputs(self) -> int:
        return len(self.output_names)

    def get_input(self, index: int) -> Any:
        return types.SimpleNamespace(name=self.input_names[index])

    def get_output(self, index: int) -> Any:
        return types.SimpleNamespace(name=self.output_names[index])


class FakeParser:
    errors: ClassVar[list[str]] = []
    io = (list(INPUTS), ["harmonized"])

    def __init__(self, network: FakeNetwork, logger: Any) -> None:
        self.network = network

    def parse_from_file(self, model: str) -> bool:
        assert Path(model).is_file()
        if self.errors:
            return False
        self.network.input_names, self.network.output_names = (list(x) for x in self.io)
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]


class FakeTimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return b"timing:" + self.data


class FakeConfig:
    def __init__(self) -> None:
        self.pool_limits: dict[int, int] = {}
        self.cleared: list[int] = []
        self.set_flags: list[int] = []
        self.profiles: list[FakeProfile] = []
        self.cache: FakeTimingCache | None = None

    def set_memory_pool_limit(self, pool: int, pool_size: int) -> None:
        self.pool_limits[pool] = pool_size

    def clear_flag(self, flag: int) -> None:
        self.cleared.append(flag)

    def set_flag(self, flag: int) -> None:
        self.set_flags.append(flag)

    def add_optimization_profile(self, profile: FakeProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: bytes) -> FakeTimingCache:
        return FakeTimingCache(bytes(serialized_timing_cache))

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.cache = cache
        return True

    def get_timing_cache(self) -> FakeTimingCache:
        assert self.cache is not None
        return self.cache


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, input: str, min, opt, max) -> None:  # TensorRT's parameter names
        self.shapes[input] = (tuple(min), tuple(opt), tuple(max))


class FakeBuilder:
    last: FakeBuilder | None = None
    fail = False

    def __init__(self, logger: Any) -> None:
        FakeBuilder.last = self
        self.network: FakeNetwork | None = None
        self.config: FakeConfig | None = None

    def create_network(self, flags: int = 0) -> FakeNetwork:
        self.network = FakeNetwork(flags)
        return self.network

    def create_builder_config(self) -> FakeConfig:
        self.config = FakeConfig()
        return self.config

    def create_optimization_profile(self) -> FakeProfile:
        return FakeProfile()

    def build_serialized_network(self, network: FakeNetwork, config: FakeConfig) -> Any:
        return None if self.fail else b"fake-engine:" + repr(config.profiles[0].shapes).encode()


class FakeContext:
    """Writes composite * (1 - mask) + 0.25 * mask into the output buffer on execute; with a
    strength input s, composite + s * mask * (0.25 - composite)."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.calls: list[str] = []
        self.buffers: dict[str, torch.Tensor] = {}  # the test points this at backend.buffers

    def set_input_shape(self, name: str, shape) -> bool:
        self.calls.append(f"shape {name} {tuple(shape)}")
        low, _, high = self.engine.get_tensor_profile_shape(name, 0)
        if not all(lo <= s <= hi for lo, s, hi in zip(low, shape, high, strict=True)):
            return False
        self.input_shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name == "harmonized":
            return self.input_shapes["composite"]
        if name == STRENGTH:
            return (1,)  # fixed in the engine
        return self.input_shapes[name]

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self.addresses[name] = memory
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        self.calls.append("execute")
        for name, buffer in self.buffers.items():
            assert self.addresses[name] == buffer.data_ptr(), f"{name} is bound to a stale buffer"
        c, m = self.buffers["composite"], self.buffers["mask"]
        if STRENGTH in self.buffers:
            s = self.buffers[STRENGTH]
            self.buffers["harmonized"].copy_(c + s * m * (0.25 - c))
        else:
            self.buffers["harmonized"].copy_(c * (1 - m) + 0.25 * m)
        return True


class FakeEngine:
    def __init__(self, trt: Any, profile, names=(*INPUTS, "harmonized")) -> None:
        self.trt = trt
        self.names = list(names)
        self.profile = profile  # {name: (min, opt, max)}
        self.context: FakeContext | None = None

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    def get_tensor_mode(self, name: str) -> int:
        inputs = (*INPUTS, STRENGTH)
        return self.trt.TensorIOMode.INPUT if name in inputs else self.trt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> str:
        return self.trt.float32

    def get_tensor_profile_shape(self, name: str, profile_index: int):
        return self.profile[name]

    def create_execution_context(self) -> FakeContext:
        self.context = FakeContext(self)
        return self.context


def make_fake_tensorrt(version: str = "10.8.0.43") -> Any:
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, min_severity=2: None})
    # The real values (tests/backends/test_tensorrt_api_surface.py checks them): 11 dropped
    # EXPLICIT_BATCH (0 in 10), so STRONGLY_TYPED moved from 1 to 0.
    trt.NetworkDefinitionCreationFlag = _Enum(STRONGLY_TYPED=0 if major >= 11 else 1)
    flags = {"TF32": 6} if major >= 11 else {"FP16": 0, "TF32": 6, "OBEY_PRECISION_CONSTRAINTS": 9}
    trt.BuilderFlag = _Enum(**flags)
    trt.MemoryPoolType = _Enum(WORKSPACE=0)
    trt.TensorIOMode = _Enum(NONE=0, INPUT=1, OUTPUT=2)
    trt.float32, trt.float16 = "float32", "float16"
    trt.Builder = FakeBuilder
    trt.OnnxParser = FakeParser
    trt.Runtime = type("Runtime", (), {"__init__": lambda self, logger: None})
    return trt
