"""Export the offline encoder's models to ONNX (needs torch; run once, results cached).

* ``export_lite_gem``: EfficientNet-Lite ``extract_features`` + GeM pooling, batch-norm
  folded into the preceding convolutions (``fold_batch_norms``, with
  ``torch.nn.utils.fusion.fuse_conv_bn_eval``), dynamic batch axis. The export is verified:
  no ``BatchNormalization`` node is left, and onnxruntime's output equals the unfolded torch
  model's on a random batch within ``tolerance``.
* ``export_sentence_model``: a sentence-transformers BERT folder's transformer + attention-
  masked mean pooling (normalisation stays outside), dynamic batch and length axes,
  verified against the torch model on texts of different lengths.

Callers normally go through ``onnx_models.cached_onnx`` (see ``offline.OfflineEncoder``).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

#: ONNX opset of the exports.
OPSET = 17

#: (conv, batch-norm) attribute pairs of ``efficientnet_lite_pytorch``: model level, then block level.
_MODEL_PAIRS = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
_BLOCK_PAIRS = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every batch-norm of an eval-mode ``efficientnet_lite_pytorch.EfficientNet`` into its
    convolution, in place (the batch-norm becomes ``nn.Identity``); returns how many were folded.

    Raises ValueError for a model in training mode.
    """
    if model.training:
        raise ValueError("fold_batch_norms needs an eval-mode model")
    folded = 0
    owners: list[tuple[nn.Module, tuple[tuple[str, str], ...]]] = [(model, _MODEL_PAIRS)]
    owners += [(block, _BLOCK_PAIRS) for block in getattr(model, "_blocks", [])]
    for owner, pairs in owners:
        for conv_name, bn_name in pairs:
            conv, bn = getattr(owner, conv_name, None), getattr(owner, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(owner, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(owner, bn_name, nn.Identity())
                folded += 1
    return folded


class LiteGem(nn.Module):
    """(N, 3, S, S) normalised pixels -> (N, C) GeM-pooled last feature map (not L2-normalised)."""

    def __init__(self, backbone: nn.Module, gem_p: float = 3.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.gem_p = gem_p

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        fm = self.backbone.extract_features(pixels).clamp_min(1e-6)  # type: ignore[operator]
        return fm.pow(self.gem_p).mean(dim=(2, 3)).pow(1.0 / self.gem_p)


class MeanPooledTransformer(nn.Module):
    """BERT ids/mask/types (N, L) int64 -> (N, D) attention-masked mean of the last hidden states."""

    def __init__(self, transformer: nn.Module) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.transformer(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, **kw: Any) -> None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), args, str(path), dynamo=False, do_constant_folding=True, opset_version=OPSET, **kw
        )


def _check(path: Path, feeds: dict[str, np.ndarray], expected: np.ndarray, tolerance: float) -> None:
    import onnx
    import onnxruntime as ort

    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    if "BatchNormalization" in ops:
        raise RuntimeError(f"{path}: batch-norm left in the exported graph")
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    err = float(np.abs(got - expected).max())
    if err > tolerance:
        raise RuntimeError(f"{path}: onnxruntime differs from torch by {err:.2e} (> {tolerance:.0e})")


def export_lite_gem(
    backbone: nn.Module, size: int, path: Path, *, gem_p: float = 3.0, tolerance: float = 1e-4
) -> None:
    """Write the GeM feature extractor of an EfficientNet-Lite ``backbone`` (left unchanged) to ``path``.

    Input ``pixels`` (N, 3, size, size) float32; output ``gem`` (N, 1280) float32.
    Raises RuntimeError when the verification fails (see module docstring).
    """
    import copy

    reference = LiteGem(backbone, gem_p).eval()
    folded = copy.deepcopy(backbone).eval()
    if fold_batch_norms(folded) == 0:
        raise RuntimeError("no batch-norm folded: not an efficientnet_lite_pytorch model?")
    pixels = torch.from_numpy(np.random.default_rng(0).normal(0, 0.6, (3, 3, size, size)).astype(np.float32))
    _export(  # traced on one image, checked on three: the batch axis is dynamic
        LiteGem(folded, gem_p),
        (pixels[:1],),
        path,
        input_names=["pixels"],
        output_names=["gem"],
        dynamic_axes={"pixels": {0: "n"}, "gem": {0: "n"}},
    )
    with torch.inference_mode():
        expected = reference(pixels).numpy()
    _check(path, {"pixels": pixels.numpy()}, expected, tolerance)


def export_sentence_model(folder: Path, path: Path, *, tolerance: float = 1e-4) -> None:
    """Write the transformer + mean pooling of the sentence-transformers model ``folder`` to ``path``.

    Raises RuntimeError when onnxruntime's output differs from torch's (see module docstring).
    """
    from tokenizers import Tokenizer
    from transformers import AutoModel

    with contextlib.redirect_stderr(io.StringIO()):  # weight-loading progress bar
        transformer = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    module = MeanPooledTransformer(transformer).eval()
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(64)
    tok.enable_padding()

    def feeds(texts: list[str]) -> dict[str, np.ndarray]:
        enc = tok.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in enc], np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], np.int64),
        }

    def args(f: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(v) for v in f.values())

    # traced on two short texts, checked on three of other lengths: batch and length are dynamic
    traced = feeds(["a", "Men > Tops"])
    check = feeds(["red tee", "gray hooded sweatshirt with a full zip and two pockets", "Men > Tops > Tees"])
    axes = {name: {0: "n", 1: "length"} for name in traced}
    _export(
        module,
        args(traced),
        path,
        input_names=list(traced),
        output_names=["mean"],
        dynamic_axes={**axes, "mean": {0: "n"}},
    )
    with torch.inference_mode():
        expected = module(*args(check)).numpy()
    _check(path, check, expected, tolerance)
