"""Make the HTML reference that `redocly build-docs` wrote (build/docs/index.html) call no one.

Redoc inlines its whole bundle (`--inlineBundle`) and `redocly.yaml` turns its telemetry off, but
the sidebar's "API docs by Redocly" attribution still loads its logo from the Redocly CDN, and no
Redoc CE option hides it. This step, run by `make docs` after the build:

- points the attribution at the same logo text drawn by a local SVG (a `data:` URI), keeping the
  attribution and its link;
- adds a Content-Security-Policy that lets the page load nothing from any other origin, so that a
  later Redoc that asks for something else is refused by the browser instead of leaving the machine.

It fails, saying so, when the build no longer holds the logo URLs it replaces (a Redoc upgrade), so
that the step is revisited rather than silently doing nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DOCS_HTML = ROOT / "build" / "docs" / "index.html"
CDN_LOGOS = (
    "https://cdn.redoc.ly/redoc/logo-mini-full.svg",
    "https://cdn.redoc.ly/redoc/logo-mini.svg",
)
LOGO_SVG = (
    "<svg xmlns='http://www.w3.org/2000/svg' width='64' height='16' viewBox='0 0 64 16'>"
    "<text x='0' y='13' font-family='sans-serif' font-size='13' font-weight='600' fill='#1a1a1a'>"
    "Redocly</text>"
    "</svg>"
)
LOGO_URI = "data:image/svg+xml," + quote(LOGO_SVG, safe="'/=:; ")
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'"
)
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'


def make_offline(html: str) -> str:
    """The page with the CDN logos replaced and the CSP added; ValueError if either cannot be done."""
    missing = [url for url in CDN_LOGOS if url not in html]
    if missing:
        raise ValueError(f"the built page no longer contains {missing}: revisit tools/offline_docs.py")
    for url in CDN_LOGOS:
        html = html.replace(url, LOGO_URI)
    head = html.find("<head>", 0, 1000)  # the page's own, not one in the inlined bundle's strings
    if head < 0:
        raise ValueError("the built page does not start with a <head>")
    at = head + len("<head>")
    return html[:at] + CSP_META + html[at:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("page", nargs="?", type=Path, default=DOCS_HTML)
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"offline_docs: {args.page} is missing: build it first (`npm run docs`)", file=sys.stderr)
        return 1
    html = args.page.read_text(encoding="utf-8")
    if CSP_META in html:
        print(f"offline_docs: {args.page} is already offline")
        return 0
    try:
        args.page.write_text(make_offline(html), encoding="utf-8")
    except ValueError as exc:
        print(f"offline_docs: {exc}", file=sys.stderr)
        return 1
    print(f"offline_docs: {args.page}: the CDN logo is local; a CSP keeps every request on the page's origin")
    return 0


if __name__ == "__main__":
    sys.exit(main())
