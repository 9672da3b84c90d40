"""Locate MediaPipe's bundled ``.tflite`` models and check them against known sha256 digests.

The LiteRT backend runs these files directly, so a silently different file (another mediapipe
release, a truncated copy, a corrupted SD card) would give wrong landmarks with no error. The
digests below were recorded from the mediapipe 0.10.18 wheel (identical in 0.10.21 and on
aarch64, see FACTS.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from device.errors import SourceError


class ModelError(SourceError):
    """A model file is missing, unreadable or not the file we expect."""


@dataclass(frozen=True)
class ModelSpec:
    """One bundled model: where it lives inside the mediapipe package and its digest."""

    name: str
    relpath: str
    sha256: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "pose_detection",
            "modules/pose_detection/pose_detection.tflite",
            "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        ),
        ModelSpec(
            "pose_landmark_full",
            "modules/pose_landmark/pose_landmark_full.tflite",
            "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
        ),
        ModelSpec(
            "face_detection_short_range",
            "modules/face_detection/face_detection_short_range.tflite",
            "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        ),
        ModelSpec(
            "face_landmark",
            "modules/face_landmark/face_landmark.tflite",
            "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        ),
    )
}

# Verified (path, size, mtime_ns) -> digest, so re-creating a backend does not re-hash.
_verified: dict[tuple[str, int, int], str] = {}


def mediapipe_dir() -> Path:
    """The installed mediapipe package directory, found without importing mediapipe."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the mediapipe package is not installed, so its bundled .tflite models cannot be "
            "found; install mediapipe==0.10.18 (see pyproject.toml)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str) -> Path:
    """Return ``path`` if its sha256 is ``expected_sha256``; raise ModelError otherwise."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"model file {path} cannot be read: {exc.strerror or exc}") from exc
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if _verified.get(key) == expected_sha256:
        return path
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise ModelError(f"model file {path} cannot be read: {exc.strerror or exc}") from exc
    if actual != expected_sha256:
        raise ModelError(
            f"model file {path} has sha256 {actual}, expected {expected_sha256}: the file is "
            "corrupted or from another mediapipe release; reinstall mediapipe==0.10.18"
        )
    _verified[key] = actual
    return path


def model_path(name: str, root: Path | None = None) -> Path:
    """Path of the bundled model ``name``, sha256-checked.

    ``root`` replaces the mediapipe package directory (tests point it at a copy).
    """
    try:
        spec = MODELS[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None
    base = root if root is not None else mediapipe_dir()
    path = base / spec.relpath
    if not path.is_file():
        raise ModelError(
            f"model {name!r} not found at {path}; mediapipe releases after 0.10.21 no longer "
            "bundle it, install mediapipe==0.10.18"
        )
    return verify_file(path, spec.sha256)
