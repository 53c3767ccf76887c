"""Optical flow, dense point tracking, HOG, trajectory files and their extraction (docs/motion.md)."""

import importlib
from typing import Any

from mme.motion.config import DEFAULT_OFFLINE_FLOW, DEFAULT_ONLINE_FLOW, TrajectoryConfig
from mme.motion.flow import create_flow, flow_backends, set_cv2_threads
from mme.motion.resample import resample_trajectories
from mme.motion.store import TrajectoryMeta, read_trajectories, read_trajectory_meta
from mme.motion.tracking import grid_seeds, track_tubelets, track_video

# The torch-based parts load on first use: extraction workers need only numpy and OpenCV, and
# skipping torch's import (~2 s) makes them start at once.
_LAZY = {
    "clip_trajectories": "mme.motion.online",
    "dense_clip_trajectories": "mme.motion.online",
    "hog_along_trajectories": "mme.motion.hog",
    "hog_at_points": "mme.motion.hog",
    "hog_cells": "mme.motion.hog",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mme.motion' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_OFFLINE_FLOW",
    "DEFAULT_ONLINE_FLOW",
    "TrajectoryConfig",
    "TrajectoryMeta",
    "clip_trajectories",
    "create_flow",
    "dense_clip_trajectories",
    "flow_backends",
    "grid_seeds",
    "hog_along_trajectories",
    "hog_at_points",
    "hog_cells",
    "read_trajectories",
    "read_trajectory_meta",
    "resample_trajectories",
    "set_cv2_threads",
    "track_tubelets",
    "track_video",
]
