"""Run one ``.tflite`` model with float in, float out, whatever the model's tensor types.

Quantized models carry int8/uint8 tensors with a (scale, zero_point) pair; the pipeline code
only ever sees float32, so quantizing inputs and dequantizing outputs happens here once.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from device.vision.models import ModelError


def quantize(values: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Float -> integer tensor: ``round(v / scale) + zero_point``, saturated to ``dtype``."""
    info = np.iinfo(dtype)
    q = np.round(np.asarray(values, dtype=np.float32) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer tensor -> float: ``(q - zero_point) * scale``."""
    return ((np.asarray(values).astype(np.int32) - zero_point) * scale).astype(np.float32)


def load_interpreter_class() -> Any:
    """``ai_edge_litert``'s Interpreter, else ``tflite_runtime``'s (older Pi images)."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError:
        raise ModelError(
            "no TFLite interpreter: install ai-edge-litert (or tflite-runtime on old systems)"
        ) from None


@dataclass(frozen=True)
class TensorInfo:
    """What the runner needs to know about one input or output tensor."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.dtype in (np.int8, np.uint8) and self.scale > 0

    @classmethod
    def from_details(cls, details: dict) -> TensorInfo:
        scale, zero_point = details.get("quantization", (0.0, 0))
        return cls(
            index=int(details["index"]),
            name=str(details["name"]),
            shape=tuple(int(v) for v in details["shape"]),
            dtype=np.dtype(details["dtype"]),
            scale=float(scale),
            zero_point=int(zero_point),
        )


def release_memory() -> None:
    """Hand memory freed by a dropped interpreter back to the system.

    glibc keeps freed heap for reuse, so a closed interpreter's ~30 MB would stay resident;
    ``malloc_trim`` returns it. Elsewhere (musl, macOS) this only collects garbage.
    """
    gc.collect()
    try:  # the process's own symbols: no library search (find_library runs ldconfig)
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


class ModelRunner:
    """An interpreter with float32 ``run()``; int8/uint8 I/O converted transparently.

    ``load=False`` reads only the model's tensor details (a delegate-free interpreter, about
    1 ms and no packed weights) and builds the real interpreter at the first ``run()``.
    ``release()`` drops the interpreter and its memory; the next ``run()`` builds it again.
    """

    def __init__(self, path: Path, threads: int = 1, *, load: bool = True) -> None:
        self.path = path
        self.threads = threads
        self._interp: Any = None
        details = self._interpreter() if load else self._open(delegates=False)
        self.inputs = [TensorInfo.from_details(d) for d in details.get_input_details()]
        self.outputs = [TensorInfo.from_details(d) for d in details.get_output_details()]
        if len(self.inputs) != 1:
            raise ModelError(f"model {path} has {len(self.inputs)} inputs, expected 1 image input")

    def _open(self, *, delegates: bool = True) -> Any:
        interpreter_cls = load_interpreter_class()
        try:
            if delegates:
                interp = interpreter_cls(model_path=str(self.path), num_threads=self.threads)
                interp.allocate_tensors()
                return interp
            resolver = sys.modules[interpreter_cls.__module__].OpResolverType
            return interpreter_cls(  # tensor details only: no XNNPACK weight packing
                model_path=str(self.path),
                experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"model file {self.path} cannot be loaded by the interpreter: {exc}"
            ) from exc

    def _interpreter(self) -> Any:
        if self._interp is None:
            self._interp = self._open()
        return self._interp

    @property
    def loaded(self) -> bool:
        """Whether the interpreter (and its ~20-40 MB of packed weights and buffers) is held."""
        return self._interp is not None

    def release(self) -> None:
        """Hand the interpreter's memory back; the next ``run()`` loads it again."""
        if self._interp is not None:
            self._interp = None
            release_memory()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.inputs[0].shape

    def output_by_shape(self, predicate: Any, what: str) -> int:
        """Position of the first output whose shape satisfies ``predicate``.

        Outputs are found by shape, not by name or order, because quantizers rename tensors.
        """
        for pos, info in enumerate(self.outputs):
            if predicate(info.shape):
                return pos
        shapes = [info.shape for info in self.outputs]
        raise ModelError(f"model {self.path} has no {what} output; output shapes: {shapes}")

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Invoke on one float32 input; return every output as float32."""
        info = self.inputs[0]
        if info.quantized:
            tensor = quantize(tensor, info.scale, info.zero_point, info.dtype)
        else:
            tensor = tensor.astype(info.dtype, copy=False)
        interp = self._interpreter()
        interp.set_tensor(info.index, tensor)
        interp.invoke()
        results = []
        for out in self.outputs:
            raw = interp.get_tensor(out.index)
            if out.quantized:
                results.append(dequantize(raw, out.scale, out.zero_point))
            else:
                results.append(raw.astype(np.float32, copy=False))
        return results
