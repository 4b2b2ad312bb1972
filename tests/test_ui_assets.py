"""/ui and /docs over plain HTTP (no browser): the pages and every asset they load come
from this server, with a Content-Security-Policy that allows no other origin."""

from __future__ import annotations

import re

import pytest

from mlagent.ui.routes import STATIC

from .harness import ServerProcess


@pytest.fixture(scope="module")
def client(tmp_path_factory, fake_llm, fake_hub):
    server = ServerProcess(tmp_path_factory.mktemp("ui-assets"), {"HF_ENDPOINT": fake_hub.url,
                                                                   "MLAGENT_INFERENCE_BASE_URL": fake_llm.url})
    server.start(timeout=120)  # the first start on a busy machine imports a lot
    with server.client() as c:
        yield c
    server.stop()


def test_the_dashboard_and_its_modules_are_served_with_a_strict_policy(client):
    r = client.get("/ui", follow_redirects=True)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "unsafe" not in csp
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert any(p.name == "app.js" for p in files)
    for path in files:
        rel = path.relative_to(STATIC).as_posix()
        asset = client.get(f"/ui/static/{rel}")
        assert asset.status_code == 200, rel
        assert asset.headers["content-security-policy"] == csp
        text = path.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f"{rel} names another host"
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, rel


def test_docs_and_redoc_load_their_assets_from_this_server(client):
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text) + re.findall(r"""url: ?['"]([^'"]+)['"]""", r.text)
        assert urls and all(u.startswith("/") for u in urls), urls
        assert "default-src 'self'" in r.headers["content-security-policy"]
        for u in urls:
            assert client.get(u).status_code == 200, u
    assert client.get("/openapi.json").json()["info"]["title"] == "mlagent"
