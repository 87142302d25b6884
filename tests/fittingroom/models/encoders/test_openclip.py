"""open_clip path with a tiny randomly initialised config (no weights can be downloaded here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fittingroom.models.encoders import Query, get_encoder
from fittingroom.models.encoders.openclip import EncoderWeightsMissing, write_tiny_config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    cfg = write_tiny_config(tmp_path_factory.mktemp("cfg"))
    return get_encoder(
        "open_clip", model="tiny-test-ViT", model_config=cfg, allow_random_init=True, device="cpu"
    )


def test_tiny_model_vectors(tiny) -> None:  # noqa: ANN001
    imgs = [Image.new("RGB", (40, 50), c) for c in ("red", "blue")]
    e = tiny.embed_images(imgs)
    assert e.shape == (2, tiny.embed_dim) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    docs = tiny.document_vectors(imgs, ["red tee\nTops", "blue tee\nTops"])
    assert docs.shape == (2, tiny.dim) == (2, 2 * tiny.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-5)
    q = tiny.query_vectors([Query(text="red"), Query(image=imgs[0]), Query(image=imgs[0], text="x")])
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-5)
    # the image half of an image query is the image embedding itself: its own image scores 1
    d = tiny.embed_dim
    np.testing.assert_allclose(q[1][:d] * np.sqrt(2), e[0], atol=1e-5)
    np.testing.assert_allclose(q[1][:d] @ docs[0, :d] * 2, 1.0, atol=1e-5)


def test_missing_weights_fail_fast_and_clearly(tmp_path: Path) -> None:
    with pytest.raises(EncoderWeightsMissing, match="weights"):
        get_encoder("open_clip", model="ViT-B-32", pretrained=str(tmp_path / "missing.bin"))
    with pytest.raises(EncoderWeightsMissing, match="needs weights"):
        get_encoder("open_clip", model="ViT-B-32")


def test_unknown_encoder_name() -> None:
    with pytest.raises(KeyError, match="known: offline, open_clip"):
        get_encoder("nope")


def test_local_checkpoints_are_named_by_content(tmp_path: Path) -> None:
    """Two checkpoints with one file name (every hub download is open_clip_pytorch_model.bin)
    get two names, so two indexes; the same bytes elsewhere get the same name."""
    import open_clip
    import torch

    from fittingroom.models.encoders.openclip import OpenClipEncoder, encoder_name

    cfg = write_tiny_config(tmp_path)
    open_clip.add_model_config(cfg)
    paths = []
    for seed, folder in ((0, "a"), (1, "b"), (0, "c")):
        torch.manual_seed(seed)
        path = tmp_path / folder / "open_clip_pytorch_model.bin"
        path.parent.mkdir()
        torch.save(open_clip.create_model("tiny-test-ViT").state_dict(), path)
        paths.append(path)
    names = [encoder_name("tiny-test-ViT", str(p)) for p in paths]
    assert names[0] != names[1] and names[0] == names[2]
    assert names[0].startswith("open_clip-tiny-test-ViT-open_clip_pytorch_model.bin-")
    assert encoder_name("ViT-B-32", "laion2b_s34b_b79k") == "open_clip-ViT-B-32-laion2b_s34b_b79k"
    enc = OpenClipEncoder(model="tiny-test-ViT", model_config=cfg, pretrained=str(paths[1]), device="cpu")
    assert enc.name == names[1]
    saved = torch.load(paths[1], weights_only=True)
    assert torch.equal(enc.model.state_dict()["text_projection"], saved["text_projection"])


def test_missing_checkpoint_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.pt"
    with pytest.raises(EncoderWeightsMissing, match=f"{missing}.*does not exist"):
        get_encoder("open_clip", model="ViT-B-32", pretrained=str(missing))
