"""Front-end packages installed from npm at setup (node_modules), served under /assets/.

`make install` runs `npm ci`, which puts the pinned packages (package-lock.json) into node_modules/ at the
repository root; nothing of them is copied into the repository. This blueprint serves files of an allow-list
of packages and of file kinds only, so that node_modules' other contents (package.json files, scripts, the
dependencies' own trees) are not exposed. A request whose path leaves the package (`..`, hidden segments,
symbolic links pointing elsewhere) is refused. Responses may be cached for a year: pages link them with
`asset_url()`, which adds the installed package's version, so an upgrade changes the URL.

Without node_modules every /assets/ URL is a 404 that says how to install the packages; pages check
`assets_installed()` and fall back to working without them. /favicon.ico is answered here too (no icon).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, current_app, send_file

bp = Blueprint("assets", __name__)

REPOSITORY = Path(__file__).resolve().parent.parent
PACKAGES = ("@zazuko/yasgui", "cytoscape")
# the kinds of files served, by suffix, with their media types (not left to the platform's mimetypes table)
MEDIA_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".map": "application/json",
               ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".svg": "image/svg+xml",
               ".png": "image/png", ".gif": "image/gif"}
SUFFIXES = tuple(MEDIA_TYPES)
MAX_AGE = 365 * 24 * 3600


class AssetError(Exception):
    """A request for something /assets/ does not serve; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def assets_root() -> Path:
    """The node_modules folder: CMOKG_ASSETS when set, else node_modules at the repository root."""
    configured = current_app.config.get("CMOKG_ASSETS")
    return Path(configured) if configured else REPOSITORY / "node_modules"


def split_package(subpath: str) -> tuple[str, str]:
    """(package, file inside it) of a path under /assets/; scoped packages take two segments."""
    segments = subpath.split("/")
    for segment in segments:
        if not segment or segment.startswith(".") or "\\" in segment or "\x00" in segment:
            raise AssetError(400, f"the asset path {subpath!r} has an empty, hidden or '..' segment "
                                  f"({segment!r}): name a file inside a package")
    width = 2 if segments[0].startswith("@") else 1
    package, rest = "/".join(segments[:width]), "/".join(segments[width:])
    if package not in PACKAGES:
        raise AssetError(404, f"package {package!r} is not served here; /assets/ serves " + ", ".join(PACKAGES))
    if not rest:
        raise AssetError(404, f"name a file inside {package}, e.g. /assets/{package}/package-file.js")
    return package, rest


def locate(subpath: str) -> Path:
    """The file an /assets/ path names, checked against the allow-lists; AssetError otherwise."""
    package, rest = split_package(subpath)
    if not rest.lower().endswith(SUFFIXES):
        raise AssetError(404, f"{subpath!r}: only these kinds of files are served: " + " ".join(SUFFIXES))
    root = assets_root()
    if not root.is_dir():
        raise AssetError(404, f"the front-end packages are not installed (no folder {root}): run `make install` "
                              "(npm ci), or set CMOKG_ASSETS to a node_modules folder")
    package_dir = (root / package).resolve()
    path = (package_dir / rest).resolve()
    if not path.is_relative_to(package_dir):
        raise AssetError(400, f"the asset path {subpath!r} leads outside the package {package}")
    if not path.is_file():
        raise AssetError(404, f"no file {rest!r} in the installed package {package} (under {root})")
    return path


@bp.route("/assets/<path:subpath>")
def asset(subpath: str) -> Response:
    """Front-end files installed from npm (YASGUI, cytoscape), allow-listed by package and kind, cached long."""
    try:
        path = locate(subpath)
    except AssetError as exc:
        return Response(str(exc) + "\n", status=exc.status, mimetype="text/plain")
    response = send_file(path, mimetype=MEDIA_TYPES[path.suffix.lower()], max_age=MAX_AGE, conditional=True,
                         etag=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response


@bp.route("/favicon.ico")
def favicon() -> Response:
    """Browsers ask every site for /favicon.ico, also when showing a document that is not a page (query results,
    RDF); there is no icon, and an empty 204 keeps a 404 out of every reader's console."""
    response = Response(status=204)
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    return response


@lru_cache(maxsize=16)
def _installed_version(package_json: Path, mtime: float) -> str | None:
    try:
        version = json.loads(package_json.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return str(version) if version else None


def package_version(package: str) -> str | None:
    """The installed version of an allow-listed package (its package.json), None when it is not installed."""
    package_json = assets_root() / package / "package.json"
    try:
        mtime = package_json.stat().st_mtime
    except OSError:
        return None
    return _installed_version(package_json, mtime)


def assets_installed(*files: str) -> bool:
    """Whether every named asset (`package/path`) can be served, so a page can offer its fallback instead."""
    try:
        for name in files:
            locate(name)
    except AssetError:
        return False
    return True


@bp.app_template_global()
def asset_url(name: str) -> str:
    """/assets/ URL of a file of an allow-listed package, with the installed version as a cache key."""
    package, _ = split_package(name)
    version = package_version(package)
    return f"/assets/{name}" + (f"?v={version}" if version else "")
