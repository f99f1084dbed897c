"""The web chat page: ``/`` and its static assets, read once from the files shipped in the package.

Assets are served under ``/static/<version>/`` where the version is a hash of every file, so they
can be cached forever (``immutable``) while the page itself is revalidated on every load: an
upgrade changes the version and the page picks the new files up on its next load. ES module
imports are relative, so they stay inside the same version.

Every response carries a strict Content-Security-Policy: scripts only from this origin (no inline
script), no plugins or frames, and Trusted Types so that only DOMPurify's policy can turn a string
into HTML.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request, Response

from chatserver.errors import NotFound

INDEX = "index.html"
STATIC_PLACEHOLDER = b"{{static}}"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
COMPRESSIBLE = {".html", ".js", ".mjs", ".css", ".svg", ".json", ".txt"}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types dompurify",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str

    @classmethod
    def of(cls, name: str, body: bytes) -> Asset:
        suffix = name[name.rfind(".") :].lower() if "." in name else ""
        content_type = CONTENT_TYPES.get(suffix, "application/octet-stream")
        # mtime=0 keeps the compressed bytes, and so the ETag's meaning, stable across restarts.
        gzipped = gzip.compress(body, mtime=0) if suffix in COMPRESSIBLE else None
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        return cls(body, gzipped, content_type, etag)


@dataclass(frozen=True, slots=True)
class WebAssets:
    version: str
    index: Asset
    files: Mapping[str, Asset]

    @classmethod
    def load(cls, root: Traversable) -> WebAssets:
        raw = dict(_walk(root, ""))
        if INDEX not in raw:
            raise RuntimeError(f"the web page is missing: no {INDEX} in {root}")
        digest = hashlib.sha256()
        for name in sorted(raw):
            digest.update(name.encode() + b"\0" + hashlib.sha256(raw[name]).digest())
        version = digest.hexdigest()[:16]
        page = raw.pop(INDEX).replace(STATIC_PLACEHOLDER, f"/static/{version}".encode())
        return cls(version, Asset.of(INDEX, page), {name: Asset.of(name, body) for name, body in raw.items()})


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _walk(entry, f"{name}/")
        else:
            yield name, entry.read_bytes()


def _respond(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": asset.etag}
    if asset.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Length"] = str(len(body))
    content = b"" if request.method == "HEAD" else body
    return Response(content, headers=headers, media_type=asset.content_type)


def build_router(root: Traversable | None = None) -> APIRouter:
    """Routes for ``/`` and ``/static/<version>/<path>``; reads the files once, here."""
    assets = WebAssets.load(root or files("chatserver").joinpath("web"))
    router = APIRouter(include_in_schema=False)

    @router.api_route("/", methods=["GET", "HEAD"])
    async def page(request: Request) -> Response:
        return _respond(request, assets.index, PAGE_CACHE)

    @router.api_route("/static/{version}/{path:path}", methods=["GET", "HEAD"])
    async def static(version: str, path: str, request: Request) -> Response:
        asset = assets.files.get(path)
        if asset is None or version != assets.version:
            raise NotFound("no such file")
        return _respond(request, asset, ASSET_CACHE)

    return router
