"""Production rehearsal (issue 13, item 9): open_clip ViT-B-32 and torch SAM vit_b from local
checkpoints, configured through the README's variables, behind the real all-in-one server.

The weights are random, so relevance is not measured here (the eval tier does that with
the shipped models); what is checked is that the configured models are the ones that run,
end to end: the index holds their vectors, ``/healthz`` names them, every query kind comes
back with the scores the model gives, and a mismatched encoder/index pair is an error.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from rehearsal_setup import OPEN_CLIP_MODEL, SAM_MODEL_TYPE, SETTING_PREFIXES, Rehearsal
from typer.testing import CliRunner, Result

from fittingroom.cli import build_app

pytestmark = [pytest.mark.rehearsal, pytest.mark.real_data]

#: One embed of SAM vit_b on 2 busy cores took 120 s: generous request timeouts.
TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def _open_clip_embed_dim() -> int:
    import open_clip

    return int(open_clip.get_model_config(OPEN_CLIP_MODEL)["embed_dim"])


def _expected_encoder_name(r: Rehearsal) -> str:
    from fittingroom.models.encoders.openclip import encoder_name

    return encoder_name(OPEN_CLIP_MODEL, str(r.clip_checkpoint))


def _catalog_image(r: Rehearsal) -> Path:
    first = json.loads(r.feed.read_text().splitlines()[0])
    return r.feed.parent / first["images"][0]  # copied beside the feed


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``cli(env, *args)``: the ``fittingroom`` command line in this process with exactly the
    settings of ``env`` (models already on this process's shelf are reused, as in one CLI run)."""
    from fittingroom.settings import get_settings

    def run(env: dict[str, str], *args: str) -> Result:
        for name in [k for k in os.environ if k.startswith(SETTING_PREFIXES)]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            if name.startswith(SETTING_PREFIXES):
                monkeypatch.setenv(name, value)
        monkeypatch.chdir(env["FITTINGROOM_HOME"])
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(build_app(), list(args))
        finally:
            get_settings.cache_clear()

    return run


@pytest.fixture(scope="module")
def retrieval_health(rehearsal: Rehearsal) -> dict:
    resp = httpx.get(rehearsal.url + "api/retrieval/healthz", timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def local_encoder(rehearsal: Rehearsal):  # noqa: ANN201
    """The same open_clip model in this process, through the same settings path as the server."""
    from fittingroom.models.specs import get_encoder
    from fittingroom.settings import CoreSettings

    core = CoreSettings(
        encoder="open_clip", encoder_options=rehearsal.encoder_options, device="cpu", home=rehearsal.home
    )
    return get_encoder(core)


# ---------------------------------------------------------------------------------- retrieval
def test_index_holds_vectors_of_the_open_clip_model(rehearsal: Rehearsal, retrieval_health: dict) -> None:
    name = _expected_encoder_name(rehearsal)
    manifest = json.loads((rehearsal.home / "index" / f"{name}.json").read_text())
    dim = 2 * _open_clip_embed_dim()  # [image, text] halves of the document vector
    assert dim == 1024
    assert manifest["encoder"] == name
    assert manifest["dim"] == dim
    assert manifest["count"] == rehearsal.ingested_images
    assert retrieval_health["index"]["dim"] == dim
    assert retrieval_health["index"]["count"] == rehearsal.ingested_images


def test_retrieval_healthz_names_the_open_clip_checkpoint(
    rehearsal: Rehearsal, retrieval_health: dict
) -> None:
    from fittingroom.models.registry import file_sha256

    name = _expected_encoder_name(rehearsal)
    assert retrieval_health["status"] == "ok"
    assert retrieval_health["encoder"] == name
    assert name.startswith(f"open_clip-{OPEN_CLIP_MODEL}-{rehearsal.clip_checkpoint.name}-")
    entries = [m for m in retrieval_health["models"] if m["name"] == "encoder.open_clip"]
    assert len(entries) == 1, retrieval_health["models"]
    entry = entries[0]
    assert entry["model_key"] == name
    assert entry["options"] == {
        "model": OPEN_CLIP_MODEL,
        "pretrained": str(rehearsal.clip_checkpoint),
        "device": "cpu",
    }
    assert entry["files"][0]["path"] == str(rehearsal.clip_checkpoint)
    assert entry["files"][0]["sha256"] == file_sha256(rehearsal.clip_checkpoint)
    assert not [m for m in retrieval_health["models"] if m["name"] == "encoder.offline"]


def test_checkpoint_weights_are_the_ones_loaded(rehearsal: Rehearsal, local_encoder) -> None:  # noqa: ANN001
    import torch

    saved = torch.load(rehearsal.clip_checkpoint, map_location="cpu", weights_only=True)
    loaded = local_encoder.model.state_dict()
    for key in ("visual.proj", "text_projection", "visual.conv1.weight"):
        assert loaded[key].dtype == torch.float32
        assert torch.equal(saved[key].float(), loaded[key]), key


def test_text_search_scores_are_the_models(rehearsal: Rehearsal, local_encoder) -> None:  # noqa: ANN001
    from fittingroom.index import VectorIndex
    from fittingroom.models.encoders.base import Query

    resp = httpx.post(
        rehearsal.url + "api/retrieval/search", json={"text": "hoodie", "k": 5}, timeout=TIMEOUT
    )
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert 1 <= len(results) <= 5
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    # every score over HTTP is an inner product of this model's vector of the embedded text (the
    # query once its constraints, here the category "hoodie", are taken out) with an indexed image
    parsed = resp.json()["parsed"]
    residual = parsed["residual"] if parsed and parsed["residual"] else "hoodie"
    index = VectorIndex.open(rehearsal.home / "index", local_encoder.name)
    local, _ = index.search(local_encoder.query_vectors([Query(text=residual)]), k=len(index))
    local_scores = local[0][np.isfinite(local[0])]
    for score in scores:
        assert np.abs(local_scores - score).min() < 1e-4, (score, residual)
    assert scores[0] <= float(local_scores.max()) + 1e-4  # constraints only ever narrow the search


def test_image_search_multipart(rehearsal: Rehearsal) -> None:
    path = _catalog_image(rehearsal)
    with path.open("rb") as fh:
        resp = httpx.post(
            rehearsal.url + "api/retrieval/search/image",
            files={"image": (path.name, fh, "image/jpeg")},
            data={"k": "3"},
            timeout=TIMEOUT,
        )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["query"]["image"] is True and body["query"]["text"] is None
    assert 1 <= len(body["results"]) <= 3
    assert all(np.isfinite(r["score"]) for r in body["results"])


def test_text_and_image_search(rehearsal: Rehearsal) -> None:
    path = _catalog_image(rehearsal)
    data = path.read_bytes()

    def search(weight: str) -> list[float]:
        resp = httpx.post(
            rehearsal.url + "api/retrieval/search/image",
            files={"image": (path.name, data, "image/jpeg")},
            data={"text": "black jacket", "image_weight": weight, "k": "8"},
            timeout=TIMEOUT,
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["query"]["text"] == "black jacket" and body["query"]["image_weight"] == float(weight)
        return [r["score"] for r in body["results"]]

    mostly_image, mostly_text = search("0.9"), search("0.1")
    assert mostly_image and mostly_text
    assert mostly_image != mostly_text  # both the image and the text reach the encoder


# ------------------------------------------------------------------------- encoder/index mismatch
def test_another_encoder_on_the_open_clip_index_is_a_clear_error(
    rehearsal: Rehearsal, cli: Callable[..., Result]
) -> None:
    """``FITTINGROOM_ENCODER=offline fittingroom search`` against the home the open_clip
    server ingested: an error naming the encoder, no results."""
    env = {**rehearsal.env, "FITTINGROOM_ENCODER": "offline", "FITTINGROOM_ENCODER_OPTIONS": "{}"}
    result = cli(env, "search", "--text", "hoodie", "--json")
    assert result.exit_code == 1, result.output
    assert "offline" in result.output and "index" in result.output, result.output
    assert '"rank"' not in result.output  # no results
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_same_encoder_name_with_another_dimension_is_a_clear_error(
    rehearsal: Rehearsal,
    local_encoder,  # noqa: ANN001
    cli: Callable[..., Result],
    tmp_path: Path,
) -> None:
    """An index saved under this encoder's name but with vectors of another dimension (what a
    different checkpoint under one name used to produce) is refused, by the CLI and the service."""
    from fittingroom.index import IndexMismatchError, VectorIndex
    from fittingroom.retrieval.resources import EncoderIndexMismatch, IndexHolder

    other = VectorIndex.create(local_encoder.name, 512)
    other.add(np.arange(3), np.eye(3, 512, dtype=np.float32))
    other.save(tmp_path)
    holder = IndexHolder(tmp_path, local_encoder.name, dim=local_encoder.dim, reload_s=0)
    assert holder.get() is None
    with pytest.raises(EncoderIndexMismatch, match="dim 512.*dim 1024") as err:
        holder.require()  # the service answers this with 503 and the message
    assert isinstance(err.value.__cause__, IndexMismatchError)
    assert local_encoder.name in str(holder.error)

    result = cli(
        {**rehearsal.env, "FITTINGROOM_INDEX_DIR": str(tmp_path)}, "search", "--text", "hoodie", "--json"
    )
    assert result.exit_code == 1, result.output
    assert "dim 512" in result.output and "dim 1024" in result.output, result.output
    assert '"rank"' not in result.output


# ------------------------------------------------------------------------------- segmentation
def test_segmentation_healthz_names_the_torch_model(rehearsal: Rehearsal) -> None:
    from fittingroom.models.registry import file_sha256

    resp = httpx.get(rehearsal.url + "api/segmentation/healthz", timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    health = resp.json()
    assert health["model"].startswith(f"torch-{SAM_MODEL_TYPE}-")
    entries = [m for m in health["models"] if m["name"] == "sam.torch"]
    assert len(entries) == 1, health["models"]
    assert entries[0]["options"]["checkpoint"] == str(rehearsal.sam_checkpoint)
    assert entries[0]["options"]["model_type"] == SAM_MODEL_TYPE
    assert entries[0]["model_key"] == health["model"]
    assert entries[0]["files"][0]["sha256"] == file_sha256(rehearsal.sam_checkpoint)
    assert not [m for m in health["models"] if m["name"] == "sam.onnx"]


def test_upload_and_click_give_masks(rehearsal: Rehearsal, shared_data: Path) -> None:
    photo = shared_data / "street-photos" / "photos" / "0001.jpg"
    with Image.open(photo) as im:
        width, height = im.size
    resp = httpx.post(
        rehearsal.url + "api/segmentation/images",
        files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 201, resp.text
    info = resp.json()
    assert (info["width"], info["height"]) == (width, height)
    resp = httpx.post(
        rehearsal.url + f"api/segmentation/images/{info['image_id']}/masks",
        json={"points": [{"x": width / 2, "y": height / 2, "label": 1}]},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    candidates = resp.json()["candidates"]
    assert candidates
    mask = Image.open(io.BytesIO(base64.b64decode(candidates[0]["mask_png"])))
    assert mask.size == (width, height)
    assert [c["rank"] for c in candidates] == list(range(len(candidates)))
