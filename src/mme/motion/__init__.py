"""mme.motion: optical flow, dense point tracking, HOG, trajectory files and their extraction.

The public surface: :class:`TrajectoryConfig`; online trajectories per clip
(:func:`clip_trajectories`, :func:`dense_clip_trajectories`); offline trajectory files
(:func:`read_trajectories`, written by ``mme extract`` / :mod:`mme.motion.extract`) and their
resampling to a clip's geometry (:func:`resample_trajectories`); flow backends
(:func:`create_flow`); HOG (:func:`hog_cells`, :func:`hog_along_trajectories`).
"""

from mme.motion.config import DEFAULT_OFFLINE_FLOW, DEFAULT_ONLINE_FLOW, TrajectoryConfig
from mme.motion.flow import create_flow, flow_backends, set_cv2_threads
from mme.motion.hog import hog_along_trajectories, hog_at_points, hog_cells
from mme.motion.online import clip_trajectories, dense_clip_trajectories
from mme.motion.resample import resample_trajectories
from mme.motion.store import TrajectoryMeta, read_trajectories, read_trajectory_meta
from mme.motion.tracking import grid_seeds, track_tubelets, track_video

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
