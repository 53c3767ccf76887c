"""Camera-motion compensation: flow relative to a fitted homography (docs/motion.md, "Camera motion")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

from mme.errors import DataError
from mme.motion.flow import FlowBackend

CAMERA_MOTIONS = ("none", "homography")

# Frames with a shorter side than this are not fitted: on the known-motion texture the fits err
# at the frame's edges by up to 1.2 px at 24 px, 0.46 px at 32, 0.30 at 48 and 0.11 at 64.
MIN_SIDE = 64
# Corners and LK window by the known-motion pans: 200 corners fit the background 15% better than
# 100; a 9 px window beats 15 and 21 px (it straddles a moving object's edge less) at half the time.
MAX_CORNERS = 200
CORNER_QUALITY = 0.01
LK_WINDOW = 9
LK_LEVELS = 3
LK_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)
# RANSAC's inlier distance. Larger ones let points on a moving object's edge into the fit and bias
# it (on the known-motion pans the homography's error doubles at 1 px and quadruples at 2 px);
# 0.3 px gains 0.006 px on the background, too little to risk losing inliers to real noise.
RANSAC_THRESHOLD = 0.5
MIN_INLIERS = 12  # 3x the 4 correspondences a homography needs: fewer is too easily a chance fit
MAX_AREA_CHANGE = 2.0  # consecutive frames never zoom by 2x: such a fit is wrong

FALLBACK_REASONS = (
    "frame_too_small",
    "too_few_corners",
    "too_few_matches",
    "degenerate_homography",
    "nonfinite_flow",
)


@dataclass
class CameraStats:
    """Frame pairs compensated and fallen back, with reasons; fallbacks listed by their first frame."""

    pairs: int = 0
    fallbacks: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    fallback_pairs: list[int] = field(default_factory=list)

    def record(self, first_frame: int, reason: str | None) -> None:
        """Count one frame pair: compensated (``reason`` None) or fallen back for ``reason``."""
        if reason is not None and reason not in FALLBACK_REASONS:
            raise ValueError(f"unknown fallback reason {reason!r}; expected one of {FALLBACK_REASONS}")
        self.pairs += 1
        if reason is not None:
            self.fallbacks += 1
            self.reasons[reason] += 1
            self.fallback_pairs.append(int(first_frame))

    def summary(self) -> str:
        """One line for logs, e.g. ``2 of 31 frame pairs fell back (too_few_corners: 2)``."""
        reasons = ", ".join(f"{name}: {count}" for name, count in sorted(self.reasons.items()))
        return f"{self.fallbacks} of {self.pairs} frame pairs fell back" + (
            f" ({reasons})" if reasons else ""
        )


def estimate_homography(prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The camera's homography from ``prev`` to ``nxt`` (gray uint8), or ``(None, reason)``."""
    height, width = prev.shape
    if min(height, width) < MIN_SIDE:
        return None, "frame_too_small"
    min_distance = max(3, min(height, width) // 20)  # spread the corners over the frame
    corners = cv2.goodFeaturesToTrack(prev, MAX_CORNERS, CORNER_QUALITY, min_distance, blockSize=3)
    if corners is None or len(corners) < MIN_INLIERS:
        return None, "too_few_corners"
    followed, status, _ = cv2.calcOpticalFlowPyrLK(
        prev, nxt, corners, None, winSize=(LK_WINDOW, LK_WINDOW), maxLevel=LK_LEVELS, criteria=LK_CRITERIA
    )
    found = status.ravel() == 1
    if found.sum() < MIN_INLIERS:
        return None, "too_few_matches"
    homography, inliers = cv2.findHomography(corners[found], followed[found], cv2.RANSAC, RANSAC_THRESHOLD)
    if homography is None or inliers is None or int(inliers.sum()) < MIN_INLIERS:
        return None, "too_few_matches"
    return plausible_homography(homography, width, height)


def plausible_homography(
    homography: np.ndarray, width: int, height: int
) -> tuple[np.ndarray | None, str | None]:
    """The normalised homography when it maps the frame onto a plausible next frame, else a reason."""
    if not np.isfinite(homography).all() or abs(homography[2, 2]) < 1e-12:
        return None, "degenerate_homography"
    homography = homography / homography[2, 2]
    frame = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]])
    mapped = np.concatenate([frame, np.ones((4, 1))], axis=1) @ homography.T
    if not (mapped[:, 2] > 0).all():  # a corner maps through infinity: the frame is torn apart
        return None, "degenerate_homography"
    quad = (mapped[:, :2] / mapped[:, 2:]).astype(np.float32)
    # The signed area ratio is negative for a mirrored frame; a fold makes the quad non-convex.
    ratio = cv2.contourArea(quad, oriented=True) / cv2.contourArea(frame.astype(np.float32), oriented=True)
    if not cv2.isContourConvex(quad) or not 1 / MAX_AREA_CHANGE <= ratio <= MAX_AREA_CHANGE:
        return None, "degenerate_homography"
    return homography, None


def warp_back(nxt: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """``out(x) = nxt(H x)``, bilinear (bicubic biases sub-pixel phases: docs/motion.md)."""
    height, width = nxt.shape
    return cv2.warpPerspective(
        nxt,
        homography,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def pair_flow(
    backend: FlowBackend,
    prev: np.ndarray,
    nxt: np.ndarray,
    camera_motion: str,
    stats: CameraStats | None = None,
    first_frame: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Flow of one frame pair and the homography it is relative to (None: not compensated)."""
    if camera_motion == "homography":
        homography, reason = estimate_homography(prev, nxt)
        if homography is not None:
            residual = backend(prev, warp_back(nxt, homography))
            if np.isfinite(residual).all():
                if stats is not None:
                    stats.record(first_frame, None)
                return residual, homography
            reason = "nonfinite_flow"
        if stats is not None:
            stats.record(first_frame, reason)
    elif camera_motion != "none":
        raise ValueError(f"camera_motion must be one of {CAMERA_MOTIONS}, got {camera_motion!r}")
    flow = backend(prev, nxt)
    if not np.isfinite(flow).all():
        raise DataError(
            f"optical flow {backend.name!r} gave non-finite values for the frame pair "
            f"starting at frame {first_frame} ({prev.shape[1]}x{prev.shape[0]})"
        )
    return flow, None


def apply_homographies(homographies: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points (N, M, 2) through homographies (N, 3, 3), in float64 so identity is exact."""
    x, y = points[..., 0].astype(np.float64), points[..., 1].astype(np.float64)
    h = homographies[:, None]  # (N, 1, 3, 3) broadcast over M
    w = h[..., 2, 0] * x + h[..., 2, 1] * y + h[..., 2, 2]
    out_x = (h[..., 0, 0] * x + h[..., 0, 1] * y + h[..., 0, 2]) / w
    out_y = (h[..., 1, 0] * x + h[..., 1, 1] * y + h[..., 1, 2]) / w
    return np.stack([out_x, out_y], axis=-1).astype(points.dtype, copy=False)
