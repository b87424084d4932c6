"""`/schema/swagger` works offline: every file the page loads is served by the app itself."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*['"]([^'"]+)['"]""", re.IGNORECASE)


async def test_the_swagger_page_loads_its_files_from_the_app(api: httpx.AsyncClient):
    page = await api.get("/schema/swagger")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = ASSET.findall(page.text)
    assert {urlsplit(url).path.rsplit("/", 1)[-1] for url in assets} >= {
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
    }, assets
    for url in assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), f"{url} is not served locally"
        served = await api.get(url)
        assert served.status_code == 200, url
        extension = url[url.rfind(".") :]
        assert served.headers["content-type"].split(";")[0] == CONTENT_TYPES[extension], url
        assert len(served.content) > 1000, url
    bundle = await api.get(next(url for url in assets if url.endswith("/swagger-ui-bundle.js")))
    assert b"SwaggerUIBundle" in bundle.content


async def test_the_assets_need_no_key_and_nothing_else_is_served_beside_them(api: httpx.AsyncClient):
    missing = await api.get("/static/swagger-ui/no-such-file.js")
    escape = await api.get("/static/swagger-ui/..%2F..%2F..%2F..%2Fpyproject.toml")

    assert missing.status_code == 404
    assert escape.status_code == 404
