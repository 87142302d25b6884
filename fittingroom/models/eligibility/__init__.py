"""Try-on eligibility classifier (issue 5): which product images can feed virtual try-on.

EfficientNet-Lite0 ImageNet features (``fittingroom.models.encoders.offline.EfficientNetLiteFeatures``;
EfficientNet-B0 with locally supplied weights as an option)
with two logistic-regression heads, ``photo_type`` and ``garment_category``, and a threshold
chosen for precision >= 0.99 (``fittingroom.models.eligibility.model``). Ingest calls ``load_annotator``.
Nothing heavy is imported here: the model loads when ``load_annotator`` is called.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fittingroom.models.eligibility.annotator import EligibilityAnnotator

__all__ = ["load_annotator"]


def load_annotator(settings: Any = None) -> EligibilityAnnotator:
    """Load the backbone and the trained head (``ELIGIBILITY_HEAD_PATH`` or the packaged one).

    ``settings``: an ``EligibilitySettings``, or a ``fittingroom.settings.CoreSettings`` (as passed
    by ingest; its ``device`` is used unless ``ELIGIBILITY_DEVICE`` is set), or None (environment).

    The backbone is loaded on the first call of the annotator's ``features`` (ingest with the
    offline encoder passes the encoder's own image features, so it is then never built).

    Raises:
        FileNotFoundError: the head is missing (names the path); a missing backbone file is
            raised on the first image that needs it.
        ValueError: the head was trained on another feature than the configured backbone.
    """
    from fittingroom.models.eligibility.annotator import EligibilityAnnotator
    from fittingroom.models.eligibility.features import feature_name, load_backbone
    from fittingroom.models.eligibility.model import EligibilityHead
    from fittingroom.models.eligibility.settings import EligibilitySettings

    if isinstance(settings, EligibilitySettings):
        s = settings
    else:
        s = EligibilitySettings()
        device = getattr(settings, "device", None)
        if not s.device and device:
            s = s.model_copy(update={"device": device})
    head = EligibilityHead.load(s.resolved_head_path)
    name = feature_name(s)
    if head.feature != name:
        raise ValueError(
            f"eligibility head {s.resolved_head_path} was trained on {head.feature!r} features, "
            f"the configured backbone ({s.backbone.value}) gives {name!r}"
        )
    backbone: list[Any] = []  # built on the first call: ingest usually passes the encoder's features
    lock = threading.Lock()

    def features(images: Any) -> Any:
        with lock:
            if not backbone:
                backbone.append(load_backbone(s))
        return backbone[0](images, s.batch_size)

    return EligibilityAnnotator(
        features, head, threshold=s.threshold, batch_size=s.batch_size, feature_name=name
    )
