"""Batch-norm folding and the verified ONNX export of the EfficientNet-Lite GeM extractor."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytestmark = pytest.mark.real_model


def test_folding_removes_every_batch_norm_and_keeps_the_output() -> None:
    import torch

    from fittingroom.models.encoders.offline import EfficientNetLiteFeatures
    from fittingroom.models.encoders.onnx_export import LiteGem, fold_batch_norms

    model = EfficientNetLiteFeatures(device="cpu").model
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    folded = copy.deepcopy(model)
    assert fold_batch_norms(folded) == n_bn > 40
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.6, (2, 3, 224, 224)).astype(np.float32))
    with torch.inference_mode():
        want, got = LiteGem(model)(x), LiteGem(folded)(x)
    assert float((got - want).abs().max()) < 1e-4
    with pytest.raises(ValueError):
        fold_batch_norms(copy.deepcopy(model).train())


def test_the_exported_graph_has_no_batch_norm(offline_encoder) -> None:  # noqa: ANN001
    import onnx

    path = offline_encoder.image_model_path()
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "Conv" in ops and "BatchNormalization" not in ops
