"""Retrieval, segmentation and try-on as three processes on loopback, run the way the
containers run them (``uvicorn --factory services.<name>.app:create_app``), and one
end-to-end request chain through their public HTTP APIs:

    street photo -> POST /images -> POST /images/{id}/masks (a click on the blouse)
    -> GET .../cutout -> retrieval POST /search/image (the cut-out, eligible only)
    -> try-on POST /persons + POST /tryon (the top product) -> GET /tryon/{job} -> result.png

The catalog is the Saleor demo store's apparel, written as a Google Merchant Center feed
and ingested with ``fittingroom ingest`` into a temporary home shared by the processes
(as the compose services share their volumes).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

pytestmark = [pytest.mark.real_model, pytest.mark.real_data]

ROOT = Path(__file__).resolve().parents[2]
STREET_PHOTO = Path("street-photos") / "photos" / "0001.jpg"
BLOUSE = (277, 250)
PERSON = Path("tryon-examples") / "catvton" / "person" / "men" / "Simon_1.png"


def shared_data() -> Path:
    from fittingroom.settings import CoreSettings

    path = CoreSettings().shared_data
    return path if path.is_absolute() else (ROOT / path).resolve()


def write_saleor_apparel_feed(dest: Path) -> int:
    """The Saleor apparel products as a Merchant Center JSONL feed; returns the product count."""
    src = shared_data() / "saleor-catalog"
    count = 0
    with dest.open("w") as out:
        for line in (src / "products.jsonl").read_text().splitlines():
            p = json.loads(line)
            if not p["category"].startswith(("Apparel/Shirts", "Apparel/Sweatshirts")):
                continue
            images = [str(src / i) for i in p["images"]]
            row = {
                "id": str(p["id"]),
                "title": p["name"],
                "description": p.get("description", ""),
                "price": f"{p['price_usd_min']:.2f} USD",
                "brand": p["attributes"].get("Brand", ""),
                "product_type": p["category"].replace("/", " > "),
                "image_link": images[0],
                "additional_image_link": ",".join(images[1:]),
            }
            out.write(json.dumps(row) + "\n")
            count += 1
    return count


class ServiceProcess:
    """``uvicorn --factory services.<name>.app:create_app`` on 127.0.0.1, any free port."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = (log_dir / f"{name}.log").open("w")
        self.url: str | None = None
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"services.{name}.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--log-level",
                "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.write(line)
            self.log.flush()
            m = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
            if m:
                self.url = m.group(1)

    def wait_healthy(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        last = "not started"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            if self.url:
                try:
                    resp = httpx.get(self.url + "/healthz", timeout=10)
                    if resp.status_code == 200:
                        return self.url
                    last = resp.text
                except httpx.HTTPError as exc:
                    last = str(exc)
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s: {last[:300]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("three-services")
    logs = ROOT / "test-artifacts" / "integration"
    logs.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETRIEVAL_", "SEGMENTATION_", "TRYON_"))}
    from fittingroom.settings import CoreSettings

    # a fresh home for the catalog, but the machine's model cache (filled by `fittingroom models fetch`)
    model_dir = str(CoreSettings().resolved_model_dir)
    env.update(
        FITTINGROOM_HOME=str(home),
        FITTINGROOM_SHARED_DATA=str(shared_data()),
        FITTINGROOM_MODEL_DIR=model_dir,
    )
    env.pop("FITTINGROOM_STORE_URI", None)
    env.pop("FITTINGROOM_INDEX_DIR", None)
    feed = home / "saleor-apparel.jsonl"
    assert write_saleor_apparel_feed(feed) >= 10
    fittingroom = str(Path(sys.executable).parent / "fittingroom")
    ingest = subprocess.run(
        [fittingroom, "ingest", str(feed), "--source", "saleor", "--no-progress"]
        + ["--image-root", str(shared_data() / "saleor-catalog")],  # the feed names images there,
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=900,
    )
    (logs / "ingest.log").write_text(ingest.stdout + ingest.stderr)
    assert ingest.returncode == 0, ingest.stderr[-2000:]

    started: list[ServiceProcess] = []
    try:
        retrieval = ServiceProcess("retrieval", env, logs)
        started.append(retrieval)
        segmentation = ServiceProcess("segmentation", env, logs)
        started.append(segmentation)
        urls = {
            "retrieval": retrieval.wait_healthy(300),
            "segmentation": segmentation.wait_healthy(300),
        }
        # try-on reads the product (and its eligible image) from the shared catalog store
        tryon = ServiceProcess("tryon", env, logs)
        started.append(tryon)
        urls["tryon"] = tryon.wait_healthy(300)
        yield urls
    finally:
        for proc in started:
            proc.stop()


def test_photo_to_try_on_through_three_processes(services: dict[str, str]) -> None:
    data = shared_data()
    with httpx.Client(timeout=120) as http:
        # 1. segmentation: upload the street photo, click the blouse, get the cut-out
        photo = (data / STREET_PHOTO).read_bytes()
        up = http.post(
            f"{services['segmentation']}/images", files={"file": ("0001.jpg", photo, "image/jpeg")}
        )
        assert up.status_code in (200, 201), up.text  # 201 Created: a new image resource
        image_id = up.json()["image_id"]
        x, y = BLOUSE
        masks = http.post(
            f"{services['segmentation']}/images/{image_id}/masks",
            json={"points": [{"x": x, "y": y, "label": 1}]},
        )
        assert masks.status_code == 200, masks.text
        best = masks.json()["candidates"][0]
        cut = http.get(f"{services['segmentation']}/images/{image_id}/masks/{best['mask_id']}/cutout")
        assert cut.status_code == 200 and cut.headers["content-type"] == "image/png"
        cutout = Image.open(io.BytesIO(cut.content))
        assert cutout.mode == "RGBA"

        # 2. retrieval: the cut-out as the query, try-on ready products only
        found = http.post(
            f"{services['retrieval']}/search/image",
            files={"image": ("cutout.png", cut.content, "image/png")},
            data={"eligible": "true", "k": "5"},
        )
        assert found.status_code == 200, found.text
        results = found.json()["results"]
        assert results, "no try-on ready product found for the blouse"
        assert all(r["tryon_eligible"] for r in results)
        product = results[0]
        assert product["garment_category"] in ("top", "outerwear"), product

        # 3. try-on: the person photo, then a job for the product
        person = (data / PERSON).read_bytes()
        p = http.post(f"{services['tryon']}/persons", files={"file": ("person.png", person, "image/png")})
        assert p.status_code in (200, 201), p.text
        job = http.post(
            f"{services['tryon']}/tryon",
            json={"person_id": p.json()["person_id"], "product_id": product["uid"]},
        )
        assert job.status_code in (200, 201, 202), job.text
        job_id = job.json()["job_id"]
        deadline = time.monotonic() + 300
        status = job.json()
        while status["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, f"try-on job still {status['status']}"
            time.sleep(0.5)
            status = http.get(f"{services['tryon']}/tryon/{job_id}").json()
        assert status["status"] == "done", status
        result = http.get(f"{services['tryon']}/tryon/{job_id}/result.png")
        assert result.status_code == 200
        rendered = Image.open(io.BytesIO(result.content))
        assert rendered.size[0] > 100 and rendered.size[1] > 100
