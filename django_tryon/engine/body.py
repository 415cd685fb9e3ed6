"""The person: BlazePose landmarks, the person mask, faces, and the photo-requirement check."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import mediapipe as mp
import numpy as np

from .images import ImageInput, to_rgb_array

# BlazePose landmark indices (the person's left/right, not the image's).
NOSE, MOUTH_L, MOUTH_R = 0, 9, 10
SHOULDER_L, SHOULDER_R, ELBOW_L, ELBOW_R, WRIST_L, WRIST_R = 11, 12, 13, 14, 15, 16
#: Each hand's wrist, pinky, index and thumb (BlazePose marks the knuckles, not the fingertips).
HANDS = ((15, 17, 19, 21), (16, 18, 20, 22))
HIP_L, HIP_R, KNEE_L, KNEE_R, ANKLE_L, ANKLE_R, HEEL_L, HEEL_R = 23, 24, 25, 26, 27, 28, 29, 30
HEAD_POINTS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)

#: Largest side the detectors see; bigger photos are analysed on a reduced copy (same geometry).
ANALYSIS_SIDE = 1024

_lock = threading.Lock()
_models: dict[str, Any] = {}


def _model(name: str) -> Any:
    """Detectors are created once per process and used under a lock (mediapipe graphs are not re-entrant)."""
    if name not in _models:
        if name == "pose":
            _models[name] = mp.solutions.pose.Pose(
                static_image_mode=True, model_complexity=1, enable_segmentation=True, min_detection_confidence=0.5
            )
        else:
            _models[name] = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.6)
    return _models[name]


@dataclass
class Body:
    """One person found in a photo, in the photo's pixel coordinates."""

    width: int
    height: int
    landmarks: np.ndarray  # (33, 3): x, y, visibility
    mask: np.ndarray  # HxW float32 in 0..1 (person segmentation)
    faces: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # x0, y0, x1, y1, score

    def point(self, index: int) -> np.ndarray:
        return self.landmarks[index, :2].astype(np.float64)

    def visible(self, index: int, threshold: float = 0.5) -> bool:
        x, y, v = self.landmarks[index]
        return v >= threshold and 0 <= x < self.width and 0 <= y < self.height

    def image_left_right(self, left: int, right: int) -> tuple[np.ndarray, np.ndarray]:
        """A landmark pair ordered by image x (image-left first), whichever way the person faces."""
        a, b = self.point(left), self.point(right)
        return (a, b) if a[0] <= b[0] else (b, a)

    @property
    def shoulder_width(self) -> float:
        return float(np.linalg.norm(self.point(SHOULDER_L) - self.point(SHOULDER_R)))

    @property
    def torso_length(self) -> float:
        shoulders = (self.point(SHOULDER_L) + self.point(SHOULDER_R)) / 2
        hips = (self.point(HIP_L) + self.point(HIP_R)) / 2
        return float(np.linalg.norm(hips - shoulders))

    def binary_mask(self, threshold: float = 0.5) -> np.ndarray:
        return self.mask >= threshold


def find_body(image: ImageInput) -> Body | None:
    """Run the detectors on ``image``; None when no person is found."""
    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    scale = min(1.0, ANALYSIS_SIDE / max(h, w))
    small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    with _lock:
        pose = _model("pose").process(small)
        faces = _model("face").process(small)
    face_boxes = []
    for detection in faces.detections or []:
        box = detection.location_data.relative_bounding_box
        face_boxes.append(
            (box.xmin * w, box.ymin * h, (box.xmin + box.width) * w, (box.ymin + box.height) * h, detection.score[0])
        )
    if pose.pose_landmarks is None:
        return Body(w, h, np.zeros((33, 3)), np.zeros((h, w), np.float32), face_boxes) if face_boxes else None
    landmarks = np.array([(p.x * w, p.y * h, p.visibility) for p in pose.pose_landmarks.landmark], dtype=np.float64)
    mask = pose.segmentation_mask
    if mask.shape != (h, w):
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    return Body(w, h, landmarks, mask.astype(np.float32), face_boxes)


@dataclass
class PersonCheck:
    """The verdict on a person photo, following the provider's photo requirements."""

    ok: bool
    verdict: str  # ok | no_person | several_people | not_full_body | not_front_facing | too_dark | blurry
    reasons: list[str]
    details: dict[str, float] = field(default_factory=dict)

    #: The provider's error code for a refused photo.
    code = "InvalidPerson"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _second_person(rgb: np.ndarray, body: Body) -> bool:
    """Blank out the person found and look again: BlazePose reports one person per pass."""
    cover = cv2.dilate(body.binary_mask().astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    x0, y0 = body.landmarks[:, :2].min(axis=0).clip(0)
    x1, y1 = body.landmarks[:, :2].max(axis=0)
    cover[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1] |= True  # the landmark box, in case the mask is thin
    masked = rgb.copy()
    masked[cover] = np.median(rgb[~cover], axis=0) if (~cover).any() else 127
    other = find_body(masked)
    if other is None or not other.landmarks[:, 2].any():
        return False
    torso = [SHOULDER_L, SHOULDER_R, HIP_L, HIP_R]
    confident = other.landmarks[torso, 2].mean() >= 0.6
    sized = other.shoulder_width >= 0.3 * max(body.shoulder_width, 1.0)
    return bool(confident and sized and other.binary_mask().mean() >= 0.01)


def _people_in_mask(mask: np.ndarray) -> int:
    """Large separate blobs in the person mask (BlazePose segments everyone it sees)."""
    binary = (mask >= 0.5).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    areas = sorted((int(a) for a in stats[1:, cv2.CC_STAT_AREA]), reverse=True)
    if not areas:
        return 0
    total = mask.shape[0] * mask.shape[1]
    return sum(1 for a in areas if a >= 0.25 * areas[0] and a >= 0.015 * total)


def check_person(image: ImageInput, body: Body | None = None) -> PersonCheck:
    """Is this a usable try-on photo: one person, head to feet, facing the camera, lit and sharp?"""
    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    brightness = float(gray.mean())
    small = cv2.resize(gray, (max(1, round(w * 512 / h)), 512), interpolation=cv2.INTER_AREA) if h > 512 else gray
    sharpness = float(cv2.Laplacian(small, cv2.CV_64F).var())
    details = {"brightness": round(brightness, 1), "sharpness": round(sharpness, 1)}
    if brightness < 45:
        return PersonCheck(False, "too_dark", ["The photo is too dark: take it in good light."], details)
    if sharpness < 12:
        return PersonCheck(False, "blurry", ["The photo is blurred: hold the camera still, in focus."], details)

    body = body if body is not None else find_body(rgb)
    faces = [f for f in (body.faces if body else []) if (f[3] - f[1]) >= 0.025 * h]
    details["faces"] = len(faces)
    if body is None or not body.landmarks[:, 2].any():
        if len(faces) >= 2:
            return PersonCheck(False, "several_people", ["More than one person is in the photo."], details)
        return PersonCheck(False, "no_person", ["No person was found in the photo."], details)
    blobs = _people_in_mask(body.mask)
    details["mask_blobs"] = blobs
    if len(faces) >= 2 or blobs >= 2 or _second_person(rgb, body):
        return PersonCheck(False, "several_people", ["More than one person is in the photo: upload a photo of you alone."], details)
    coverage = float(body.binary_mask().mean())
    details["coverage"] = round(coverage, 3)
    if coverage < 0.03:
        return PersonCheck(False, "no_person", ["No person was found in the photo (or the person is very small)."], details)

    reasons = []
    for name, points in (("shoulders", (SHOULDER_L, SHOULDER_R)), ("hips", (HIP_L, HIP_R)), ("knees", (KNEE_L, KNEE_R))):
        if not all(body.visible(p) for p in points):
            reasons.append(f"The {name} are not in the picture.")
    feet_in = any(body.visible(p, 0.3) for p in (ANKLE_L, ANKLE_R, HEEL_L, HEEL_R)) and all(
        body.landmarks[p, 1] < h * 1.01 for p in (ANKLE_L, ANKLE_R)
    )
    if not feet_in:
        reasons.append("The feet are not in the picture: show the whole body, head to feet.")
    head_top = min(body.landmarks[p, 1] for p in (SHOULDER_L, SHOULDER_R))
    if head_top < 0.03 * h:
        reasons.append("The head is cut off: leave room above the shoulders.")
    if reasons:
        return PersonCheck(False, "not_full_body", reasons, details)

    torso = body.torso_length
    shoulder_ratio = body.shoulder_width / max(torso, 1.0)
    hips_y = (body.landmarks[HIP_L, 1] + body.landmarks[HIP_R, 1]) / 2
    ankles_y = (body.landmarks[ANKLE_L, 1] + body.landmarks[ANKLE_R, 1]) / 2
    leg_ratio = (ankles_y - hips_y) / max(torso, 1.0)
    details.update(shoulder_ratio=round(shoulder_ratio, 2), leg_ratio=round(leg_ratio, 2))
    if leg_ratio < 1.15:
        return PersonCheck(False, "not_full_body", ["Sitting, crouching or lying: stand straight."], details)
    if shoulder_ratio < 0.42:
        return PersonCheck(False, "not_front_facing", ["The person is turned sideways: face the camera."], details)
    return PersonCheck(True, "ok", [], details)
