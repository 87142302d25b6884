"""The shared HTTP guards: body limits that stream, JSON guard, one fault -> status map."""

from __future__ import annotations

import io

import pytest
from fastapi import FastAPI, File, UploadFile
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import BaseModel

from fittingroom.images import decode_image
from services.http import guard, json_problem, read_upload


class Body(BaseModel):
    x: float
    name: str = ""


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    guard(app, max_bytes=10_000, limits={"/small": 100})

    @app.post("/echo")
    async def echo(body: Body) -> dict:
        return {"x": body.x, "name": body.name}

    @app.post("/small")
    async def small(body: Body) -> dict:
        return {"ok": True}

    @app.post("/upload")
    async def upload(file: UploadFile = File(...)) -> dict:
        data = await read_upload(file, 5_000)
        img = decode_image(data, name=file.filename or "upload")
        return {"size": list(img.size)}

    return TestClient(app)


def png(side: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_content_length_over_the_limit_is_413_before_reading(client: TestClient) -> None:
    r = client.post("/echo", content=b"{" + b" " * 20_000 + b"}", headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    head = b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'

    def chunks():  # no Content-Length: a chunked multipart upload of 50 kB
        yield head
        for _ in range(50):
            yield b"x" * 1000
        yield b"\r\n--B--\r\n"

    r = client.post("/upload", content=chunks(), headers={"content-type": "multipart/form-data; boundary=B"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_per_route_limit(client: TestClient) -> None:
    assert client.post("/small", json={"x": 1}).status_code == 200
    r = client.post("/small", json={"x": 1, "name": "a" * 200})
    assert r.status_code == 413


@pytest.mark.parametrize("raw", [b'{"x": NaN}', b'{"x": Infinity}', b'{"x": -Infinity}'])
def test_non_finite_numbers_are_422(client: TestClient, raw: bytes) -> None:
    r = client.post("/echo", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "NaN" in r.json()["detail"]


def test_lone_surrogate_is_422(client: TestClient) -> None:
    r = client.post("/echo", content=b'{"x": 1, "name": "\\ud800"}', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "surrogate" in r.json()["detail"]
    assert json_problem(b'{"name": "\\ud83d\\ude00"}') is None  # a valid surrogate pair is fine


def test_validation_error_is_a_short_sentence_without_the_input(client: TestClient) -> None:
    r = client.post("/echo", json={"x": "not a number " * 500})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.startswith("invalid request: x:") and len(detail) < 300


def test_upload_faults_get_the_shared_statuses(client: TestClient) -> None:
    assert client.post("/upload", files={"file": ("a.png", png())}).json() == {"size": [8, 8]}
    r = client.post("/upload", files={"file": ("notes.txt", b"hello")})
    assert r.status_code == 415 and "notes.txt" in r.json()["detail"]
    r = client.post("/upload", files={"file": ("empty.png", b"")})
    assert r.status_code == 415 and "empty" in r.json()["detail"]
    r = client.post("/upload", files={"file": ("big.png", b"\x89PNG" + b"0" * 6_000)})
    assert r.status_code == 413


def test_a_body_that_cannot_be_parsed_is_the_documented_422(client: TestClient) -> None:
    """FastAPI answers a broken multipart body with an undocumented 400; every service says 422."""
    r = client.post(
        "/upload",
        content=b"--XYZ\r\nabc",
        headers={"content-type": "multipart/form-data"},  # no boundary
    )
    assert r.status_code == 422, r.text
    assert "could not be read" in r.json()["detail"]
