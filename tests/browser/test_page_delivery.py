"""How the page and its files are served: content types, the Content-Security-Policy, caching."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from chatserver.api.routes.web import WebAssets
from tests.e2e.harness import LiveServer

ASSET = re.compile(r'(?:src|href)="(/static/([0-9a-f]+)/([^"]+))"')


def page(server: LiveServer, **headers: str) -> httpx.Response:
    return httpx.get(f"{server.url}/", headers=headers, timeout=30)


def asset_urls(server: LiveServer) -> dict[str, str]:
    """Every file the page links, by its path inside the version folder."""
    return {match[2]: match[0] for match in ASSET.findall(page(server).text)}


def test_the_page_is_served_at_the_root_without_a_token(server: LiveServer) -> None:
    response = page(server)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert "<title>chatserver</title>" in response.text


def test_the_page_has_a_strict_content_security_policy(server: LiveServer) -> None:
    headers = page(server).headers

    policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_the_page_has_no_inline_script_or_style(server: LiveServer) -> None:
    html = page(server).text

    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in tag for tag in scripts)
    assert re.findall(r"<script\b[^>]*>\s*[^<\s]", html) == []
    assert re.findall(r"\son[a-z]+\s*=", html) == []
    assert re.findall(r"\sstyle\s*=|<style", html) == []


def test_assets_are_versioned_typed_and_cached_for_good(server: LiveServer) -> None:
    urls = asset_urls(server)
    expected = {
        "app.js": "text/javascript; charset=utf-8",
        "styles.css": "text/css; charset=utf-8",
        "favicon.svg": "image/svg+xml",
        "vendor/purify.min.js": "text/javascript; charset=utf-8",
    }
    assert set(expected) <= set(urls)
    versions = {url.split("/")[2] for url in urls.values()}
    assert len(versions) == 1

    for name, content_type in expected.items():
        response = httpx.get(f"{server.url}{urls[name]}", timeout=30)
        assert response.status_code == 200, name
        assert response.headers["content-type"] == content_type, name
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable", name
        assert response.headers["x-content-type-options"] == "nosniff", name
    module = httpx.get(f"{server.url}/static/{versions.pop()}/vendor/marked.esm.js", timeout=30)
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"


def test_a_known_etag_gets_a_304_without_a_body(server: LiveServer) -> None:
    first = page(server)

    again = page(server, **{"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


def test_files_are_gzipped_for_clients_that_accept_it(server: LiveServer) -> None:
    url = f"{server.url}{asset_urls(server)['app.js']}"

    plain = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
    zipped = httpx.get(url, headers={"Accept-Encoding": "gzip"}, timeout=30)

    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(plain.content)
    assert zipped.content == plain.content
    assert zipped.headers["vary"] == "Accept-Encoding"


def test_head_answers_headers_only(server: LiveServer) -> None:
    response = httpx.head(f"{server.url}/", headers={"Accept-Encoding": "identity"}, timeout=30)

    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(
        page(server, **{"Accept-Encoding": "identity"}).content
    )


@pytest.mark.parametrize(
    "path",
    [
        "/static/{version}/nope.js",
        "/static/0123456789abcdef/app.js",
        "/static/{version}/%2e%2e/%2e%2e/config.py",
    ],
)
def test_unknown_files_and_old_versions_are_404_json(server: LiveServer, path: str) -> None:
    version = asset_urls(server)["app.js"].split("/")[2]

    response = httpx.get(server.url + path.format(version=version), timeout=30)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_page_stays_out_of_the_openapi_schema(server: LiveServer) -> None:
    paths = httpx.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]

    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/static")]


def test_the_version_changes_with_any_file_and_the_page_points_at_it(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<script src="{{static}}/app.js"></script>')
    (tmp_path / "app.js").write_text("one")
    (tmp_path / ".hidden").write_text("not served")

    before = WebAssets.load(tmp_path)
    (tmp_path / "app.js").write_text("two")
    after = WebAssets.load(tmp_path)

    assert before.version != after.version
    assert after.index.body == f'<script src="/static/{after.version}/app.js"></script>'.encode()
    assert set(after.files) == {"app.js"}


def test_a_package_without_its_page_fails_at_startup(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"index\.html"):
        WebAssets.load(tmp_path)
