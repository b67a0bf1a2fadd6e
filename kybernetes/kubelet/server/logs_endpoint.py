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
CHUNK = 64 * 1024
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


def _go_html_escape(text: str) -> str:
    """Go's html escaping of a listed name (&#34; and &#39; for the quotes)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


def dir_listing(path: Path) -> str:
    """The HTML listing Go's FileServer writes for a directory, sorted by name."""
    rows = []
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        name = entry.name + ("/" if entry.is_dir() else "")
        rows.append(f'<a href="{quote(name)}">{_go_html_escape(name)}</a>\n')
    return ('<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n'
            + "".join(rows) + "</pre>\n")


def content_type(path: Path) -> str:
    """By extension first, else sniffed from the first bytes as Go does for text vs binary
    (and gzip, the usual rotated log)."""
    guessed, encoding = mimetypes.guess_type(path.name)
    if guessed and not encoding:
        return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")
    with open(path, "rb") as f:
        head = f.read(SNIFF_LEN)
    if head.startswith(b"\x1f\x8b\x08"):
        return "application/x-gzip"
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
    # served by hand rather than aiohttp's FileResponse, which would swap in a sibling
    # "<name>.gz" (an older, rotated log) for a client taking gzip
    return await send_file(request, path, ctype or "application/octet-stream")


def byte_range(header: str, size: int) -> Optional[tuple[int, int]]:
    """[start, end) of a single `bytes=` range, or None when it cannot be satisfied;
    ValueError when the header is not one range (then the whole file is sent)."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise ValueError(header)
    first, _, last = spec.strip().partition("-")
    if not first:  # the last N bytes
        n = int(last)
        return (max(0, size - n), size) if n > 0 and size > 0 else None
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    return (start, end) if start < size and start < end else None


async def send_file(request: web.Request, path: Path, ctype: str) -> web.StreamResponse:
    """The file whole or one requested byte range, with Last-Modified (Go's ServeContent
    without conditional requests or multipart ranges)."""
    f = await asyncio.to_thread(open, path, "rb")
    try:
        st = os.fstat(f.fileno())
        size, (start, end), status = st.st_size, (0, st.st_size), 200
        rng = request.headers.get("Range", "")
        if rng:
            try:
                span = byte_range(rng, size)
            except ValueError:
                span = (0, size)
            else:
                if span is None:
                    return web.Response(status=416, text="invalid range: failed to overlap\n",
                                        headers={"Content-Range": f"bytes */{size}"})
                status = 206
            start, end = span
        resp = web.StreamResponse(status=status, headers={"Content-Type": ctype, "Accept-Ranges": "bytes"})
        resp.last_modified = st.st_mtime
        resp.content_length = end - start
        if status == 206:
            resp.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        await resp.prepare(request)
        if request.method != "HEAD":
            await asyncio.to_thread(f.seek, start)
            left = end - start
            while left > 0:
                chunk = await asyncio.to_thread(f.read, min(CHUNK, left))
                if not chunk:
                    break  # truncated meanwhile (log rotation)
                left -= len(chunk)
                await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        await asyncio.to_thread(f.close)


def _redirect(request: web.Request, location: str) -> web.Response:
    if request.query_string:
        location += "?" + request.query_string
    return web.Response(status=301, headers={"Location": location},
                        text=f'<a href="{html.escape(location)}">Moved Permanently</a>.\n\n',
                        content_type="text/html")
