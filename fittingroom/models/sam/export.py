"""Export an official SAM / MobileSAM checkpoint to the two ONNX files of the ONNX backend.

``fittingroom models export-sam --checkpoint sam_vit_b_01ec64.pth --model-type vit_b --out DIR``
writes ``DIR/encoder.onnx`` (input ``input`` float32 [1,3,1024,1024], normalised and
padded like ``backends.base.preprocess_image``; output ``output`` [1,256,64,64]) and
``DIR/decoder.onnx`` (``segment_anything.utils.onnx.SamOnnxModel`` without
``return_single_mask``, as ``scripts/export_onnx_model.py`` of segment-anything does, so
it outputs all 4 candidates: ``low_res_masks`` [1,4,256,256] and ``iou_predictions`` [1,4]).
Then set ``SEGMENTATION_ENCODER_PATH`` / ``SEGMENTATION_DECODER_PATH`` to them.

MobileSAM (https://github.com/ChaoningZhang/MobileSAM) ships a ``mobile_sam`` package with
the same ``Sam`` class; build its model with its own registry (``vit_t``) and pass it
to :func:`export_sam_onnx`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def export_sam_onnx(sam: Any, out_dir: Path, *, opset: int = 17) -> tuple[Path, Path]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` for a ``segment_anything`` ``Sam`` model."""
    import torch
    from segment_anything.utils.onnx import SamOnnxModel

    out_dir.mkdir(parents=True, exist_ok=True)
    sam = sam.eval().to("cpu")
    size = int(sam.image_encoder.img_size)
    emb_dim = int(sam.prompt_encoder.embed_dim)
    emb_h, emb_w = sam.prompt_encoder.image_embedding_size
    low = sam.prompt_encoder.mask_input_size

    class _Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.image_encoder = sam.image_encoder

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.image_encoder(x)

    encoder_path, decoder_path = out_dir / "encoder.onnx", out_dir / "decoder.onnx"
    dummy = {
        "image_embeddings": torch.randn(1, emb_dim, emb_h, emb_w),
        "point_coords": torch.randint(0, size, (1, 5, 2)).float(),
        "point_labels": torch.randint(0, 4, (1, 5)).float(),
        "mask_input": torch.randn(1, 1, *low),
        "has_mask_input": torch.tensor([1.0]),
        "orig_im_size": torch.tensor([1500, 2250], dtype=torch.float),
    }
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            SamOnnxModel(sam, return_single_mask=False),
            tuple(dummy.values()),
            str(decoder_path),
            input_names=list(dummy),
            output_names=["masks", "iou_predictions", "low_res_masks"],
            dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
            opset_version=opset,
            dynamo=False,
        )
        torch.onnx.export(
            _Encoder(),
            (torch.randn(1, 3, size, size),),
            str(encoder_path),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            dynamo=False,
        )
    return encoder_path, decoder_path
