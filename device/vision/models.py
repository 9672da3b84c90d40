"""Locate the MediaPipe ``.tflite`` models shipped in ``device/vision/tflite/`` and check them
against known sha256 digests.

The LiteRT backend runs these files directly, so a silently different file (another mediapipe
release, a truncated copy, a corrupted SD card) would give wrong landmarks with no error. The
files and digests are those of the mediapipe 0.10.18 wheel (identical in 0.10.21 and on
aarch64, see FACTS.md); they are Apache-2.0 (``tflite/LICENSE``, ``tflite/README.md``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from common.errors import BadInput, SourceError


class ModelError(SourceError, BadInput):
    """A model file is missing, unreadable or not the file we expect (CLI exit code 2: the
    message names the fix, reinstalling)."""


@dataclass(frozen=True)
class ModelSpec:
    """One shipped model: its file name in ``tflite/`` and its digest."""

    name: str
    filename: str
    sha256: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "pose_detection",
            "pose_detection.tflite",
            "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        ),
        ModelSpec(
            "pose_landmark_full",
            "pose_landmark_full.tflite",
            "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
        ),
        ModelSpec(
            "face_detection_short_range",
            "face_detection_short_range.tflite",
            "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        ),
        ModelSpec(
            "face_landmark",
            "face_landmark.tflite",
            "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        ),
    )
}

# Verified (path, size, mtime_ns) -> digest, so re-creating a backend does not re-hash.
_verified: dict[tuple[str, int, int], str] = {}


MODEL_DIR = Path(__file__).with_name("tflite")


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
            "corrupted or not the model Breathe ships; reinstall breathe "
            "(pip install --force-reinstall .; scripts/install-pi does it)"
        )
    _verified[key] = actual
    return path


def model_path(name: str, root: Path | None = None) -> Path:
    """Path of the shipped model ``name``, sha256-checked.

    ``root`` replaces ``MODEL_DIR`` (tests point it at a copy).
    """
    try:
        spec = MODELS[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None
    base = root if root is not None else MODEL_DIR
    path = base / spec.filename
    if not path.is_file():
        raise ModelError(
            f"model {name!r} not found at {path}: the installed package is incomplete; "
            "reinstall breathe (pip install --force-reinstall .; scripts/install-pi does it)"
        )
    return verify_file(path, spec.sha256)
