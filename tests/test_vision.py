"""Landmark backends: the LiteRT re-implementation against mediapipe on real photos, tracking,
empty scenes, model integrity, quantized I/O, and the geometry the pipeline rests on."""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from vision_photos import EMPTY, PHOTOS, VIDEO_FRAMES, load_reference, reference_landmarks
from vision_photos import on_canvas as _on_canvas
from vision_photos import shifted as _shifted

from common.config import Settings
from common.errors import BadInput, MissingExtra, SourceError
from device.vision import anchors as ssd
from device.vision.factory import backend_from_settings, make_backend
from device.vision.geometry import Roi, alignment_roi, crop, letterbox_roi, project, unletterbox
from device.vision.litert_backend import LiteRTPoseBackend
from device.vision.mediapipe_backend import MediaPipePoseBackend
from device.vision.models import MODEL_DIR, MODELS, ModelError, model_path
from device.vision.runner import ModelRunner, dequantize, quantize
from device.vision.smoothing import OneEuroFilter
from device.vision.types import LEFT_SHOULDER, NOSE, RIGHT_SHOULDER

HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
KEY_POINTS = [NOSE, LEFT_SHOULDER, RIGHT_SHOULDER]
# Measured: the backends agree to < 0.2 px on these photos (static mode); allow CPU noise.
STATIC_TOLERANCE_PX = 1.5


ASTRONAUT = PHOTOS["astronaut"]
REFERENCE = load_reference()  # mediapipe 0.10.18's answers (tests/vision_photos.py)


@pytest.fixture(scope="module")
def litert() -> LiteRTPoseBackend:
    return LiteRTPoseBackend()


# -- the two backends agree ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(PHOTOS))
def test_litert_matches_mediapipe_on_real_photos(name, litert):
    ours = litert.detect(PHOTOS[name], force_detection=True)
    ref = reference_landmarks(REFERENCE, name)
    assert ours is not None and ref is not None, f"{name}: a backend found nobody"
    assert ours.points.shape == ref.shape == (33, 3)
    error = np.hypot(*(ours.points[KEY_POINTS, :2] - ref[KEY_POINTS, :2]).T)
    assert error.max() <= STATIC_TOLERANCE_PX, f"{name}: nose/shoulder error {error} px"
    vis_error = np.abs(ours.points[KEY_POINTS, 2] - ref[KEY_POINTS, 2])
    assert vis_error.max() < 0.02
    assert all(ours.visible(i) for i in KEY_POINTS)
    assert ours.presence > 0.9 and ours.backend == "litert"


@pytest.mark.parametrize("name", list(EMPTY))
def test_empty_scenes_give_no_landmarks(name, litert):
    assert litert.detect(EMPTY[name], force_detection=True) is None
    assert reference_landmarks(REFERENCE, name) is None


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="the mediapipe extra is not installed "
                    "(Python 3.11 only): the reference file stands in for it")
def test_the_reference_file_is_what_mediapipe_answers():
    from vision_photos import mediapipe_reference

    fresh = mediapipe_reference()
    assert sorted(fresh) == sorted(REFERENCE)
    for key, value in fresh.items():
        if key.startswith("cutout_mask/"):
            assert np.mean(np.unpackbits(value) != np.unpackbits(REFERENCE[key])) < 0.001, key
        else:
            assert value.shape == REFERENCE[key].shape, key
            assert np.allclose(value, REFERENCE[key], atol=0.05), key


# -- tracking --------------------------------------------------------------------------------


def test_tracking_skips_the_detector_and_follows_the_person():
    backend = LiteRTPoseBackend()
    frame = PHOTOS["astronaut_small_in_room"]
    first = backend.detect(frame)
    assert first is not None and backend.last_times.ran_detection
    moved = backend.detect(_shifted(frame, 24, 12))
    assert moved is not None and not backend.last_times.ran_detection
    shift = moved.points[KEY_POINTS, :2] - first.points[KEY_POINTS, :2]
    # The model's own jitter is ~2 px here; staying put would be off by (24, 12).
    assert np.abs(shift - (24, 12)).max() < 6.0, f"landmarks moved by {shift}, frame by (24, 12)"

    assert backend.detect(EMPTY["blank_wall"]) is None  # the person left
    again = backend.detect(frame)
    assert again is not None and backend.last_times.ran_detection

    backend.detect(frame)
    assert not backend.last_times.ran_detection
    backend.detect(frame, force_detection=True)
    assert backend.last_times.ran_detection
    times = backend.last_times
    assert times.detect_invoke > 0 and times.landmark_invoke > 0 and times.total > 0


def test_the_detector_is_released_while_a_person_is_tracked_and_comes_back_when_lost():
    backend = LiteRTPoseBackend()
    frame = PHOTOS["astronaut_small_in_room"]
    first = backend.detect(frame, timestamp=0.0)
    assert first is not None and backend.detector.loaded
    for t in range(1, 70, 3):  # tracked for over a minute: the detector is not needed
        assert backend.detect(_shifted(frame, t % 5, 0), timestamp=float(t)) is not None
    assert not backend.detector.loaded
    assert backend.detect(EMPTY["blank_wall"], timestamp=71.0) is None  # the person left
    assert backend.detector.loaded  # loaded again to look for them
    back = backend.detect(frame, timestamp=72.0)
    assert back is not None and backend.last_times.ran_detection
    assert np.abs(back.points[KEY_POINTS, :2] - first.points[KEY_POINTS, :2]).max() < 3.0


def test_a_whole_file_holds_one_model_at_a_time_while_the_person_is_tracked():
    """breathe analyze: the detector goes as soon as a person is found, before the landmark
    model is built, and comes back when they are lost; the landmarks are the daemon's."""
    backend = backend_from_settings(Settings().vision, threads=1, whole_file=True)
    assert backend.detector.loaded and not backend.landmarker.loaded
    frame = PHOTOS["astronaut_small_in_room"]
    first = backend.detect(frame, timestamp=0.0)
    assert first is not None and backend.landmarker.loaded and not backend.detector.loaded
    daemon = backend_from_settings(Settings().vision, threads=1)
    assert np.array_equal(first.points, daemon.detect(frame, timestamp=0.0).points)
    assert daemon.detector.loaded  # the daemon keeps it for DETECTOR_IDLE_S
    assert backend.detect(EMPTY["blank_wall"], timestamp=1.0) is None  # the person left
    assert backend.detector.loaded
    back = backend.detect(frame, timestamp=2.0)
    assert back is not None and backend.last_times.ran_detection
    assert not backend.detector.loaded


def test_tracking_recovers_on_the_same_frame_when_the_person_jumps():
    backend = LiteRTPoseBackend()
    assert backend.detect(_on_canvas(ASTRONAUT, 0.4, (10, 10))) is not None
    jumped = _on_canvas(ASTRONAUT, 0.4, (400, 250))
    found = backend.detect(jumped)
    reference = LiteRTPoseBackend().detect(jumped)
    assert found is not None and backend.last_times.ran_detection
    assert np.abs(found.points[KEY_POINTS, :2] - reference.points[KEY_POINTS, :2]).max() < 3.0


def test_tracking_agrees_with_mediapipe_video_mode():
    """Same ROI smoothing as mediapipe: a few frames of a slowly drifting person agree closely.

    (Over longer runs both stay within the model's own jitter, ~1-3 px per 0.5 px of crop
    shift, but not with each other, so only the first frames are compared tightly.)
    """
    ours = LiteRTPoseBackend()
    for i, image in enumerate(VIDEO_FRAMES):
        a, b = ours.detect(image), REFERENCE["video"][i]
        error = np.hypot(*(a.points[KEY_POINTS, :2] - b[KEY_POINTS, :2]).T)
        assert error.max() < 2.0, f"frame {i}: {error} px"


# -- model files ---------------------------------------------------------------------------


def _copy_models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    for spec in MODELS.values():
        shutil.copyfile(MODEL_DIR / spec.filename, root / spec.filename)
    return root


def test_bundled_models_pass_their_checksums():
    for name in MODELS:
        assert model_path(name).is_file()


def test_corrupted_model_is_refused_with_its_path(tmp_path):
    root = _copy_models(tmp_path)
    path = root / MODELS["pose_landmark_full"].filename
    assert model_path("pose_landmark_full", root=root) == path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError) as err:
        model_path("pose_landmark_full", root=root)
    assert isinstance(err.value, SourceError)
    assert str(path) in str(err.value) and "sha256" in str(err.value)


def test_missing_or_unknown_model_is_named(tmp_path):
    with pytest.raises(ModelError, match="pose_detection.*not found"):
        model_path("pose_detection", root=tmp_path)
    with pytest.raises(ModelError, match="unknown model 'hand'"):
        model_path("hand")


# -- quantized models ------------------------------------------------------------------------


def test_quantize_dequantize_round_trip_and_saturation():
    values = np.array([-10.0, -1.0, 0.0, 0.26, 1.0, 10.0], dtype=np.float32)
    q = quantize(values, 0.02, 5, np.dtype(np.int8))
    assert q.dtype == np.int8
    assert q[0] == -128 and q[-1] == 127  # saturates instead of wrapping
    back = dequantize(q, 0.02, 5)
    assert np.allclose(back[1:-1], values[1:-1], atol=0.01)
    u = quantize(values, 0.05, 128, np.dtype(np.uint8))
    assert u.dtype == np.uint8 and u[0] == 0 and u[-1] == 255


def _int8_model(path: Path) -> Path:
    """A one-op model: int8 input (scale 0.05, zp -10) requantized to uint8 (0.04, 128)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def tensor(name: bytes, ttype: int, scale: float, zero_point: int):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, [1, 8], ttype, 0
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zero_point]
        return t

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    graph = schema.SubGraphT()
    graph.tensors = [
        tensor(b"in", schema.TensorType.INT8, 0.05, -10),
        tensor(b"out", schema.TensorType.UINT8, 0.04, 128),
    ]
    graph.inputs, graph.outputs, graph.operators = [0], [1], [op]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [schema.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


def test_runner_feeds_and_reads_int8_models_in_float(tmp_path):
    runner = ModelRunner(_int8_model(tmp_path / "tiny_int8.tflite"))
    assert runner.inputs[0].quantized and runner.outputs[0].quantized
    values = np.linspace(-3, 3, 8, dtype=np.float32)[None]
    (out,) = runner.run(values)
    assert out.dtype == np.float32
    # Two quantization steps: input (0.05) then output (0.04); raw int codes would be far off.
    assert np.abs(out - values).max() <= 0.05


def test_unloadable_model_is_a_model_error(tmp_path):
    bogus = tmp_path / "not_a_model.tflite"
    bogus.write_bytes(b"definitely not a flatbuffer" * 10)
    with pytest.raises(ModelError, match="not_a_model.tflite"):
        ModelRunner(bogus)


# -- factory ---------------------------------------------------------------------------------


def test_factory_builds_each_backend_and_refuses_bad_choices(tmp_path):
    assert isinstance(make_backend("litert", threads=2), LiteRTPoseBackend)
    if HAS_MEDIAPIPE:
        mp_backend = make_backend("mediapipe", static_image_mode=True)
        assert isinstance(mp_backend, MediaPipePoseBackend)
        mp_backend.close()
    else:  # the base install: the backend says which extra brings it
        with pytest.raises(MissingExtra, match=r"breathe\[mediapipe\]"):
            make_backend("mediapipe", static_image_mode=True)
    with pytest.raises(BadInput, match="unknown landmark backend 'openpose'"):
        make_backend("openpose")
    with pytest.raises(BadInput, match="variant"):
        make_backend("litert", variant="int4")
    with pytest.raises(BadInput, match="landmark_model"):
        make_backend("litert", variant="int8")
    with pytest.raises(BadInput, match="does not exist"):
        make_backend("litert", variant="int8", landmark_model=tmp_path / "missing.tflite")
    with pytest.raises(BadInput, match="bundled fp16"):
        make_backend("mediapipe", variant="int8")
    with pytest.raises(BadInput, match="threads"):
        make_backend("litert", threads=0)
    with pytest.raises(BadInput, match="model_complexity"):
        MediaPipePoseBackend(model_complexity=2)


def test_a_model_without_pose_outputs_is_refused_by_name(tmp_path):
    with pytest.raises(ModelError, match="no landmark output"):
        LiteRTPoseBackend(landmark_path=_int8_model(tmp_path / "tiny.tflite"))


@pytest.mark.parametrize(
    "bad", [np.zeros((48, 64), np.uint8), np.zeros((48, 64, 3), np.float32), np.zeros((1, 1, 3))]
)
def test_backends_name_the_wrong_image(bad, litert):
    with pytest.raises(BadInput, match="image"):
        litert.detect(bad)


# -- pieces ----------------------------------------------------------------------------------


def test_ssd_anchors_match_the_detector_output():
    anchors = ssd.ssd_anchors()
    assert anchors.shape == (2254, 2)
    assert np.allclose(anchors[0], [0.5 / 28, 0.5 / 28])  # first 28x28 cell, stride 8
    assert np.allclose(anchors[1], anchors[0])  # two anchors per cell
    assert np.allclose(anchors[-1], [6.5 / 7, 6.5 / 7])  # last 7x7 cell, stride 32


def test_weighted_nms_merges_overlaps_and_keeps_separate_people():
    boxes = np.array(
        [[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]], dtype=np.float32
    )
    keypoints = np.array([[[0.2, 0.2]], [[0.3, 0.2]], [[0.7, 0.7]]], dtype=np.float32)
    scores = np.array([0.9, 0.6, 0.7], dtype=np.float32)
    found = ssd.weighted_nms(scores, boxes, keypoints, threshold=0.3)
    assert [round(d.score, 2) for d in found] == [0.9, 0.7]
    assert np.allclose(found[0].keypoints[0], [(0.2 * 0.9 + 0.3 * 0.6) / 1.5, 0.2])
    assert np.allclose(found[1].box, boxes[2])


def test_crop_and_project_are_inverse_for_rotated_rois():
    """A dot marked in the frame, cut out through a rotated ROI, projects back onto itself."""
    frame = np.zeros((300, 400, 3), np.uint8)
    dot = (250.0, 120.0)
    cv2.circle(frame, (int(dot[0]), int(dot[1])), 3, (255, 255, 255), -1)
    roi = Roi(cx=220, cy=140, width=180, height=180, rotation=math.radians(35))
    patch = crop(frame, roi, 256, 256)
    ys, xs = np.nonzero(patch[:, :, 0] > 128)
    found = project(np.array([[xs.mean() / 256, ys.mean() / 256]]), roi)[0]
    assert np.hypot(*(found - dot)) < 1.5


def test_letterbox_padding_is_removed_from_detector_coordinates():
    roi, pad = letterbox_roi(640, 480)
    assert roi.width == roi.height == 640 and pad == (0.0, 0.125)
    # The frame's bottom-right corner sits at (1, 0.875) on the padded square.
    assert np.allclose(unletterbox(np.array([1.0, 0.875]), pad, 640, 480), [640, 480])


def test_alignment_roi_turns_the_body_upright():
    upright = alignment_roi(np.array([100.0, 200.0]), np.array([100.0, 100.0]))
    assert upright.width == pytest.approx(250.0) and upright.rotation == pytest.approx(0.0)
    lying = alignment_roi(np.array([100.0, 200.0]), np.array([200.0, 200.0]))
    assert lying.rotation == pytest.approx(math.pi / 2)


def test_roi_smoothing_holds_still_and_follows_a_move():
    smooth = OneEuroFilter()
    rng = np.random.default_rng(1)
    noisy = np.array([100.0, 50.0]) + rng.normal(0, 1.0, (60, 2))
    still = [smooth(i / 30, noisy[i], 1 / 200) for i in range(60)]
    assert np.std(np.array(still)[30:], axis=0).max() < 0.3  # jitter of 1 px mostly removed
    for i in range(60, 75):
        moved = smooth(i / 30, np.array([160.0, 50.0]), 1 / 200)
    assert abs(moved[0] - 160.0) < 6.0  # a 60 px move is followed within half a second
    smooth.reset()
    assert np.allclose(smooth(10.0, np.array([1.0, 2.0])), [1.0, 2.0])
