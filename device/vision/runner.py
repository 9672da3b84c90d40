"""Run one ``.tflite`` model with float in, float out, whatever the model's tensor types.

Quantized models carry int8/uint8 tensors with a (scale, zero_point) pair; the pipeline code
only ever sees float32, so quantizing inputs and dequantizing outputs happens here once.
"""

from __future__ import annotations

import ctypes
import gc
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
    """A loaded interpreter with float32 ``run()``; int8/uint8 I/O converted transparently."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        interpreter_cls = load_interpreter_class()
        try:
            self._interp = interpreter_cls(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"model file {path} cannot be loaded by the interpreter: {exc}"
            ) from exc
        self.path = path
        self.inputs = [TensorInfo.from_details(d) for d in self._interp.get_input_details()]
        self.outputs = [TensorInfo.from_details(d) for d in self._interp.get_output_details()]
        if len(self.inputs) != 1:
            raise ModelError(f"model {path} has {len(self.inputs)} inputs, expected 1 image input")

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
        self._interp.set_tensor(info.index, tensor)
        self._interp.invoke()
        results = []
        for out in self.outputs:
            raw = self._interp.get_tensor(out.index)
            if out.quantized:
                results.append(dequantize(raw, out.scale, out.zero_point))
            else:
                results.append(raw.astype(np.float32, copy=False))
        return results
