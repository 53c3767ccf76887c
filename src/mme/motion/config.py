"""Trajectory settings shared by the online and offline paths (plain fields, for omegaconf)."""

from __future__ import annotations

from dataclasses import dataclass

from mme.errors import ConfigError

# Defaults chosen by the known-motion measurements recorded in docs/motion.md:
# the online default is the fastest backend whose trajectories keep the motion inside a patch
# (online and offline patch-std targets agree within 10%, benchmarks/traj_energy.py),
# the offline default is the most accurate one that still extracts a video in about its duration.
DEFAULT_ONLINE_FLOW = "dis_halfres"
DEFAULT_OFFLINE_FLOW = "dis_fine"


@dataclass
class TrajectoryConfig:
    """How dense trajectories are computed (docs/method.md §4.1; fields in docs/motion.md)."""

    flow: str = DEFAULT_ONLINE_FLOW
    steps: int = 4
    grid_stride: int = 8
    median_filter: bool = True
    max_displacement: float = 20.0
    camera_motion: str = "none"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        from mme.motion.camera import CAMERA_MOTIONS
        from mme.motion.flow import flow_backends

        if self.flow not in flow_backends():
            raise ConfigError(
                f"traj.flow: unknown flow backend {self.flow!r}; choose one of {flow_backends()}"
            )
        if int(self.steps) != self.steps or self.steps < 1:
            raise ConfigError(f"traj.steps must be an integer >= 1, got {self.steps!r}")
        if int(self.grid_stride) != self.grid_stride or self.grid_stride < 1:
            raise ConfigError(f"traj.grid_stride must be an integer >= 1, got {self.grid_stride!r}")
        if not self.max_displacement > 0:
            raise ConfigError(f"traj.max_displacement must be > 0, got {self.max_displacement!r}")
        if self.camera_motion not in CAMERA_MOTIONS:
            raise ConfigError(
                f"traj.camera_motion: unknown value {self.camera_motion!r}; choose one of {CAMERA_MOTIONS}"
            )
