"""Ingest a 10-product slice of the real Luma feed with the real ``offline`` encoder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from catalog_ingest.runner import ingest_feed
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.catalog.store import ProductFilter
from fittingroom.images import load_image
from fittingroom.models.encoders.base import document_text
from fittingroom.settings import CoreSettings

LUMA = CoreSettings().shared_data / "luma-catalog"


@pytest.fixture(scope="module")
def offline_encoder():
    if importlib.util.find_spec("fittingroom.models.encoders.offline") is None:
        pytest.skip("offline encoder not available")
    from fittingroom.models.encoders.registry import get_encoder

    return get_encoder("offline")


@pytest.mark.real_model
@pytest.mark.real_data
def test_luma_slice_with_the_offline_encoder(tmp_path: Path, offline_encoder) -> None:
    assert (LUMA / "products.jsonl").exists(), f"{LUMA} not found: set FITTINGROOM_SHARED_DATA"
    lines = (LUMA / "products.jsonl").read_text().splitlines()
    # 8 apparel products with colour variants + 2 gear products, feed beside the real images
    chosen = [ln for ln in lines if json.loads(ln)["top_category"] == "apparel"][:8]
    chosen += [ln for ln in lines if json.loads(ln)["top_category"] == "gear"][:2]
    feed = tmp_path / "luma.jsonl"
    records = [json.loads(ln) for ln in chosen]
    for rec in records:  # absolute image paths: the slice lives outside the catalog folder
        rec["main_image"] = str((LUMA / rec["main_image"]).resolve())
        rec["images"] = [str((LUMA / u).resolve()) for u in rec["images"]]
        for v in rec["variants"]:
            v["images"] = [str((LUMA / u).resolve()) for u in v["images"]]
    feed.write_text("".join(json.dumps(r) + "\n" for r in records))
    n_images = sum(len(set(r["images"]) | {u for v in r["variants"] for u in v["images"]}) for r in records)

    synced: list[int] = []

    def sync(store, encoder_name, index_dir, *, force_rebuild=False):
        from fittingroom.index import sync_index

        report = sync_index(store, encoder_name, index_dir, force_rebuild=force_rebuild)
        synced.append(report.count)
        return report

    with SQLiteStore(tmp_path / "catalog.db") as store:

        def run():
            return ingest_feed(
                feed,
                store=store,
                encoder=offline_encoder,
                source="luma",
                image_cache=tmp_path / "cache",
                image_roots=[LUMA],
                index_dir=tmp_path / "index",
                sync=sync,
                progress=False,
                batch_size=16,
            )

        report = run()
        assert report.bad_rows == []
        assert (report.products, report.embedded) == (10, n_images)
        assert synced == [n_images]
        ids = store.vector_ids_matching(ProductFilter())
        vecs = store.get_embeddings(offline_encoder.name, ids.tolist())
        assert len(vecs) == n_images
        mat = np.stack(list(vecs.values()))
        assert mat.shape == (n_images, offline_encoder.dim) and mat.dtype == np.float32
        assert np.isfinite(mat).all() and (np.linalg.norm(mat, axis=1) > 0.5).all()

        # the stored vector is the encoder's document vector of that image and its text
        p = store.get_product("luma", records[0]["sku"])
        assert p is not None
        img = p.images[0]
        again = offline_encoder.document_vectors([load_image(img.url)], [document_text(p, img)])[0]
        assert np.allclose(again, vecs[img.vector_id], atol=1e-4)

        # same image of another colour of the same product is closer than images of a gear product
        main = vecs[img.vector_id]
        own = [vecs[i.vector_id] for i in p.images[1:]]
        gear = store.get_product("luma", records[-1]["sku"])
        assert gear is not None
        other = [vecs[i.vector_id] for i in gear.images]
        assert max(float(main @ v) for v in own) > max(float(main @ v) for v in other)

        again_report = run()
        assert (again_report.embedded, again_report.unchanged) == (0, 10)
