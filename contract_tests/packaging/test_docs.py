"""The HTML reference that `make docs` builds from openapi.yaml, as the mock serves it at `/docs`.

The browser test loads `/docs` from a served mock in headless Chromium (Debian's `chromium`, driven
by the pinned playwright-core), walks the overview, each operation and the webhook, opens the error
answers' tabs, and saves a screenshot to build/docs/screenshot.png. Every request that would leave
the mock is blocked and counted: there must be none (tools/offline_docs.py makes the attribution
logo local and adds a Content-Security-Policy).

Without Chromium, Node's playwright-core or the built page, these tests skip, saying what to run;
under CI (`CI` set) they fail instead, since `make test` installs and builds all three.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mock_gateway.server import _admin as admin_module
from mock_gateway.testing import MockGateway
from tools import offline_docs

ROOT = Path(__file__).resolve().parent.parent.parent


DOCS_HTML = ROOT / "build" / "docs" / "index.html"
SCREENSHOT = ROOT / "build" / "docs" / "screenshot.png"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
PLAYWRIGHT = ROOT / "node_modules" / "playwright-core"
BROWSER_TIMEOUT = 120

ERROR_BODY = "A short, stable name of the kind of error"  # ErrorResponse.error's description


@dataclass(frozen=True)
class View:
    """A page of the reference: what it shows once loaded, and after opening each response tab."""

    name: str
    fragment: str
    texts: list[str]
    tabs: dict[str, list[str]] = field(default_factory=dict)


VIEWS = [
    View(
        "overview",
        "",
        [
            "Boogu Image API (2.0.0)",
            "/boogu-image/v1/boogu-image-request",
            "/boogu-image-edit/v1/boogu-image-edit-request",
            "/v2/requests/status/{request_id}",
            "Webhooks",
            "requestFinished",
        ],
    ),
    View(
        "submit_text_to_image",
        "#/text_to_image/submit_text_to_image",
        ["Submit a text-to-image request"],
        {
            "402": ["error is Insufficient Balance", ERROR_BODY],
            "429": ["error is Too Many Requests", "Retry-After"],
        },
    ),
    View(
        "submit_image_edit",
        "#/image_edit/submit_image_edit",
        ["Submit an image edit request"],
        {"402": ["Insufficient Balance", ERROR_BODY], "429": ["Too Many Requests", "Retry-After"]},
    ),
    View(
        "get_request_status",
        "#/status/get_request_status",
        ["Get the status of a request"],
        {
            "404": ["No request with this id exists", "error is Not Found", ERROR_BODY],
            "429": ["error is Too Many Requests"],
        },
    ),
    View(
        "requestFinished",
        "#/webhooks/receive_request_finished",
        ["Final status of a request, sent to X-Webhook-URL", "requestFinished"],
    ),
]
SCREENSHOT_VIEW = "submit_text_to_image"

# Run by `node -e` in the repository, so that `require` finds node_modules/playwright-core.
BROWSER_SCRIPT = r"""
const { chromium } = require("playwright-core");
const cfg = JSON.parse(process.argv[process.argv.length - 1]);
(async () => {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    timeout: 60000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           // Belt and braces: no name but the mock's resolves, so nothing can leave the machine.
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
  });
  const result = { pages: {}, blocked: [], pageErrors: [], consoleErrors: [] };
  try {
    const context = await browser.newContext({
      viewport: { width: 1400, height: 1000 },
      serviceWorkers: "block",
    });
    const origin = new URL(cfg.base).origin;
    await context.route("**/*", (route) => {
      const request = route.request();
      if (new URL(request.url()).origin === origin) return route.continue();
      result.blocked.push({ url: request.url(), type: request.resourceType() });
      return route.abort("blockedbyclient");
    });
    const page = await context.newPage();
    page.on("pageerror", (error) => result.pageErrors.push(String(error.message)));
    page.on("console", (message) => {
      if (message.type() === "error") result.consoleErrors.push(message.text());
    });
    // Wait for each text (sections render lazily); one that never comes is reported by the test.
    const settle = async (texts) => {
      for (const text of texts) {
        await page.getByText(text).first().waitFor({ state: "attached", timeout: 10000 }).catch(() => {});
      }
      return page.innerText("body");
    };
    for (const view of cfg.views) {
      await page.goto(cfg.base + "/docs" + view.fragment, { waitUntil: "load" });
      const shown = { "": await settle(view.texts) };
      for (const [code, texts] of Object.entries(view.tabs)) {
        const tab = page.getByRole("tablist", { name: "Response status" }).first()
          .getByRole("tab", { name: code, exact: true });
        await tab.click();
        const selected = (el) => el.getAttribute("aria-selected") === "true";
        await page.waitForFunction(selected, await tab.elementHandle());
        shown[code] = await settle(texts);
      }
      result.pages[view.name] = shown;
      if (view.name === cfg.screenshotView) {
        await page.getByRole("tablist", { name: "Response status" }).first().evaluate(
          (el) => el.scrollIntoView({ block: "center" }));
        await page.waitForTimeout(300);
        await page.screenshot({ path: cfg.screenshot });
      }
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
})().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
"""


def require(ready: bool, reason: str) -> None:
    """Skip when a prerequisite is missing, except under CI, where `make test` provides it."""
    if ready:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, and `make test` provides it: missing is a failure there)")
    pytest.skip(reason)


def require_built_docs() -> None:
    require(DOCS_HTML.is_file(), f"{DOCS_HTML.relative_to(ROOT)} is not built: run `make docs`")


def test_docs_without_a_build_answer_404_saying_to_run_make_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_module, "docs_path", lambda: None)
    with MockGateway() as gateway, gateway.http() as http:
        response = http.get("/docs")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "Not Found"
    assert "make docs" in body["message"]
    assert "site-packages" not in body["message"] and "build/" not in body["message"]


def test_docs_serve_the_built_self_contained_page() -> None:
    require_built_docs()
    with MockGateway() as gateway, gateway.http() as http:
        response = http.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert response.content == DOCS_HTML.read_bytes()
    assert "<title>Boogu Image API</title>" in html
    # Redoc inlined (--inlineBundle), not loaded from a CDN; no stylesheet or script from elsewhere.
    assert '<script src="http' not in html
    assert '<link rel="stylesheet" href="http' not in html
    assert "hydrate(__redoc_definition" in html
    # redocly.yaml `telemetry: off`: the page posts no usage reports.
    assert '"disableTelemetry":true' in html
    # tools/offline_docs.py: the attribution logo is local, and a CSP keeps every request on the origin.
    assert "cdn.redoc.ly" not in html
    assert offline_docs.CSP_META in html[:2000]


def test_offline_docs_fails_when_redoc_no_longer_holds_the_logo_urls() -> None:
    with pytest.raises(ValueError, match=r"revisit tools/offline_docs\.py"):
        offline_docs.make_offline("<!DOCTYPE html><html><head></head><body></body></html>")


def run_browser(base_url: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    config = {
        "base": base_url,
        "chromium": str(CHROMIUM),
        "screenshot": str(SCREENSHOT),
        "screenshotView": SCREENSHOT_VIEW,
        "views": [asdict(view) for view in VIEWS],
    }
    result = subprocess.run(
        [node, "-e", BROWSER_SCRIPT, json.dumps(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"the browser run failed:\n{result.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_reference_renders_operations_errors_and_webhook_in_chromium() -> None:
    require(CHROMIUM.is_file(), f"{CHROMIUM} is missing: run `tools/install_chromium.sh` (as root)")
    require(shutil.which("node") is not None, "node is not on PATH")
    require(PLAYWRIGHT.is_dir(), "node_modules/playwright-core is missing: run `make setup`")
    require_built_docs()
    SCREENSHOT.unlink(missing_ok=True)

    with MockGateway(served=True) as gateway:
        report = run_browser(gateway.base_url)

    missing = [
        f"{view.name}{f' ({tab} tab)' if tab else ''}: {text!r}"
        for view in VIEWS
        for tab, texts in [("", view.texts), *view.tabs.items()]
        for text in texts
        if text not in report["pages"].get(view.name, {}).get(tab, "")
    ]
    assert not missing, "not shown on the rendered page:\n" + "\n".join(missing)
    assert not report["pageErrors"], report["pageErrors"]
    assert report["blocked"] == [], f"the page asked for resources outside the mock: {report['blocked']}"
    assert not report["consoleErrors"], report["consoleErrors"]
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert SCREENSHOT.stat().st_size > 20_000, "the screenshot looks blank"
