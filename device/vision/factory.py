"""Choose a landmark backend by name: the one place the rest of the app asks for one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.errors import BadInput
from device.vision.types import LandmarkBackend

BACKENDS = ("litert", "mediapipe")
VARIANTS = ("fp16", "int8")


def make_backend(
    name: str = "litert",
    threads: int = 1,
    variant: str = "fp16",
    *,
    landmark_model: str | Path | None = None,
    detector_model: str | Path | None = None,
    **options: Any,
) -> LandmarkBackend:
    """Build a landmark backend.

    ``name``: "litert" (MediaPipe's models on a LiteRT interpreter, our pre/post-processing)
    or "mediapipe" (the solutions API). ``variant``: "fp16" runs the bundled, sha256-checked
    models; "int8" runs a quantized landmark model you provide as ``landmark_model`` (none is
    shipped: every int8 recipe tried here moved nose/shoulders by 2-7 px on average, up to 23).
    ``options`` go to the backend (LiteRT: ``tracking``, ``min_detection_score``,
    ``min_presence``, ``detector_idle_s``; mediapipe: ``static_image_mode``,
    ``smooth_landmarks``, ...).
    """
    if name not in BACKENDS:
        raise BadInput(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if variant not in VARIANTS:
        raise BadInput(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if not isinstance(threads, int) or threads < 1:
        raise BadInput(f"threads must be a whole number >= 1, got {threads!r}")
    if name == "mediapipe":
        if variant != "fp16" or landmark_model or detector_model:
            raise BadInput(
                "the mediapipe backend runs only its bundled fp16 models; use name='litert' "
                "for a quantized or custom model"
            )
        from device.vision.mediapipe_backend import MediaPipePoseBackend

        return MediaPipePoseBackend(**options)

    if variant == "int8" and landmark_model is None:
        raise BadInput(
            "variant='int8' needs landmark_model=PATH to an int8-quantized "
            "pose_landmark_full.tflite; none ships because int8 was not accurate enough"
        )
    from device.vision.litert_backend import LiteRTPoseBackend

    return LiteRTPoseBackend(
        threads,
        landmark_path=_existing(landmark_model, "landmark_model"),
        detector_path=_existing(detector_model, "detector_model"),
        **options,
    )


def _existing(path: str | Path | None, what: str) -> Path | None:
    if path is None:
        return None
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise BadInput(f"{what} {resolved} does not exist or is not a file")
    return resolved


def backend_from_settings(vision: Any, threads: int | None = None, *,
                          whole_file: bool = False) -> LandmarkBackend:
    """The backend the ``[vision]`` config section asks for.

    ``whole_file``: a video analysed as fast as it decodes (``breathe analyze``). The LiteRT
    detector is then released as soon as a person is tracked, before the landmark model is
    built, so the two are held together only while someone is being found again (each time
    about 0.3 s to rebuild it). The daemon keeps it for ``DETECTOR_IDLE_S`` of tracking.
    """
    options: dict[str, Any] = {}
    if vision.backend == "litert":
        options = {"min_detection_score": vision.min_confidence,
                   "min_presence": vision.min_confidence}
        if whole_file:
            options["detector_idle_s"] = 0.0
    return make_backend(vision.backend, threads=threads or vision.threads,
                        variant=vision.model_variant, landmark_model=vision.landmark_model,
                        **options)
