"""Settings of the target builders: the run config's ``targets`` section plus token geometry."""

from __future__ import annotations

from dataclasses import dataclass

from mme.errors import ConfigError

TRAJ_NORMS = ("patch_std", "patch_std_int", "none")


@dataclass
class TargetSettings:
    """How targets are computed (docs/method.md §4; fields in docs/motion.md, "Targets")."""

    traj_norm: str = "patch_std"
    traj_std_floor: float = 0.15
    hog_cell: int = 8
    hog_bins: int = 9
    eps: float = 1e-6

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.traj_norm not in TRAJ_NORMS:
            raise ConfigError(f"targets.traj_norm must be one of {TRAJ_NORMS}, got {self.traj_norm!r}")
        _check_integers(self, ("hog_cell", "hog_bins"), "targets.")
        if not self.traj_std_floor >= 0:
            raise ConfigError(f"targets.traj_std_floor must be >= 0, got {self.traj_std_floor!r}")
        if not self.eps >= 0:
            raise ConfigError(f"targets.eps must be >= 0, got {self.eps!r}")


@dataclass
class TargetConfig(TargetSettings):
    """The settings plus the token and trajectory geometry, derived by ``PretrainConfig.target_config()``."""

    patch_size: int = 16
    tubelet_size: int = 2
    traj_steps: int = 4
    traj_stride: int = 8
    max_displacement: float = 20.0

    def validate(self) -> None:
        super().validate()
        _check_integers(self, ("patch_size", "tubelet_size", "traj_steps", "traj_stride"), "")
        if self.tubelet_size < 2:
            raise ConfigError(
                "tubelet_size must be >= 2 (HOG is taken at each tubelet's second frame), "
                f"got {self.tubelet_size}"
            )
        for name, divisor in (("traj_stride", self.traj_stride), ("hog_cell", self.hog_cell)):
            if self.patch_size % divisor:
                raise ConfigError(f"{name}={divisor} must divide patch_size={self.patch_size}")
        if not self.max_displacement > 0:
            raise ConfigError(f"max_displacement must be > 0, got {self.max_displacement!r}")

    @property
    def traj_points(self) -> int:
        """Trajectory points per token (4 = 2x2)."""
        return (self.patch_size // self.traj_stride) ** 2

    @property
    def hog_cells_per_token(self) -> int:
        """HOG cells per token (4 = 2x2)."""
        return (self.patch_size // self.hog_cell) ** 2


def _check_integers(config: object, names: tuple[str, ...], prefix: str) -> None:
    for name in names:
        value = getattr(config, name)
        if int(value) != value or value < 1:
            raise ConfigError(f"{prefix}{name} must be an integer >= 1, got {value!r}")
