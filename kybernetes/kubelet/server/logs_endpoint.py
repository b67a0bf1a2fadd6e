"""`/logs/`: the node's log directory served the way Go's http.FileServer serves a
directory (upstream's kubelet hands /logs/ to one rooted at /var/log): listings as
`<pre>` links (directories with a trailing /), files with their content type (from the
name, else sniffed: text or octet-stream), ranges and Last-Modified as aiohttp's file
response gives them, a directory without its trailing slash redirected to it, 404 for
what is not there.  Paths are cleaned against the root first, so `..` never leaves it;
symbolic links pointing outside the root are not followed (404)."""

from __future__ import annotations

import asyncio
import html
import mimetypes
import os
import posixpath
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from aiohttp import web

SNIFF_LEN = 512
NOT_FOUND = "404 page not found\n"
# the control bytes that make Go's sniffer call data binary rather than text
_BINARY = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def resolve(root: Path, tail: str) -> Optional[Path]:
    """The file or directory `tail` names under `root`, or None when it would leave the
    root (through `..` after cleaning, or a symbolic link)."""
    clean = posixpath.normpath("/" + tail).lstrip("/")
    target = Path(root, clean) if clean not in ("", ".") else Path(root)
    real_root = os.path.realpath(root)
    real = os.path.realpath(target)
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        return None
    return target


def dir_listing(path: Path) -> str:
    """The HTML listing Go's FileServer writes for a directory, sorted by name."""
    rows = []
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        name = entry.name + ("/" if entry.is_dir() else "")
        rows.append(f'<a href="{quote(name)}">{html.escape(name, quote=True)}</a>\n')
    return ('<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n'
            + "".join(rows) + "</pre>\n")


def content_type(path: Path) -> str:
    """By extension first, else sniffed from the first bytes as Go does for text vs binary."""
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed:
        return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")
    with open(path, "rb") as f:
        head = f.read(SNIFF_LEN)
    if any(b in _BINARY for b in head):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


async def serve(request: web.Request, root: Path, tail: str) -> web.StreamResponse:
    """Answer a GET/HEAD for `/logs/<tail>` from `root`."""
    target = resolve(root, tail)
    if target is None:
        return web.Response(status=404, text=NOT_FOUND)

    def look() -> tuple[str, Optional[str], Optional[str]]:
        """(kind, listing, content type) where kind is missing, dir or file."""
        if not target.exists():
            return "missing", None, None
        if target.is_dir():
            index = target / "index.html"
            if index.is_file():
                return "index", None, "text/html; charset=utf-8"
            return "dir", dir_listing(target), None
        return "file", None, content_type(target)

    try:
        kind, listing, ctype = await asyncio.to_thread(look)
    except PermissionError:
        return web.Response(status=403, text="403 Forbidden\n")
    except OSError as e:
        return web.Response(status=500, text=f"500 Internal Server Error: {e}\n")
    if kind == "missing":
        return web.Response(status=404, text=NOT_FOUND)
    # Go's FileServer: directories end with a slash, files do not (relative redirects)
    last = request.path.rstrip("/").rsplit("/", 1)[-1] or "."
    if kind in ("dir", "index") and not request.path.endswith("/"):
        return _redirect(request, last + "/")
    if kind == "file" and request.path.endswith("/"):
        return _redirect(request, "../" + last)
    if kind == "dir":
        return web.Response(text=listing, content_type="text/html", charset="utf-8")
    path = target / "index.html" if kind == "index" else target
    return web.FileResponse(path, headers={"Content-Type": ctype or "application/octet-stream"})


def _redirect(request: web.Request, location: str) -> web.Response:
    if request.query_string:
        location += "?" + request.query_string
    return web.Response(status=301, headers={"Location": location},
                        text=f'<a href="{html.escape(location)}">Moved Permanently</a>.\n\n',
                        content_type="text/html")
