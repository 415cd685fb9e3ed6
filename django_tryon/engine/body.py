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
                static_image_mode=True,
                model_complexity=1,
                enable_segmentation=True,
                min_detection_confidence=0.5,
            )
        else:
            _models[name] = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=0.6
            )
    return _models[name]


@dataclass
class Body:
    """One person found in a photo, in the photo's pixel coordinates."""

    width: int
    height: int
    landmarks: np.ndarray  # (33, 3): x, y, visibility
    mask: np.ndarray  # HxW float32 in 0..1 (person segmentation)
    faces: list[tuple[float, float, float, float, float]] = field(
        default_factory=list
    )  # x0, y0, x1, y1, score
    #: Per face (same order as ``faces``), (6, 2) pixels: right eye, left eye, nose tip, mouth, right ear, left ear.
    face_points: list[np.ndarray] = field(default_factory=list)
    #: (33, 3) BlazePose world landmarks in metres (x right, y down, z away from the camera), when known.
    world: np.ndarray | None = None

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
    small = (
        cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1
        else rgb
    )
    with _lock:
        pose = _model("pose").process(small)
        faces = _model("face").process(small)
    face_boxes, face_points = [], []
    for detection in faces.detections or []:
        box = detection.location_data.relative_bounding_box
        face_boxes.append(
            (
                box.xmin * w,
                box.ymin * h,
                (box.xmin + box.width) * w,
                (box.ymin + box.height) * h,
                detection.score[0],
            )
        )
        keypoints = detection.location_data.relative_keypoints
        face_points.append(np.array([(k.x * w, k.y * h) for k in keypoints], dtype=np.float64).reshape(-1, 2))
    if pose.pose_landmarks is None:
        if not face_boxes:
            return None
        return Body(w, h, np.zeros((33, 3)), np.zeros((h, w), np.float32), face_boxes, face_points)
    landmarks = np.array(
        [(p.x * w, p.y * h, p.visibility) for p in pose.pose_landmarks.landmark], dtype=np.float64
    )
    world = None
    if pose.pose_world_landmarks is not None:
        world = np.array([(p.x, p.y, p.z) for p in pose.pose_world_landmarks.landmark], dtype=np.float64)
    mask = pose.segmentation_mask
    if mask.shape != (h, w):
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    return Body(w, h, landmarks, mask.astype(np.float32), face_boxes, face_points, world)


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
    _count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    areas = sorted((int(a) for a in stats[1:, cv2.CC_STAT_AREA]), reverse=True)
    if not areas:
        return 0
    total = mask.shape[0] * mask.shape[1]
    return sum(1 for a in areas if a >= 0.25 * areas[0] and a >= 0.015 * total)


# -- facing the camera: several cues, each a vote -------------------------------------------------
# A single ratio is not enough: on a slim person in a fitted dress BlazePose can fold its own torso
# (shoulders drawn in to the neck, hips together) and report a sideways pose for a body that faces
# the camera. The torso's cues all come from that one pose estimate, so they form one vote; the face
# detector, the head and feet landmarks, the silhouette and the landmarks' visibility vote apart.
# Each cue votes front up to one limit, sideways beyond another, and abstains between them. The limits
# come from body proportions (a chest seen from the side, a foot's length, a head's turn), with the
# front limits below what the shared photos reach when mirrored, rotated, cropped or squeezed to 0.8.
FRONT, UNSURE, SIDEWAYS = 1, 0, -1


@dataclass(frozen=True)
class Cue:
    """One measurement of the body's direction: its value and its vote (FRONT, UNSURE or SIDEWAYS)."""

    name: str
    value: float
    vote: int


@dataclass
class Facing:
    """Votes on "the person faces the camera"; refused only when sideways votes outnumber the rest."""

    cues: list[Cue]
    votes: dict[
        str, int
    ]  # torso (its three cues as one), visibility_gap, face_yaw, head_yaw, feet_turn, silhouette

    @property
    def sideways_votes(self) -> int:
        return sum(1 for v in self.votes.values() if v == SIDEWAYS)

    @property
    def front_votes(self) -> int:
        return sum(1 for v in self.votes.values() if v == FRONT)

    @property
    def front(self) -> bool:
        """Sideways needs two voters agreeing and more than say front (a tie keeps the photo)."""
        return not (self.sideways_votes >= 2 and self.sideways_votes > self.front_votes)

    def details(self) -> dict[str, float]:
        out: dict[str, float] = {c.name: round(c.value, 2) for c in self.cues}
        out.update(front_votes=self.front_votes, sideways_votes=self.sideways_votes)
        return out


def _vote(value: float, front: float, sideways: float) -> int:
    """FRONT up to ``front``, SIDEWAYS from ``sideways`` on (either direction), UNSURE between."""
    sign = 1.0 if sideways > front else -1.0
    if sign * (value - front) <= 0:
        return FRONT
    if sign * (value - sideways) >= 0:
        return SIDEWAYS
    return UNSURE


def _inside(body: Body, indices: tuple[int, ...], visibility: float = 0.5) -> bool:
    """All these landmarks are in the picture with at least ``visibility``."""
    return all(body.visible(i, visibility) for i in indices)


def _yaw_degrees(offset: float, half_span: float) -> float:
    """A round head's turn from the nose's offset off the ears' middle (tan(turn) = offset / half span)."""
    return float(np.degrees(np.arctan2(abs(offset), max(half_span, 1e-6))))


def _torso_cues(body: Body) -> list[Cue]:
    """Shoulder and hip spacing against the torso's length, and the shoulders' and hips' turn in depth."""
    torso = max(body.torso_length, 1.0)
    shoulders = body.shoulder_width / torso
    hips = float(np.linalg.norm(body.point(HIP_L) - body.point(HIP_R))) / torso
    # Facing the camera, the shoulder joints are ~0.6 of the torso apart and the hip joints ~0.35.
    cues = [
        Cue("shoulder_ratio", shoulders, _vote(shoulders, 0.50, 0.42)),
        Cue("hip_ratio", hips, _vote(hips, 0.26, 0.20)),
    ]
    if body.world is not None:
        # Seen from the side, a body's left and right joints differ in depth rather than in x.
        yaws = [
            float(
                np.degrees(
                    np.arctan2(
                        abs(body.world[a, 2] - body.world[b, 2]), abs(body.world[a, 0] - body.world[b, 0])
                    )
                )
            )
            for a, b in ((SHOULDER_L, SHOULDER_R), (HIP_L, HIP_R))
        ]
        depth = float(np.mean(yaws))
        cues.append(Cue("depth_yaw", depth, _vote(depth, 30.0, 50.0)))
    return cues


def _face_cues(body: Body, face_indices: list[int]) -> list[Cue]:
    """The face detector's keypoints: the nose's offset along the eye line, and the eyes' spacing."""
    candidates = [i for i in face_indices if i < len(body.face_points) and len(body.face_points[i]) >= 3]
    if not candidates:
        return []
    index = max(candidates, key=lambda i: body.faces[i][4])
    x0, _, x1, _, _ = body.faces[index]
    right_eye, left_eye, nose = body.face_points[index][:3]
    axis = left_eye - right_eye
    eyes = float(np.linalg.norm(axis))
    offset = float(np.dot(nose - (left_eye + right_eye) / 2, axis / max(eyes, 1e-6)))
    yaw = abs(offset) / max(eyes, 1.0)
    spacing = eyes / max(x1 - x0, 1.0)
    # Front: nose near the eyes' middle with the eyes well apart. Sideways: nose out at an eye or beyond
    # (a narrow but straight face, e.g. a squeezed photo, is not a turned face: it abstains).
    vote = FRONT if yaw <= 0.45 and spacing >= 0.25 else SIDEWAYS if yaw >= 0.8 else UNSURE
    return [Cue("face_yaw", yaw, vote), Cue("face_eyes", spacing, UNSURE)]


def _head_cue(body: Body) -> list[Cue]:
    """BlazePose's nose against its two ears (only when the whole head is in the picture)."""
    if not _inside(body, (NOSE, 2, 5, 7, 8)):
        return []
    ear_r, ear_l, nose = body.point(8), body.point(7), body.point(NOSE)
    axis = ear_l - ear_r
    span = float(np.linalg.norm(axis))
    offset = float(np.dot(nose - (ear_l + ear_r) / 2, axis / max(span, 1e-6)))
    yaw = _yaw_degrees(offset, span / 2)
    return [Cue("head_yaw", yaw, _vote(yaw, 25.0, 65.0))]


def _feet_cue(body: Body) -> list[Cue]:
    """Heel to toe across the picture: feet facing the camera are short and upright there."""
    feet = ((HEEL_L, 31), (HEEL_R, 32))
    # Both feet in the picture and one of them clearly seen (a turned body may hide the far foot).
    if not _inside(body, (HEEL_L, HEEL_R, 31, 32), 0.0) or not any(_inside(body, foot) for foot in feet):
        return []
    # A foot is about half a torso long: seen from the side, heel to toe runs ~0.4 torso across the picture.
    runs = [body.landmarks[toe, 0] - body.landmarks[heel, 0] for heel, toe in feet]
    turn = float(min(abs(r) for r in runs)) / max(body.torso_length, 1.0)
    vote = _vote(turn, 0.22, 0.32)
    if (
        vote == SIDEWAYS and runs[0] * runs[1] < 0
    ):  # both feet turned out, opposite ways: a stance, not a turn
        vote = UNSURE
    return [Cue("feet_turn", turn, vote)]


def _silhouette_cue(body: Body) -> list[Cue]:
    """The person mask's width across the chest, relative to the person's height."""
    binary = body.mask >= 0.5
    rows = np.flatnonzero(binary.any(axis=1))
    if len(rows) == 0:
        return []
    feet_y = max(body.landmarks[i, 1] for i in (ANKLE_L, ANKLE_R, HEEL_L, HEEL_R))
    height = min(max(float(rows[-1]), float(feet_y)), body.height - 1) - float(rows[0])
    shoulders_y = (body.landmarks[SHOULDER_L, 1] + body.landmarks[SHOULDER_R, 1]) / 2
    hips_y = (body.landmarks[HIP_L, 1] + body.landmarks[HIP_R, 1]) / 2
    centre = float(np.mean(body.landmarks[[SHOULDER_L, SHOULDER_R, HIP_L, HIP_R], 0]))
    widths = []
    for share in np.linspace(0.15, 0.45, 7):
        y = round(shoulders_y + share * (hips_y - shoulders_y))
        if not 0 <= y < body.height:
            continue
        xs = np.flatnonzero(binary[y])
        if len(xs) == 0:
            continue
        runs = np.cumsum(np.r_[1, np.diff(xs) != 1])  # label each run of mask pixels; keep the torso's
        run = xs[runs == runs[np.argmin(np.abs(xs - centre))]]
        widths.append(run[-1] - run[0] + 1)
    if not widths or height <= 0:
        return []
    share = float(np.median(widths)) / height
    # A chest seen from the side is about 0.13-0.16 of the height; from the front with the arms beside
    # it, 0.2 or more. Slim people seen from the front fall between: the cue then abstains.
    return [Cue("silhouette", share, _vote(share, 0.21, 0.13))]


def _visibility_cue(body: Body) -> list[Cue]:
    """BlazePose's own belief that it sees both sides: a turned body hides one side's joints (the arms
    are left out: an arm held behind the back hides an elbow of a body that faces the camera)."""
    pairs = ((SHOULDER_L, SHOULDER_R), (HIP_L, HIP_R), (KNEE_L, KNEE_R))
    gap = max(abs(float(body.landmarks[a, 2] - body.landmarks[b, 2])) for a, b in pairs)
    return [Cue("visibility_gap", gap, _vote(gap, 0.15, 0.35))]


def judge_facing(body: Body, face_indices: list[int] | None = None) -> Facing:
    """Collect the cues on ``body``'s direction and their votes (``face_indices``: faces to use, default all)."""
    faces = list(range(len(body.faces))) if face_indices is None else face_indices
    torso = _torso_cues(body)
    cues = torso + _visibility_cue(body) + _face_cues(body, faces) + _head_cue(body) + _feet_cue(body)
    cues += _silhouette_cue(body)
    torso_sum = sum(c.vote for c in torso)
    votes = {"torso": FRONT if torso_sum > 0 else SIDEWAYS if torso_sum < 0 else UNSURE}
    for cue in cues[len(torso) :]:
        if cue.name != "face_eyes":
            votes[cue.name] = cue.vote
    return Facing(cues, votes)


def check_person(image: ImageInput, body: Body | None = None) -> PersonCheck:
    """Is this a usable try-on photo: one person, head to feet, facing the camera, lit and sharp?"""
    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    brightness = float(gray.mean())
    small = (
        cv2.resize(gray, (max(1, round(w * 512 / h)), 512), interpolation=cv2.INTER_AREA) if h > 512 else gray
    )
    sharpness = float(cv2.Laplacian(small, cv2.CV_64F).var())
    details = {"brightness": round(brightness, 1), "sharpness": round(sharpness, 1)}
    if brightness < 45:
        return PersonCheck(False, "too_dark", ["The photo is too dark: take it in good light."], details)
    if sharpness < 12:
        return PersonCheck(
            False, "blurry", ["The photo is blurred: hold the camera still, in focus."], details
        )

    body = body if body is not None else find_body(rgb)
    faces = [i for i, f in enumerate(body.faces if body else []) if (f[3] - f[1]) >= 0.025 * h]
    details["faces"] = len(faces)
    if body is None or not body.landmarks[:, 2].any():
        if len(faces) >= 2:
            return PersonCheck(False, "several_people", ["More than one person is in the photo."], details)
        return PersonCheck(False, "no_person", ["No person was found in the photo."], details)
    blobs = _people_in_mask(body.mask)
    details["mask_blobs"] = blobs
    if len(faces) >= 2 or blobs >= 2 or _second_person(rgb, body):
        return PersonCheck(
            False,
            "several_people",
            ["More than one person is in the photo: upload a photo of you alone."],
            details,
        )
    coverage = float(body.binary_mask().mean())
    details["coverage"] = round(coverage, 3)
    if coverage < 0.03:
        return PersonCheck(
            False, "no_person", ["No person was found in the photo (or the person is very small)."], details
        )

    reasons = []
    one_side_hidden = 0  # pairs with one joint seen and the other inside the picture but hidden
    for name, points in (
        ("shoulders", (SHOULDER_L, SHOULDER_R)),
        ("hips", (HIP_L, HIP_R)),
        ("knees", (KNEE_L, KNEE_R)),
    ):
        seen = [body.visible(p) for p in points]
        if not all(seen):
            reasons.append(f"The {name} are not in the picture.")
            one_side_hidden += any(seen) and all(body.visible(p, 0.0) for p in points)
    feet_in = any(body.visible(p, 0.3) for p in (ANKLE_L, ANKLE_R, HEEL_L, HEEL_R)) and all(
        body.landmarks[p, 1] < h * 1.01 for p in (ANKLE_L, ANKLE_R)
    )
    if not feet_in:
        reasons.append("The feet are not in the picture: show the whole body, head to feet.")
    head_top = min(body.landmarks[p, 1] for p in (SHOULDER_L, SHOULDER_R))
    if head_top < 0.03 * h:
        reasons.append("The head is cut off: leave room above the shoulders.")
    if reasons:
        if one_side_hidden == len(reasons):  # a body turned sideways hides its far side: say so instead
            facing = judge_facing(body, faces)
            if not facing.front:
                details.update(facing.details())
                return PersonCheck(
                    False, "not_front_facing", ["The person is turned sideways: face the camera."], details
                )
        return PersonCheck(False, "not_full_body", reasons, details)

    torso = body.torso_length
    hips_y = (body.landmarks[HIP_L, 1] + body.landmarks[HIP_R, 1]) / 2
    ankles_y = (body.landmarks[ANKLE_L, 1] + body.landmarks[ANKLE_R, 1]) / 2
    leg_ratio = float((ankles_y - hips_y) / max(torso, 1.0))
    details["leg_ratio"] = round(leg_ratio, 2)
    if leg_ratio < 1.15:
        return PersonCheck(False, "not_full_body", ["Sitting, crouching or lying: stand straight."], details)
    facing = judge_facing(body, faces)
    details.update(facing.details())
    if not facing.front:
        return PersonCheck(
            False, "not_front_facing", ["The person is turned sideways: face the camera."], details
        )
    return PersonCheck(True, "ok", [], details)
