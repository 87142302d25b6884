"""Fuzz tier: schemathesis against the OpenAPI schema of every service of the one-port app
(services/app.py, hardened as in ``fittingroom serve``), with small fake models, the network off.

* Every operation of ``/api/retrieval``, ``/api/segmentation``, ``/api/tryon`` and ``/api/admin``
  (with an admin token set, so its routes are on; 3 in 4 requests carry it; its jobs run
  fake bodies, its crawl check resolves to loopback) gets
  ``FUZZ_EXAMPLES`` (default 150; the admin ``FUZZ_ADMIN_EXAMPLES``, default half) schema-valid
  and as many schema-violating requests
  (hypothesis, through schemathesis' ASGI transport: no socket at all for the requests).
* No answer may be a 5xx; the counts (requests, 5xx, statuses) are printed and written to
  ``test-artifacts/fuzz/openapi.json``.
* **Network off:** the image fetcher's resolver (``fittingroom.fetch.system_resolver``) is
  stubbed to answer a loopback address (refused by the SSRF guard, or a refused loopback
  connection), and ``socket.getaddrinfo`` / ``socket.socket.connect`` fail the test for any
  non-loopback host: no DNS lookup, no connection leaves the machine.

Run: ``pytest -m fuzz -s tests/services/test_app_fuzz.py`` (about three minutes on two cores).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi

from catalog_ingest.jobs import AdminSettings
from fittingroom import fetch
from fittingroom.catalog.jobs import JobKind
from fittingroom.catalog.sqlite import SQLiteStore
from fittingroom.images import sha256_bytes
from fittingroom.index import sync_index
from fittingroom.models.registry import ModelShelf
from fittingroom.retrieval.settings import RetrievalSettings
from fittingroom.segmentation.ranking import SamScoreRanker
from fittingroom.segmentation.service import SegmentationService
from fittingroom.segmentation.settings import SegmentationSettings
from fittingroom.settings import CoreSettings
from fittingroom.tryon.renderers import PreviewBackend
from fittingroom.tryon.settings import TryOnSettings
from services.app import ServeSettings, create_app
from services.hardening import HardeningSettings, harden
from tests.services.retrieval.retrieval_fakes import ColorEncoder, make_catalog
from tests.services.segmentation.segmentation_helpers import FakeBackend
from tests.services.tryon.conftest import FakePersonPreprocessor, png_bytes, synthetic_person

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
#: The admin has 10 operations (the others 6-7): half the examples keep the tier near 3 minutes.
ADMIN_EXAMPLES = int(os.environ.get("FUZZ_ADMIN_EXAMPLES", str(max(1, EXAMPLES // 2))))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "fuzz"
SERVICES = ("retrieval", "segmentation", "tryon", "admin")
ADMIN_TOKEN = "fuzz-admin-token"


def _loopback(host: Any) -> bool:
    if host in (None, "", "localhost", b"localhost", schemathesis_asgi.HOST):
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host)).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Records (and refuses) every DNS lookup and connection that would leave loopback."""

    def __init__(self) -> None:
        self.escapes: list[str] = []

    def install(self, mp: pytest.MonkeyPatch) -> None:
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        guard = self

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not _loopback(host):
                guard.escapes.append(f"getaddrinfo({host!r})")
                raise socket.gaierror(socket.EAI_NONAME, "DNS is off in the fuzz tier")
            return real_getaddrinfo(host, *args, **kwargs)

        def check(address: Any) -> None:
            host = address[0] if isinstance(address, tuple) else None
            if isinstance(address, tuple) and not _loopback(host):
                guard.escapes.append(f"connect({address!r})")
                raise ConnectionRefusedError(f"the network is off in the fuzz tier: {address!r}")

        def connect(self: socket.socket, address: Any) -> None:
            check(address)
            return real_connect(self, address)

        def connect_ex(self: socket.socket, address: Any) -> int:
            check(address)
            return real_connect_ex(self, address)

        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        # the image fetcher never asks the system's DNS: every name is a loopback address
        mp.setattr(fetch, "system_resolver", lambda host, port: ["127.0.0.1"])


@pytest.fixture(scope="module")
def network() -> Iterator[NetworkGuard]:
    mp = pytest.MonkeyPatch()
    guard = NetworkGuard()
    guard.install(mp)
    yield guard
    mp.undo()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, network: NetworkGuard) -> Iterator[Any]:
    """The one-port app over fake models: a colour encoder with an 8-product catalog, fake SAM,
    the preview try-on backend with a fake person analyser."""
    root = tmp_path_factory.mktemp("fuzz")
    store = SQLiteStore(root / "catalog.db")
    encoder = ColorEncoder()
    cache = root / "images"
    products = make_catalog(store, encoder, cache)
    sync_index(store, encoder.name, root / "index")
    uri = f"sqlite:///{root / 'catalog.db'}"
    retrieval_settings = RetrievalSettings(
        store_uri=uri,
        index_dir=root / "index",
        image_cache_dir=cache,
        max_upload_bytes=200_000,
        index_reload_s=0,
    )
    seg_settings = SegmentationSettings(
        cache_dir=root / "seg", max_upload_bytes=200_000, max_pixels=400 * 400
    )
    tryon_settings = TryOnSettings(store_uri=uri, image_cache_dir=cache, garment_region="pose")

    def retrieval() -> Any:
        from services.retrieval.app import create_app as create

        return create(retrieval_settings, store=store, encoder=encoder, shelf=ModelShelf())

    def segmentation() -> Any:
        from services.segmentation.app import create_app as create

        service = SegmentationService(seg_settings, backend=FakeBackend(), ranker=SamScoreRanker())
        return create(seg_settings, service=service, shelf=ModelShelf())

    def tryon() -> Any:
        from services.tryon.app import create_app as create

        return create(
            tryon_settings,
            backends={"preview": PreviewBackend()},
            person_pre=FakePersonPreprocessor(),
            shelf=ModelShelf(),
        )

    def admin() -> Any:
        from services.admin.app import create_app as create

        return create(
            AdminSettings(token=ADMIN_TOKEN, image_roots=[root / "img"], max_feed_bytes=20_000),
            core=CoreSettings(home=root / "admin", store_uri="", index_dir=None),
            encoder=encoder,
            annotators=False,
            shelf=ModelShelf(),
            runners={kind: (lambda job, progress: {"fuzz": True}) for kind in JobKind},
            resolver=lambda host, port: ["127.0.0.1"],
        )

    dist = root / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>page</title>")
    one_port = create_app(
        ServeSettings(frontend_dir=dist),
        services={"admin": admin, "retrieval": retrieval, "segmentation": segmentation, "tryon": tryon},
    )
    hardening = HardeningSettings(rate_limit="", allowed_hosts=[schemathesis_asgi.HOST])
    one_port.state.fuzz_products = products
    yield harden(one_port, hardening)
    schemathesis_asgi.shutdown_lifespans()
    store.close()


def known_values(products: list[Any]) -> tuple[dict[str, list[str]], bytes]:
    """Ids that exist (or will, once the fuzzer uploads ``photo``) and the photo: half of the
    generated requests use them, so the fuzz reaches past "unknown id" and "not an image"."""
    photo = png_bytes(synthetic_person()[0])  # a person (for try-on), a garment photo for the others
    sha = sha256_bytes(photo)
    uids = [f"{p.source}:{p.id}" for p in products]
    known = {
        "image_id": [sha],
        "person_id": [sha],
        "garment_image_id": [sha],
        "uid": uids,
        "product_id": uids,
        "sha": [i.sha256 for p in products for i in p.images],
        "mask_id": [f"{sha}-0", "m0"],
        "job_id": uids,
    }
    return known, photo


def with_known_values(case: Any, known: dict[str, list[str]], photo: bytes, pick: int) -> None:
    """Put known ids in the path parameters and JSON fields, and the photo in every file field."""
    for name in list(case.path_parameters or {}):
        if name in known:
            case.path_parameters[name] = known[name][pick % len(known[name])]
    if isinstance(case.body, dict):
        for name, value in list(case.body.items()):
            if isinstance(value, bytes | bytearray):
                case.body[name] = photo
            elif name in known and isinstance(value, str):
                case.body[name] = known[name][pick % len(known[name])]


def fuzz_operations(app: Any, service: str, known: dict[str, list[str]], photo: bytes) -> dict[str, Any]:
    """Run every operation of ``service``'s schema; returns the counts."""
    schema = schemathesis.openapi.from_asgi(f"/api/{service}/openapi.json", app)
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    unsatisfiable: list[str] = []
    samples_400: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"no operation in the {service} schema"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(
                case=operation.as_strategy(generation_mode=mode),
                known_ids=st.booleans(),
                pick=st.integers(0, 99),
            )
            @settings(
                max_examples=ADMIN_EXAMPLES if service == "admin" else EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any, known_ids: bool, pick: int) -> None:
                if known_ids:
                    with_known_values(case, known, photo, pick)
                auth = service == "admin" and (known_ids or pick % 2 == 0)
                response = case.call(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"} if auth else None)
                statuses[response.status_code] += 1
                if response.status_code == 400 and len(samples_400) < 5:
                    samples_400.append(f"{case.method} {case.formatted_path}: {response.text[:160]}")
                if response.status_code >= 500:
                    errors.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: "
                        f"{response.text[:300]}"
                    )

            try:
                run()
            except Unsatisfiable:  # e.g. no schema-violating request exists for a parameterless GET
                unsatisfiable.append(f"{operation.label} ({mode.value})")
    return {
        "service": service,
        "operations": len(operations),
        "requests": sum(statuses.values()),
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "statuses": dict(sorted(statuses.items())),
        "errors": errors[:20],
        "unsatisfiable": unsatisfiable,
        "samples_400": samples_400,
    }


def test_every_service_survives_generated_requests_with_the_network_off(
    app: Any, network: NetworkGuard
) -> None:
    known, photo = known_values(app.state.fuzz_products)
    results = [fuzz_operations(app, service, known, photo) for service in SERVICES]
    total = sum(r["requests"] for r in results)
    errors = sum(r["server_errors"] for r in results)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "requests": total,
        "server_errors": errors,
        "examples_per_mode": EXAMPLES,
        "admin_examples_per_mode": ADMIN_EXAMPLES,
        "services": results,
    }
    (ARTIFACTS / "openapi.json").write_text(json.dumps(summary, indent=2))
    for r in results:
        print(
            f"fuzz {r['service']}: {r['operations']} operations, {r['requests']} requests, "
            f"{r['server_errors']} 5xx, statuses {r['statuses']}; no negative case: {r['unsatisfiable']}"
        )
    print(f"fuzz total: {total} requests, {errors} 5xx, {len(network.escapes)} network escapes")
    assert network.escapes == [], f"a request left loopback: {network.escapes[:10]}"
    assert errors == 0, [e for r in results for e in r["errors"]]
    assert all(r["requests"] >= 2 * min(EXAMPLES, ADMIN_EXAMPLES) for r in results)  # each was exercised


def test_the_network_guard_refuses_dns_and_outside_connections(network: NetworkGuard) -> None:
    before = len(network.escapes)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
        sock.connect(("192.0.2.1", 80))
    assert len(network.escapes) == before + 2
    del network.escapes[before:]
    assert fetch.system_resolver("shop.example", 443) == ["127.0.0.1"]
