"""The documentation site as a reader sees it: headless Chromium.

The site is built here (``mkdocs build --strict``, as ``make docs`` does)
into a temporary directory and served over HTTP on a free loopback port.
Chromium is driven through its DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages separated by NUL bytes on file
descriptors 3 and 4), so the test sees what the page logs and throws, can
wait for the search index, and takes screenshots.  The home page, a guide
and a reference page must load without a console error or an uncaught
exception, with the theme's stylesheet applied and their own headings;
Material's search must find a class by name and link to its reference page.

Screenshots are written to the test's temporary directory, and their paths
printed (``pytest -s`` shows them).  ``PYGWIRE_DOCS_SCREENSHOTS=DIR`` also
copies them to ``DIR``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from peers import chromium, png_size

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1280, 900
#: How long to wait for Chromium to answer or a page to get somewhere;
#: a limit for a stuck browser, not a speed requirement.
PATIENCE = 120.0


def _high(fd: int) -> int:
    """``fd`` moved to a descriptor number of 10 or more."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """One headless Chromium, one tab, spoken to over the DevTools pipe."""

    def __init__(self, profile: Path) -> None:
        # The child's ends are moved above 4 first, so that placing them on
        # 3 and 4 cannot overwrite one with the other.
        to_chrome_r, self._to_chrome = (_high(fd) for fd in os.pipe())
        self._from_chrome, from_chrome_w = (_high(fd) for fd in os.pipe())
        args = [
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace for the sandbox
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}",
            "about:blank",
        ]
        # Chromium reads commands on fd 3 and writes answers on fd 4 (bash:
        # dash takes only one-digit descriptors in a redirection).
        shell = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self.log = profile.parent / "chromium.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["bash", "-c", shell, chromium(), *args],
                pass_fds=(to_chrome_r, from_chrome_w),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""
        try:
            targets = self.call("Target.getTargets")["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
            self.session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
            # The viewport itself, whatever the headless window's frame takes.
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=WIDTH,
                height=HEIGHT,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.close()
            raise

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                log = self.log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"Chromium closed its DevTools pipe:\n{log}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command; return its result (events met meanwhile are kept)."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            command["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(command).encode() + b"\0")
        while True:
            message = self._read_message()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str) -> Any:
        """Evaluate until the expression is truthy (fails after PATIENCE)."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"never true in the page: {expression}")

    def open(self, url: str) -> None:
        """Navigate and wait until the page and its resources have loaded."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, failed loads."""
        out = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in (
                "error",
                "warning",
                "assert",
            ):
                texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
                out.append(f"console.{params['type']}: {' '.join(texts)}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                entry = params["entry"]
                out.append(f"log {entry['level']}: {entry['text']} {entry.get('url', '')}")
        return out

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return data

    def close(self) -> None:
        with contextlib.suppress(AssertionError, OSError):  # it may close before answering
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The site, built from this tree in strict mode and served on loopback."""
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chrome = Browser(tmp_path / "profile")
    try:
        yield chrome
    finally:
        chrome.close()


def _keep(shot: Path) -> None:
    print(f"screenshot: {shot}")
    extra = os.environ.get("PYGWIRE_DOCS_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(extra) / shot.name)


def test_the_problem_check_sees_a_page_error(browser: Browser, tmp_path: Path) -> None:
    # The checks below mean something only if a broken page fails them.
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><p>x</p><img src='missing.png'>"
        "<script>console.error('logged'); throw new Error('deliberate')</script>"
    )
    browser.open(page.as_uri())
    problems = "\n".join(browser.problems())
    assert "deliberate" in problems
    assert "logged" in problems
    assert "missing.png" in problems


PAGES = [
    ("index.html", "pygwire", "home"),
    ("guides/proxy.html", "A proxy, and the authentication proxy", "guide-proxy"),
    ("reference/connection.html", "Connection: pygwire.connection", "reference-connection"),
]


@pytest.mark.parametrize("page", PAGES, ids=[p[2] for p in PAGES])
def test_a_page_renders(
    site: str, browser: Browser, tmp_path: Path, page: tuple[str, str, str]
) -> None:
    path, heading, name = page
    browser.open(f"{site}/{path}")
    assert browser.problems() == []
    title = browser.evaluate("document.querySelector('article h1').textContent.trim()")
    assert title.replace("¶", "").strip() == heading
    # The theme's stylesheet applied: Material's header is sticky and has height.
    header = browser.evaluate(
        "(() => { const h = document.querySelector('header.md-header');"
        " const s = getComputedStyle(h);"
        " return [s.position, h.getBoundingClientRect().height]; })()"
    )
    assert header[0] == "sticky"
    assert header[1] > 20
    # Code blocks are highlighted (the guide and the home page have Python).
    if name != "reference-connection":
        assert browser.evaluate("document.querySelectorAll('.highlight code span.kn').length") > 0
    else:
        documented = browser.evaluate(
            "document.querySelectorAll('.doc-object, .doc.doc-object').length"
        )
        assert documented > 0
    shot = tmp_path / f"{name}.png"
    data = browser.screenshot(shot)
    assert png_size(data) == (WIDTH, HEIGHT)
    assert len(data) > 40_000, "a blank or nearly blank screenshot"
    _keep(shot)
    assert browser.problems() == []


def test_search_finds_a_class(site: str, browser: Browser, tmp_path: Path) -> None:
    browser.open(f"{site}/index.html")
    # Type into Material's search box as a reader would: focus, value, events.
    browser.evaluate(
        "(() => { const t = document.getElementById('__search');"
        " t.checked = true; t.dispatchEvent(new Event('change'));"
        " const i = document.querySelector('input.md-search__input');"
        " i.focus(); i.value = 'ProxyConnection';"
        " i.dispatchEvent(new Event('focus')); i.dispatchEvent(new Event('input'));"
        " i.dispatchEvent(new KeyboardEvent('keyup', {key: 'n'})); return true; })()"
    )
    count = browser.wait_for("document.querySelectorAll('.md-search-result__item').length")
    assert count >= 1
    links = browser.evaluate(
        "[...document.querySelectorAll('.md-search-result__item a')].map(a => a.href)"
    )
    assert any("reference/connection.html" in link for link in links), links
    meta = browser.evaluate("document.querySelector('.md-search-result__meta').textContent")
    assert "matching" in meta or "result" in meta.lower(), meta
    shot = tmp_path / "search.png"
    browser.screenshot(shot)
    _keep(shot)
    assert browser.problems() == []
