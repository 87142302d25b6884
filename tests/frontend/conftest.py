"""Fixtures of the browser tests: headless Chromium (Debian's package) through Playwright,
the all-in-one server, and screenshots under ``test-artifacts/frontend/``.

Two servers:

* ``live_server`` - ``fittingroom serve`` as a subprocess on 127.0.0.1 (any free port),
  with the real models and the Luma + Saleor catalogs ingested into a temporary home
  (session scoped: the ingest runs once);
* ``stub_server`` - the same all-in-one app and page, in-process, with small stand-in
  services that fail on purpose (service down, bad upload): fast error-state tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"
ARTIFACTS = ROOT / "test-artifacts" / "frontend"
CHROMIUM = Path(os.environ.get("FITTINGROOM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def shared_data() -> Path:
    from fittingroom.settings import CoreSettings

    path = CoreSettings().shared_data
    return path if path.is_absolute() else (ROOT / path).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared real data folder (FITTINGROOM_SHARED_DATA, default ../shared/data)."""
    return shared_data()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (the README set-up installs Debian's chromium)")
    if not (DIST / "index.html").is_file():
        pytest.fail(f"the page is not built ({DIST}): run `npm ci && npm run build` in frontend/")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


#: Records Content-Security-Policy violations of the page (the page must cause none).
CSP_WATCH = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"""


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    context.add_init_script(CSP_WATCH)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    try:
        violations = pg.evaluate("window.__cspViolations || []")
    finally:
        context.close()
    assert violations == [], f"the page broke its Content-Security-Policy: {violations}"


@pytest.fixture
def phone(browser: object) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """``shot(page, "name", full_page=True)`` saves test-artifacts/frontend/<test>-<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name).removeprefix("test_")

    def take(pg: object, name: str, full_page: bool = True) -> Path:
        path = ARTIFACTS / f"{test}-{name}.png"
        pg.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
        return path

    return take


def _wait_ready(base: str, proc: subprocess.Popen[str] | None, timeout: float) -> None:
    """Wait until ``{base}healthz`` answers 200 (the retrieval service has its index)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            resp = httpx.get(base + "healthz", timeout=10)
            if resp.status_code == 200:
                return
            last = resp.text
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"not ready after {timeout:.0f}s: {last[:500]}")


#: The Saleor demo feed has its own field names: map them to the ingest's canonical ones.
SALEOR_MAP = [
    "name=title",
    "price_usd_min=price",
    "images=image_link",
    "category=product_type",
    "attributes.Brand=brand",
]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``fittingroom serve`` with real models and the Luma + Saleor catalogs; yields its URL.

    Saleor is ingested first with ``fittingroom ingest --map`` (its feed is not in Merchant
    Center names); Luma by the server's own first-run ingest (``--catalog``).
    """
    data = shared_data()
    luma = data / "luma-catalog" / "products.jsonl"
    saleor = data / "saleor-catalog" / "products.jsonl"
    missing = [str(f) for f in (luma, saleor) if not f.is_file()]
    if missing:
        pytest.fail(f"shared data missing: {missing}")
    home = tmp_path_factory.mktemp("serve-home")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "serve.log"
    # a fresh home for the catalog, but the machine's model cache (filled by `fittingroom models fetch`)
    from fittingroom.settings import CoreSettings

    model_dir = str(CoreSettings().resolved_model_dir)
    env = {
        **os.environ,
        "FITTINGROOM_HOME": str(home),
        "FITTINGROOM_SHARED_DATA": str(data),
        "FITTINGROOM_MODEL_DIR": model_dir,
    }
    for key in ("STORE_URI", "INDEX_DIR"):  # everything under the temporary home
        env.pop(f"FITTINGROOM_{key}", None)
        env.pop(f"RETRIEVAL_{key}", None)
    # the user's commands, from this environment's scripts folder
    fittingroom = str(Path(sys.executable).parent / "fittingroom")
    maps = [a for m in SALEOR_MAP for a in ("--map", m)]
    ingest = subprocess.run(
        [fittingroom, "ingest", str(saleor), "--source", "saleor", "--no-progress", *maps],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (ARTIFACTS / "ingest-saleor.log").write_text(ingest.stdout + ingest.stderr)
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    cmd = [fittingroom, "serve", "--host", "127.0.0.1", "--port", "0", "--catalog", str(luma)]
    log = log_path.open("w")
    proc = subprocess.Popen(
        cmd,
        cwd=home,  # no stray .env of the checkout
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    url = None

    def pump() -> None:
        nonlocal url
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            m = re.search(r"fittingroom is running at (http://\S+/)", line)
            if m:
                url = m.group(1)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 900  # first-run ingest of 725 Luma images on 2 cores
    try:
        while url is None:
            if proc.poll() is not None:
                raise RuntimeError(f"fittingroom serve exited with {proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"fittingroom serve did not start; see {log_path}")
            time.sleep(0.5)
        _wait_ready(url + "api/retrieval/", proc, timeout=300)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def require() -> Callable[[str, str], None]:
    """``require(url, "segmentation")`` fails the test, with the service's own reason, unless
    that service of the all-in-one server is ready."""

    def check(url: str, service: str) -> None:
        resp = httpx.get(f"{url}api/{service}/healthz", timeout=30)
        if resp.status_code != 200:
            pytest.fail(f"the {service} service is not ready ({resp.status_code}): {resp.text[:500]}")

    return check


class ThreadedServer:
    """uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not (self.server.started and self.server.servers):
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the stub server did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def stub_server() -> Iterator[Callable[[dict[str, Callable[[], object]]], str]]:
    """``stub_server({"retrieval": factory, ...})`` runs the all-in-one app (with the built
    page) over those service factories in a thread; returns its URL. The app is hardened as in
    ``fittingroom serve`` (CSP and the other headers, Host allow-list, upload rate limit), so the
    page is tested under its Content-Security-Policy."""
    from services.app import ServeSettings, create_app
    from services.hardening import harden

    running: list[ThreadedServer] = []

    def start(services: dict[str, Callable[[], object]]) -> str:
        app = create_app(ServeSettings(frontend_dir=DIST), services=services)  # type: ignore[arg-type]
        server = ThreadedServer(harden(app))
        url = server.__enter__()
        running.append(server)
        return url

    yield start
    for server in running:
        server.__exit__()
