"""Set-up of the production rehearsal (used by ``conftest.py``): real architectures with random weights, configured only through
the variables the README documents, served by the real ``fittingroom serve`` process.

Two checkpoints are built once per session in a temporary folder (no download):
open_clip ``ViT-B-32`` (``open_clip.create_model("ViT-B-32", pretrained=None)``, state dict
saved as a local checkpoint) and segment-anything ``vit_b``
(``sam_model_registry["vit_b"](checkpoint=None)``). The server runs as a subprocess with
``FITTINGROOM_HOME`` in that folder, ``FITTINGROOM_ENCODER=open_clip`` +
``FITTINGROOM_ENCODER_OPTIONS`` pointing at the checkpoint, and ``SEGMENTATION_BACKEND=torch``
+ ``SEGMENTATION_CHECKPOINT``.

The feed is a subset of the Luma catalog (``SUBSET_PRODUCTS`` products, at most
``IMAGES_PER_PRODUCT`` images each): ViT-B-32 embeds about 1-3 images/s on the 2 shared CPU
cores here, so the full catalog (725 images) would take 4-12 minutes on its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: Products of the Luma catalog ingested (every 24th of 191: hoodies, tees, pants, bags, ...).
SUBSET_PRODUCTS = 8
IMAGES_PER_PRODUCT = 2
OPEN_CLIP_MODEL = "ViT-B-32"
SAM_MODEL_TYPE = "vit_b"
#: Prefixes of the settings the server reads; the test's own environment never leaks in.
SETTING_PREFIXES = ("FITTINGROOM_", "RETRIEVAL_", "SEGMENTATION_", "TRYON_", "SERVE_", "ELIGIBILITY_")


@dataclass
class Rehearsal:
    """The running server and what it was configured with."""

    url: str
    home: Path
    feed: Path
    clip_checkpoint: Path
    sam_checkpoint: Path
    env: dict[str, str]
    log_path: Path
    ingested_images: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def encoder_options(self) -> dict[str, str]:
        return json.loads(self.env["FITTINGROOM_ENCODER_OPTIONS"])


def write_subset_feed(source: Path, dest: Path, products: int, images: int) -> int:
    """Every ``len/products``-th product of the JSONL feed ``source`` with at most ``images``
    images, written to ``dest`` with copies of those images beside it (ingest reads local
    images only from inside the feed's folder); returns the number of images."""
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    step = max(1, len(rows) // products)
    kept = rows[::step][:products]
    total = 0
    with dest.open("w", encoding="utf-8") as out:
        for row in kept:
            keep = list(dict.fromkeys(row.get("images") or [row["main_image"]]))[:images]
            for rel in keep:
                (dest.parent / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source.parent / rel, dest.parent / rel)
            row["images"], row["main_image"] = keep, keep[0]
            for variant in row.get("variants") or []:
                variant["images"] = [p for p in variant.get("images", []) if p in keep]
            total += len(keep)
            out.write(json.dumps(row) + "\n")
    return total


def _half(state: dict) -> dict:
    """Float tensors as float16 (half the bytes to write, read and hash; loading casts back)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def build_checkpoints(folder: Path) -> tuple[Path, Path]:
    """Random-weight ViT-B-32 (open_clip) and vit_b (segment-anything) state dicts in ``folder``
    (float16, like the published fp16 checkpoints: 300 + 190 MB)."""
    import open_clip
    import torch
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    clip = open_clip.create_model(OPEN_CLIP_MODEL, pretrained=None)
    clip_path = folder / "vit-b-32-random.pt"
    torch.save(_half(clip.state_dict()), clip_path)
    del clip
    sam = sam_model_registry[SAM_MODEL_TYPE](checkpoint=None)
    sam_path = folder / "sam_vit_b_random.pth"
    torch.save(_half(sam.state_dict()), sam_path)
    del sam
    return clip_path, sam_path


def server_env(home: Path, shared: Path, clip: Path, sam: Path) -> dict[str, str]:
    """The process environment minus every setting, plus the README's variables for this rehearsal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    env.update(
        {
            "FITTINGROOM_HOME": str(home),
            "FITTINGROOM_SHARED_DATA": str(shared),
            "FITTINGROOM_DEVICE": "cpu",
            "FITTINGROOM_ENCODER": "open_clip",
            "FITTINGROOM_ENCODER_OPTIONS": json.dumps({"model": OPEN_CLIP_MODEL, "pretrained": str(clip)}),
            "SEGMENTATION_BACKEND": "torch",
            "SEGMENTATION_CHECKPOINT": str(sam),
            "SEGMENTATION_MODEL_TYPE": SAM_MODEL_TYPE,
        }
    )
    return env


def wait_ready(url: str, proc: subprocess.Popen[str], log_path: Path, timeout: float) -> None:
    """Poll ``/readyz`` until 200; RuntimeError (with the last body) when the server exits,
    has no index (the ingest failed), or is not ready within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fittingroom serve exited with {proc.returncode}; see {log_path}")
        try:
            resp = httpx.get(url + "readyz", timeout=60)
            if resp.status_code == 200:
                return
            last = resp.text[:2000]
        except httpx.HTTPError as exc:
            last = str(exc)
        if '"no_index"' in last:  # serve prints its URL after ingest: an empty index stays empty
            raise RuntimeError(f"fittingroom serve has no index after ingest: {last}; see {log_path}")
        time.sleep(1)
    raise RuntimeError(f"fittingroom serve not ready after {timeout:.0f}s: {last}; see {log_path}")
