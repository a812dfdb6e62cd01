"""The two web pages: the demo shop at ``/demo`` (``/`` points there) and the dashboard.

Why plain files served from memory: the pages are a few kilobytes of
hand-written HTML, CSS and JS in ``app/web`` (no build step, nothing fetched
from elsewhere at run time). They are read once, when the module is imported,
and each asset is served under a URL that carries its content hash, so a
browser keeps it for a year (``immutable``) and a new release changes the URL.
The HTML itself is revalidated on every visit (``no-cache`` with an ETag, a
304 when unchanged). Everything is sent gzipped to browsers that accept it.
The pages' Content-Security-Policy allows nothing from other origins.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from app.errors import NotFound
from models.registry import retrainable_kinds

WEB = Path(__file__).resolve().parent.parent / "web"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE_CACHE = "no-cache"  # revalidate: the page names the current assets
ASSET_CACHE = "public, max-age=31536000, immutable"  # the URL changes with the content
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_STATIC_REF = re.compile(r"\{\{static:([\w.-]+)\}\}")


@dataclass(frozen=True)
class WebFile:
    """One file as it is sent: its bytes, gzipped bytes, type and validator."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, suffix: str) -> WebFile:
        digest = hashlib.sha256(body).hexdigest()[:16]
        return cls(body, gzip.compress(body, 9, mtime=0), _TYPES[suffix], f'"{digest}"')

    def response(self, request: Request, cache_control: str, headers: dict[str, str]) -> Response:
        common = {"ETag": self.etag, "Cache-Control": cache_control, **headers}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=common)
        common["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("accept-encoding", "") and len(self.gzipped) < len(
            self.body
        ):
            common["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=common)
        return Response(self.body, media_type=self.media_type, headers=common)


def _retrain_options() -> str:
    """The dashboard's model choices, from the one table of model kinds."""
    return "".join(
        f'<option value="{html.escape(k)}">{html.escape(k)}</option>' for k in retrainable_kinds()
    )


def load_web(folder: Path = WEB) -> tuple[dict[str, WebFile], dict[str, WebFile]]:
    """The assets by name, and the pages by name with their asset references resolved."""
    assets = {
        p.name: WebFile.of(p.read_bytes(), p.suffix)
        for p in sorted(folder.iterdir())
        if p.suffix in _TYPES and p.suffix != ".html"
    }

    def resolve(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"/static/{name}?v={assets[name].etag.strip(chr(34))}"  # KeyError: a typo

    pages = {}
    for p in sorted(folder.glob("*.html")):
        text = _STATIC_REF.sub(resolve, p.read_text(encoding="utf-8"))
        text = text.replace("{{retrain_options}}", _retrain_options())
        pages[p.stem] = WebFile.of(text.encode(), ".html")
    return assets, pages


ASSETS, PAGES = load_web()
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/demo", status_code=307)


@router.get("/demo")
async def demo(request: Request) -> Response:
    """Click through a visit and watch the recommendations change."""
    return PAGES["demo"].response(request, PAGE_CACHE, _PAGE_HEADERS)


@router.get("/dashboard")
async def dashboard(request: Request) -> Response:
    """Models, retrains and the service's own metrics (the data needs the admin token)."""
    return PAGES["dashboard"].response(request, PAGE_CACHE, _PAGE_HEADERS)


@router.get("/static/{name}")
async def static(name: str, request: Request) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise NotFound(f"no file {name!r}")
    return asset.response(request, ASSET_CACHE, {"X-Content-Type-Options": "nosniff"})
