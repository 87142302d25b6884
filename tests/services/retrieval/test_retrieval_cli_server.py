"""``fittingroom search --server URL``: the query goes to a real all-in-one server (uvicorn on a
free loopback port, in a thread, over the fake colour catalog) and prints what a local search
of the same catalog prints; an unreachable server is exit 2 naming the URL."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from retrieval_fakes import COLORS, ColorEncoder
from typer.testing import CliRunner

import fittingroom.models.specs as specs
from fittingroom.cli import build_app
from fittingroom.cli.search_client import search_url
from fittingroom.settings import get_settings


@pytest.fixture()
def server(catalog, tmp_path: Path) -> Iterator[str]:
    """The all-in-one app with the retrieval service over ``catalog``, on 127.0.0.1; its URL."""
    import uvicorn

    from services.app import ServeSettings, create_app
    from services.retrieval.app import create_app as create_retrieval

    store, encoder, settings, _ = catalog
    app = create_app(
        ServeSettings(frontend_dir=tmp_path / "no-page"),
        services={"retrieval": lambda: create_retrieval(settings, store=store, encoder=encoder)},
    )
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (srv.started and srv.servers):
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def cli(catalog, monkeypatch):
    """``cli(*args, local=bool)``: ``fittingroom search ARGS`` (local: with the catalog's
    ``--store``/``--index-dir`` and the fake encoder); no FITTINGROOM_SERVER unless a test sets it."""
    _, _, settings, _ = catalog
    monkeypatch.setattr(specs, "get_encoder", lambda core, name, **kw: ColorEncoder())
    monkeypatch.delenv("FITTINGROOM_SERVER", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    common = ["--store", settings.store_uri, "--index-dir", str(settings.index_dir)]

    def invoke(*args: str, local: bool = False):
        get_settings.cache_clear()
        return runner.invoke(
            build_app("search"), ["search", *args, *(common if local else [])], env={"COLUMNS": "400"}
        )

    yield invoke
    get_settings.cache_clear()


def json_rows(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def test_text_query_on_the_server_prints_what_a_local_search_prints(cli, server):
    local = cli("--text", "green", "-k", "3", "--json", local=True)
    remote = cli("--text", "green", "-k", "3", "--json", "--server", server)
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    assert len(json_rows(remote.stdout)) == 3
    assert json_rows(remote.stdout) == json_rows(local.stdout)
    local = cli("--text", "red", "-k", "2", local=True)
    remote = cli("--text", "red", "-k", "2", "--server", server + "/")
    assert remote.exit_code == 0, remote.output
    assert "next page: --offset 2" in remote.stdout

    # the table too, but for the time in its title (and the centring of the title, which depends on it)
    def untimed(out: str) -> list[str]:
        return [" ".join(line.split()) for line in re.sub(r"\(\d+ ms\)", "", out).splitlines()]

    assert untimed(remote.stdout) == untimed(local.stdout)


def test_image_upload_with_box_and_filters_on_the_server(cli, server, tmp_path):
    img = Image.new("RGB", (40, 20), COLORS["green"])
    img.paste(COLORS["blue"], (20, 0, 40, 20))
    path = tmp_path / "photo.png"
    img.save(path)
    args = ("--image", str(path), "--box", "20,0,40,20", "--json", "-k", "4")
    local, remote = cli(*args, local=True), cli(*args, "--server", server)
    assert remote.exit_code == 0, remote.output
    rows = json_rows(remote.stdout)
    assert rows == json_rows(local.stdout) and len(rows) == 4
    assert {r["color"] for r in rows[:3]} == {"Blue"}  # the box holds the blue half
    remote = cli(*args, "--category", "Pants", "--eligible", "--server", server)
    local = cli(*args, "--category", "Pants", "--eligible", local=True)
    assert remote.exit_code == 0, remote.output
    assert (
        [r["id"] for r in json_rows(remote.stdout)]
        == ["test:P2"]
        == [r["id"] for r in json_rows(local.stdout)]
    )


def test_more_like_this_and_the_server_s_errors(cli, server):
    remote = cli("--product", "test:T3", "--json", "-k", "2", "--server", server)
    assert remote.exit_code == 0, remote.output
    assert json_rows(remote.stdout) == json_rows(
        cli("--product", "test:T3", "--json", "-k", "2", local=True).stdout
    )
    missing = cli("--product", "test:NOPE", "--server", server)
    assert missing.exit_code == 1 and "404" in missing.output and "test:NOPE" in missing.output
    bare = cli("--product", "T3", "--server", server)  # the server wants 'source:id'
    assert bare.exit_code == 2 and "422" in bare.output and server in bare.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_exit_2_naming_the_url(cli):
    url = f"http://127.0.0.1:{free_port()}"
    r = cli("--text", "red", "--server", url)
    assert r.exit_code == 2
    message = " ".join(r.output.split())
    assert f"cannot reach the fittingroom server at {url}" in message and "fittingroom serve" in message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--server", "ftp://example.test"), "not an http(s) URL"),
        (("--server", "http://127.0.0.1:9", "--encoder", "offline"), "choose a local search"),
        (("--server", "http://127.0.0.1:9", "--image", "/nonexistent/x.jpg"), "no such file"),
    ],
)
def test_bad_server_arguments(cli, args, message):
    r = cli("--text", "red", *args)
    assert r.exit_code == 2 and message in " ".join(r.output.split())


def test_the_setting_sends_queries_to_the_server_unless_told_otherwise(cli, server, monkeypatch):
    monkeypatch.setenv("FITTINGROOM_SERVER", f"http://127.0.0.1:{free_port()}")
    r = cli("--text", "red")  # the setting is used: that server is not there
    assert r.exit_code == 2 and "cannot reach" in r.output
    assert cli("--text", "red", "--server", "", local=True).exit_code == 0  # '' = local
    assert cli("--text", "red", local=True).exit_code == 0  # --store/--index-dir: local
    monkeypatch.setenv("FITTINGROOM_SERVER", server)
    r = cli("--text", "green", "-k", "2", "--json")
    assert r.exit_code == 0 and {row["id"] for row in json_rows(r.stdout)} == {"test:T2", "test:J2"}


def test_search_url():
    assert search_url("http://h:8000/", image=False) == "http://h:8000/api/retrieval/search"
    assert search_url("http://h:8000", image=True) == "http://h:8000/api/retrieval/search/image"
