"""Helpers of the segmentation tests: a tiny random SAM, a deterministic fake backend."""

from __future__ import annotations

import io
import threading
from functools import partial

import numpy as np
from PIL import Image

from fittingroom.models.sam.base import Candidates, ImageEmbedding, SamBackend


def tiny_sam(seed: int = 0, img_size: int = 64):  # type: ignore[no-untyped-def]
    """A randomly initialised ``segment_anything`` Sam built from the package's own classes (70k params)."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    dim, emb = 32, img_size // 16
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size, patch_size=16, embed_dim=32, depth=1, num_heads=2, mlp_ratio=2, out_chans=dim,
            qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=0,
            global_attn_indexes=(),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim, image_embedding_size=(emb, emb), input_image_size=(img_size, img_size), mask_in_chans=4
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
            transformer_dim=dim, iou_head_depth=2, iou_head_hidden_dim=16,
        ),
    ).eval()  # fmt: skip


class FakeBackend(SamBackend):
    """Deterministic stand-in for SAM in service tests (the real backends are tested separately).

    The embedding is the image's mean colour broadcast into the feature map (so it identifies the
    image); ``predict`` returns 4 discs around the first positive point whose radii grow with
    the token index and whose IoU prediction encodes the embedding's first value.
    """

    model_key = "fake-v1"
    image_size = 64

    def __init__(self, delay: float = 0.0) -> None:
        self.embed_calls = 0
        self.delay = delay
        #: ``mask_input`` of every ``predict`` call (None when absent), in order.
        self.mask_inputs: list[np.ndarray | None] = []
        self._lock = threading.Lock()

    def embed(self, image: Image.Image) -> ImageEmbedding:
        import time

        with self._lock:
            self.embed_calls += 1
        if self.delay:
            time.sleep(self.delay)
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
        feats = np.zeros((1, 4, 4, 4), dtype=np.float32)
        feats[0, :3] = rgb.mean(axis=(0, 1))[:, None, None] / 255.0
        scale = self.image_size / max(image.size)
        return ImageEmbedding(
            feats,
            (image.height, image.width),
            (int(image.height * scale + 0.5), int(image.width * scale + 0.5)),
            self.model_key,
        )

    def predict(self, embedding, points, labels, box=None, mask_input=None):  # type: ignore[no-untyped-def]
        self.mask_inputs.append(None if mask_input is None else np.array(mask_input))
        s = self.image_size // 4
        h, w = embedding.original_size
        x, y = np.asarray(points, dtype=float)[np.asarray(labels) == 1][0]
        cx, cy = x / w * embedding.input_size[1] / 4, y / h * embedding.input_size[0] / 4
        yy, xx = np.mgrid[:s, :s] + 0.5
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        logits = np.stack([r - d for r in (1.0, 2.0, 3.0, 5.0)]).astype(np.float32)
        iou = np.array([0.5, 0.6, 0.7, 0.8], dtype=np.float32) * 0 + float(embedding.features[0, 0, 0, 0])
        iou = iou + np.array([0.0, 0.01, 0.02, 0.03], dtype=np.float32)
        return Candidates(logits, iou)


def png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()
