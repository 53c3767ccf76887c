"""Dense optical flow backends (OpenCV) behind one interface (docs/motion.md, "Flow backends")."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

import cv2
import numpy as np

from mme.errors import ConfigError

# Frame sizes for which a DISFlow keeps an OpenCV object (see DISFlow).
_DIS_SIZES_KEPT = 8


class FlowBackend(Protocol):
    """Dense optical flow from one grayscale uint8 frame to the next."""

    name: str

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """(H, W) uint8, (H, W) uint8 -> float32 (H, W, 2) (dx, dy) in pixels."""
        ...


def set_cv2_threads(threads: int) -> None:
    """Set OpenCV's process-wide thread count (1 in loader and extraction workers)."""
    cv2.setNumThreads(int(threads))


def _check_pair(prev: np.ndarray, nxt: np.ndarray) -> None:
    if prev.dtype != np.uint8 or nxt.dtype != np.uint8 or prev.ndim != 2 or prev.shape != nxt.shape:
        raise ValueError(
            f"flow needs two grayscale uint8 (H, W) frames of one size, got {prev.dtype}{prev.shape} "
            f"and {nxt.dtype}{nxt.shape}"
        )


class DISFlow:
    """OpenCV DIS optical flow with a preset, optionally tuned."""

    def __init__(
        self,
        name: str,
        preset: int,
        finest_scale: int | None = None,
        patch_stride: int | None = None,
        gradient_iterations: int | None = None,
        refinement_iterations: int | None = None,
    ) -> None:
        self.name = name
        self._settings = (preset, finest_scale, patch_stride, gradient_iterations, refinement_iterations)
        # One OpenCV object per frame size. OpenCV's DIS (4.x/5.0, ULTRAFAST and FAST presets)
        # keeps state across calls: after a call on smaller frames, the flow of a larger pair
        # differs by up to half a pixel from a fresh object's (tests/motion/test_flow.py). Every
        # video has one frame size, so a few cached objects keep results independent of history.
        self._by_size: OrderedDict[tuple[int, int], cv2.DISOpticalFlow] = OrderedDict()

    def _object_for(self, size: tuple[int, int]) -> cv2.DISOpticalFlow:
        dis = self._by_size.get(size)
        if dis is not None:
            self._by_size.move_to_end(size)
            return dis
        preset, finest_scale, patch_stride, gradient_iterations, refinement_iterations = self._settings
        dis = cv2.DISOpticalFlow_create(preset)
        if finest_scale is not None:
            dis.setFinestScale(finest_scale)
        if patch_stride is not None:
            dis.setPatchStride(patch_stride)
        if gradient_iterations is not None:
            dis.setGradientDescentIterations(gradient_iterations)
        if refinement_iterations is not None:
            dis.setVariationalRefinementIterations(refinement_iterations)
        self._by_size[size] = dis
        if len(self._by_size) > _DIS_SIZES_KEPT:
            self._by_size.popitem(last=False)
        return dis

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        _check_pair(prev, nxt)
        # Passing None (not a previous result) makes DIS start from zero flow every time:
        # a given flow argument would be used as its initial guess.
        return self._object_for(prev.shape).calc(prev, nxt, None)


class FarnebackFlow:
    """OpenCV Farneback flow (pyramid of 4 levels, 15 px window, 3 iterations)."""

    def __init__(self, name: str = "farneback") -> None:
        self.name = name
        self._flow = cv2.FarnebackOpticalFlow_create(
            numLevels=4, pyrScale=0.5, fastPyramids=False, winSize=15, numIters=3, polyN=5, polySigma=1.1
        )

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        _check_pair(prev, nxt)
        return self._flow.calc(prev, nxt, None)


class TVL1Flow:
    """TV-L1 flow from OpenCV's contrib build (``cv2.optflow``), the authors' choice of flow."""

    def __init__(self, name: str = "tvl1") -> None:
        optflow = getattr(cv2, "optflow", None)
        if optflow is None:
            raise ConfigError(
                "flow backend 'tvl1' needs OpenCV's contrib build (cv2.optflow), which is not installed: "
                "pip uninstall -y opencv-python-headless && pip install 'mme[tvl1]'"
            )
        self.name = name
        self._flow = optflow.DualTVL1OpticalFlow_create()

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        _check_pair(prev, nxt)
        return self._flow.calc(prev, nxt, None)


_BACKENDS: dict[str, Callable[[], FlowBackend]] = {
    "dis_ultrafast": lambda: DISFlow("dis_ultrafast", cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
    "dis_fast": lambda: DISFlow("dis_fast", cv2.DISOPTICAL_FLOW_PRESET_FAST),
    "dis_medium": lambda: DISFlow("dis_medium", cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
    "dis_online": lambda: DISFlow("dis_online", cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, patch_stride=3),
    "dis_halfres": lambda: DISFlow("dis_halfres", cv2.DISOPTICAL_FLOW_PRESET_FAST, finest_scale=1),
    "dis_fine": lambda: DISFlow(
        "dis_fine", cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, finest_scale=0, patch_stride=4, gradient_iterations=16
    ),
    "farneback": FarnebackFlow,
    "tvl1": TVL1Flow,
}


def flow_backends() -> tuple[str, ...]:
    """Names accepted by :func:`create_flow` (``tvl1`` needs the opencv-contrib build)."""
    return tuple(_BACKENDS)


def create_flow(name: str) -> FlowBackend:
    """Create the flow backend called ``name`` (docs/motion.md, "Flow backends")."""
    factory = _BACKENDS.get(name)
    if factory is None:
        raise ConfigError(f"unknown flow backend {name!r}; choose one of {', '.join(_BACKENDS)}")
    return factory()


@lru_cache(maxsize=4)
def shared_flow(name: str) -> FlowBackend:
    """The process's one backend called ``name`` (created on first use, then reused)."""
    return create_flow(name)


def to_gray(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., H, W, 3) -> grayscale uint8 (..., H, W) with OpenCV's BT.601 weights."""
    if frames.dtype != np.uint8 or frames.shape[-1] != 3:
        raise ValueError(f"expected RGB uint8 frames (..., H, W, 3), got {frames.dtype}{frames.shape}")
    if frames.ndim == 3:
        return cv2.cvtColor(frames, cv2.COLOR_RGB2GRAY)
    flat = frames.reshape(-1, *frames.shape[-3:])
    gray = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in flat])
    return gray.reshape(*frames.shape[:-1])
