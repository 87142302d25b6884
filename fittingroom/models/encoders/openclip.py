"""open_clip encoder: any open_clip architecture with a pretrained tag, a Hugging Face id or a local checkpoint.

Production default (documented in the README): Marqo-FashionSigLIP,
``model="hf-hub:Marqo/marqo-fashionSigLIP"`` (model card:
https://huggingface.co/Marqo/marqo-fashionSigLIP, Apache-2.0), a SigLIP ViT-B/16
fine-tuned on fashion products. Any ``open_clip.list_pretrained()`` pair works
too (``model="ViT-B-32", pretrained="laion2b_s34b_b79k"``), and so does a local
checkpoint (``pretrained="/path/to/open_clip_pytorch_model.bin"``).

No weights can be downloaded at run time in an offline deployment: a missing
checkpoint raises :class:`EncoderWeightsMissing` that says where to put it.

Stored vector of one product image = ``[e_img, e_txt] / sqrt(2)`` where ``e_img``
is the image embedding and ``e_txt`` the text embedding of its
``document_text``, both L2-normalised, so ``dim = 2 * D``. A query is fused in
the shared CLIP space, ``q = normalize(w * e_img(query) + (1 - w) * e_txt(query))``,
and sent as ``[q, q] / sqrt(2)``: its score is the mean of the cross-modal
(query vs product image) and the query-vs-product-text cosine.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fittingroom.images import flatten_alpha
from fittingroom.models.encoders.base import Encoder, Query, l2_normalize
from fittingroom.settings import resolve_device

log = logging.getLogger(__name__)


class EncoderWeightsMissing(RuntimeError):
    """The configured weights are not available locally (and nothing is downloaded here)."""


class OpenClipEncoder(Encoder):
    """Image+text encoder from ``open_clip``.

    Args:
        model: open_clip architecture name (``"ViT-B-16-SigLIP"``) or ``"hf-hub:ORG/NAME"``.
        pretrained: pretrained tag, local checkpoint path, or None (random init: tests only,
            requires ``allow_random_init=True``).
        model_config: optional path of an open_clip model-config JSON to register first
            (custom or tiny architectures).
        cache_dir: where open_clip/Hugging Face look for downloaded weights.
        device: ``"auto"`` picks CUDA when present.
        batch_size: images or texts per forward pass.
        allow_download: let open_clip fetch missing weights from the hub (a build step, never at
            service start-up); by default the hub is put in offline mode so a miss fails at once.

    Raises:
        EncoderWeightsMissing: the weights are not available locally.
    """

    def __init__(
        self,
        model: str = "hf-hub:Marqo/marqo-fashionSigLIP",
        pretrained: str | None = None,
        model_config: str | Path | None = None,
        cache_dir: str | Path | None = None,
        device: str = "auto",
        batch_size: int = 32,
        allow_random_init: bool = False,
        allow_download: bool = False,
        **_: Any,
    ) -> None:
        import open_clip

        if model_config is not None:
            open_clip.add_model_config(Path(model_config))
        if pretrained is None and not model.startswith("hf-hub:") and not allow_random_init:
            raise EncoderWeightsMissing(
                f"open_clip model {model!r} needs weights: set a pretrained tag or a local checkpoint path"
            )
        checkpoint = _local_checkpoint(pretrained)
        if checkpoint is not None:
            if not checkpoint.is_file():
                raise EncoderWeightsMissing(
                    f"open_clip checkpoint {str(checkpoint)!r} (pretrained of {model!r}) does not exist: "
                    f"put the checkpoint there or fix FITTINGROOM_ENCODER_OPTIONS"
                )
            pretrained = str(checkpoint)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        try:
            with _hub_offline(not allow_download):
                net, _, preprocess = open_clip.create_model_and_transforms(
                    model,
                    pretrained=pretrained,
                    device=self.device,
                    cache_dir=str(cache_dir) if cache_dir else None,
                )
                # hf-hub models fetch their tokenizer config from the hub: offline too
                self.tokenizer = open_clip.get_tokenizer(
                    model, cache_dir=str(cache_dir) if cache_dir else None
                )
        except Exception as exc:  # network errors, missing files: one clear message
            where = pretrained or model
            raise EncoderWeightsMissing(
                f"could not load open_clip weights for {model!r} (pretrained={pretrained!r}): {exc}. "
                f"No weights are downloaded at run time here: put the checkpoint at a local path and pass it "
                f"as pretrained (RETRIEVAL_/FITTINGROOM_ settings), or pre-populate the cache dir for {where!r}."
            ) from exc
        self.model = net.eval()
        self.preprocess = preprocess
        with torch.inference_mode():
            probe = self.model.encode_text(self.tokenizer(["probe"]).to(self.device))
        self.embed_dim = int(probe.shape[-1])
        self.dim = 2 * self.embed_dim
        self.name = encoder_name(model, pretrained)

    @torch.inference_mode()
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = torch.stack(
                [self.preprocess(flatten_alpha(im)) for im in images[i : i + self.batch_size]]
            )
            out.append(self.model.encode_image(batch.to(self.device)).float().cpu().numpy())
        return l2_normalize(np.concatenate(out) if out else np.zeros((0, self.embed_dim), np.float32))

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[i : i + self.batch_size])).to(self.device)
            out.append(self.model.encode_text(tokens).float().cpu().numpy())
        return l2_normalize(np.concatenate(out) if out else np.zeros((0, self.embed_dim), np.float32))

    def document_vectors(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        joined = [t.replace("\n", ". ") for t in texts]  # document_text's two lines as one caption
        return (
            np.concatenate([self.embed_images(images), self.embed_texts(joined)], axis=1) / np.sqrt(2)
        ).astype(np.float32)

    def query_vectors(self, queries: Sequence[Query]) -> np.ndarray:
        out = np.zeros((len(queries), self.dim), np.float32)
        for n, q in enumerate(queries):
            parts = []
            if q.image is not None:
                w = q.image_weight if q.text else 1.0
                parts.append(w * self.embed_images([q.image])[0])
            if q.text and q.text.strip():
                w = 1.0 - q.image_weight if q.image is not None else 1.0
                parts.append(w * self.embed_texts([q.text])[0])
            fused = l2_normalize(np.sum(parts, axis=0)[None])[0]
            out[n] = np.concatenate([fused, fused]) / np.sqrt(2)
        return out


#: File name endings of checkpoints open_clip loads from a path (a pretrained *tag* has none).
CHECKPOINT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".ckpt", ".npz")


def _local_checkpoint(pretrained: str | None) -> Path | None:
    """``pretrained`` as a local checkpoint path (``~`` expanded), or None when it is a tag."""
    if not pretrained:
        return None
    path = Path(pretrained).expanduser()
    if path.is_file() or "/" in pretrained or "\\" in pretrained or path.suffix in CHECKPOINT_SUFFIXES:
        return path
    return None


def encoder_name(model: str, pretrained: str | None) -> str:
    """Index / embedding namespace of an open_clip model: architecture plus weights.

    A local checkpoint is named by its file name *and* a short hash of its content, so two
    checkpoints of one architecture that share a file name (every Hugging Face download is
    ``open_clip_pytorch_model.bin``) never share an index; a tag names its weights already.
    """
    arch = model.replace("/", "_").replace(":", "_")
    if not pretrained:
        return f"open_clip-{arch}-random"
    checkpoint = _local_checkpoint(pretrained)
    if checkpoint is None:
        return f"open_clip-{arch}-{pretrained}"
    from fittingroom.models.registry import file_sha256

    digest = file_sha256(checkpoint)
    return f"open_clip-{arch}-{checkpoint.name}" + (f"-{digest[:12]}" if digest else "")


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """Put huggingface_hub in offline mode for the duration (no network retries)."""
    if not offline:
        yield
        return
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def write_tiny_config(path: Path, name: str = "tiny-test-ViT") -> Path:
    """Write a tiny open_clip model config (for tests; random weights, ~1 MB of parameters)."""
    cfg = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    file = path / f"{name}.json"
    file.write_text(json.dumps(cfg))
    return file
