"""A headless Chromium that tests drive over the DevTools Protocol, standard library only.

Chromium's `--remote-debugging-pipe` reads JSON messages ending in a NUL byte on fd 3 and
writes its replies and events the same way on fd 4: no port, no websocket, no package.

    with Browser() as browser:
        page = browser.open("http://127.0.0.1:5000/", wait_for_text="Experiments")
        page.click(text="Model training")
        page.wait_for_text("Run Name")
        assert page.errors == [], page.errors

Every wait has a timeout, and the browser (its whole process group) is killed on leaving
the `with`, whatever happened inside. Without Chromium, `Browser()` skips the test, or
fails it under MLFUND_REQUIRE_SERVICES=1 (as .ci/run sets), like tests/services.py.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.services import REQUIRE_SERVICES

TIMEOUT = 30.0  # seconds for one protocol command, a page load, a wait_for
FLAGS = [
    "--headless=new",
    "--no-sandbox",  # root in a container has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a container's /dev/shm is often 64 MB
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",  # nothing leaves the machine but what a test opens
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class BrowserError(RuntimeError):
    """Chromium died, answered a command with an error, or a page's script threw."""


def find_chromium() -> str | None:
    """$MLFUND_CHROMIUM, else the first of Debian's, Ubuntu's and Google's names on PATH."""
    if explicit := os.environ.get("MLFUND_CHROMIUM"):
        return shutil.which(explicit)  # a name on PATH or a path; None when not there
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


def chromium_or_skip() -> str:
    """The Chromium binary; skip the test without one (fail it where CI requires services)."""
    binary = find_chromium()
    if binary is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return binary


_ON_3_AND_4 = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


def _high_fd(fd: int) -> int:
    """`fd` moved to 10 or above, so that putting it on 3 or 4 never clobbers the other."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium process; `open` gives a `Page` per tab."""

    def __init__(
        self,
        binary: str | None = None,
        window: tuple[int, int] = (1280, 900),
        timeout: float = TIMEOUT,
    ) -> None:
        self.binary = binary or chromium_or_skip()
        self.window = window
        self.timeout = timeout
        self._proc: subprocess.Popen | None = None
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._pages: dict[str, Page] = {}  # session id -> page, for routing events
        self._lock = threading.Condition()
        self._closed = False

    # -- process -------------------------------------------------------------------------

    def __enter__(self) -> Browser:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _start(self) -> None:
        self._profile = Path(tempfile.mkdtemp(prefix="mlfund-chromium-"))
        self._log = (self._profile / "chromium.log").open("wb")
        to_chromium_r, to_chromium_w = (_high_fd(fd) for fd in os.pipe())
        from_chromium_r, from_chromium_w = (_high_fd(fd) for fd in os.pipe())
        self._write_fd, self._read_fd = to_chromium_w, from_chromium_r
        width, height = self.window
        args = [
            *FLAGS,
            f"--user-data-dir={self._profile / 'profile'}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        # subprocess cannot renumber descriptors: a bare Python puts ours on 3 and 4, then
        # becomes Chromium (a shell could, but dash's redirections stop at fd 9).
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                _ON_3_AND_4,
                str(to_chromium_r),
                str(from_chromium_w),
                self.binary,
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=(to_chromium_r, from_chromium_w),
            start_new_session=True,  # its renderers and helpers share one group to kill
        )
        os.close(to_chromium_r)
        os.close(from_chromium_w)
        threading.Thread(target=self._read_loop, name="chromium-pipe", daemon=True).start()
        self.version = self.send("Browser.getVersion")["product"]

    def close(self) -> None:
        """Ask Chromium to quit, then kill its process group; remove the profile."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None and not self._closed:
                try:
                    self.send("Browser.close", timeout=5)
                except (BrowserError, TimeoutError):
                    pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            try:  # helpers that outlived the browser, or the browser itself
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        for fd in ("_write_fd", "_read_fd"):
            if hasattr(self, fd):
                try:
                    os.close(getattr(self, fd))
                except OSError:
                    pass
                delattr(self, fd)
        if hasattr(self, "_log"):
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)
            del self._log

    def log_tail(self, chars: int = 2000) -> str:
        """The end of Chromium's own stdout and stderr, for a failure message."""
        try:
            return (self._profile / "chromium.log").read_text(errors="replace")[-chars:]
        except (AttributeError, OSError):
            return ""

    # -- protocol ------------------------------------------------------------------------

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._read_fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        self._replies[message["id"]] = message
                        self._lock.notify_all()
                elif page := self._pages.get(message.get("sessionId", "")):
                    page._on_event(message["method"], message.get("params", {}))
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float | None = None,
    ) -> dict:
        """One protocol command (to a tab when `session` is given); its result."""
        with self._lock:
            if self._closed:
                raise BrowserError(f"Chromium has exited:\n{self.log_tail()}")
            self._next_id += 1
            command_id = self._next_id
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._write_fd, data) :]
        except OSError as error:
            raise BrowserError(f"Chromium has exited ({error}):\n{self.log_tail()}") from None
        limit = timeout or self.timeout
        deadline = time.monotonic() + limit
        with self._lock:
            while command_id not in self._replies:
                left = deadline - time.monotonic()
                if self._closed:
                    raise BrowserError(f"Chromium exited during {method}:\n{self.log_tail()}")
                if left <= 0:
                    raise TimeoutError(f"Chromium did not answer {method} in {limit} s")
                self._lock.wait(left)
            reply = self._replies.pop(command_id)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    # -- tabs ----------------------------------------------------------------------------

    def open(
        self,
        url: str,
        wait_for_text: str | None = None,
        wait_for: str | None = None,
        timeout: float | None = None,
    ) -> Page:
        """A new tab at `url`, once its load event fired (and `wait_for_text` shows, or the
        JavaScript expression `wait_for` is truthy): what a single-page app needs."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, target, session)
        self._pages[session] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.goto(url, timeout=timeout)
        if wait_for_text is not None:
            page.wait_for_text(wait_for_text, timeout=timeout)
        if wait_for is not None:
            page.wait_for(wait_for, timeout=timeout)
        return page


class Page:
    """One tab. What went wrong on it is collected as it happens:

    - `console_errors`: console.error calls, uncaught exceptions and the browser's own
      error log entries (a resource that failed to load, a CSP violation);
    - `failed_requests`: requests that never got a response (`net::ERR_...`), and
      responses with status 400 or above, each as "<what> <url>".
    """

    def __init__(self, browser: Browser, target: str, session: str) -> None:
        self.browser, self.target, self.session = browser, target, session
        self.console_errors: list[str] = []
        self.failed_requests: list[str] = []
        self._urls: dict[str, str] = {}  # request id -> url
        self._loaded = threading.Event()

    @property
    def errors(self) -> list[str]:
        """Everything that went wrong on the page, console and network together."""
        return [*self.console_errors, *self.failed_requests]

    def send(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def _on_event(self, method: str, params: dict) -> None:
        match method:
            case "Page.loadEventFired":
                self._loaded.set()
            case "Runtime.consoleAPICalled" if params["type"] in ("error", "assert"):
                text = " ".join(
                    str(arg.get("value", arg.get("description", ""))) for arg in params["args"]
                )
                self.console_errors.append(f"console.{params['type']}: {text}")
            case "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details["text"]
                self.console_errors.append(f"uncaught: {text}")
            case "Log.entryAdded" if params["entry"]["level"] == "error":
                entry = params["entry"]
                self.console_errors.append(f"{entry['source']}: {entry['text']}")
            case "Network.requestWillBeSent":
                self._urls[params["requestId"]] = params["request"]["url"]
            case "Network.responseReceived" if params["response"]["status"] >= 400:
                response = params["response"]
                self.failed_requests.append(f"HTTP {response['status']} {response['url']}")
            case "Network.loadingFailed" if not params.get("canceled"):
                url = self._urls.get(params["requestId"], "?")
                self.failed_requests.append(f"{params['errorText']} {url}")

    def goto(self, url: str, timeout: float | None = None) -> None:
        """Navigate, and wait for the load event (images and scripts loaded), unless only
        the #fragment changed."""
        self._loaded.clear()
        navigated = self.send("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise BrowserError(f"could not open {url}: {navigated['errorText']}")
        if "loaderId" not in navigated:  # same document, another #fragment: nothing loads
            return
        limit = timeout or self.browser.timeout
        if not self._loaded.wait(limit):
            raise TimeoutError(f"{url} did not finish loading in {limit} s")

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """The value of a JavaScript expression (a promise is awaited), as JSON gives it."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details["text"]
            raise BrowserError(f"{expression[:200]!r} threw: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float | None = None, every: float = 0.1) -> Any:
        """Poll a JavaScript expression until it is truthy; its value. On timeout the error
        shows the start of the page's text, which usually says what went wrong."""
        limit = timeout or self.browser.timeout
        deadline = time.monotonic() + limit
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{expression!r} still false after {limit} s; the page says:\n"
                    f"{self.text()[:1500]}\nerrors: {self.errors}"
                )
            time.sleep(every)

    def wait_for_text(self, text: str, timeout: float | None = None) -> None:
        """Wait until the visible text of the page contains `text`."""
        self.wait_for(
            f"document.body !== null && document.body.innerText.includes({json.dumps(text)})",
            timeout,
        )

    def text(self) -> str:
        """The page's visible text (`document.body.innerText`)."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def click(
        self, selector: str | None = None, text: str | None = None, timeout: float | None = None
    ) -> None:
        """A real mouse click (press and release at its centre, as React listens for) on the
        first element matching the CSS `selector`, or on the first visible element whose
        text is exactly `text` (the innermost such); waits for it to appear."""
        if (selector is None) == (text is None):
            raise ValueError("click needs exactly one of selector and text")
        if selector is not None:
            find = f"document.querySelector({json.dumps(selector)})"
        else:
            # visible matches (fixed-position ones too) come parents first; the first that
            # holds no other match is the innermost one (a link, not the cell around it)
            find = (
                "(() => { const all = [...document.querySelectorAll('body *')].filter(e => "
                f"e.getClientRects().length > 0 && e.innerText?.trim() === {json.dumps(text)}); "
                "return all.find(e => !all.some(o => o !== e && e.contains(o))); })()"
            )
        centre = self.wait_for(
            f"(() => {{ const e = {find}; if (!e) return null; e.scrollIntoView({{block: "
            "'center'}); const r = e.getBoundingClientRect(); "
            "return [r.left + r.width / 2, r.top + r.height / 2]; })()",
            timeout,
        )
        x, y = centre
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the viewport, or of the whole page."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params |= {
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            }
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
        self.browser._pages.pop(self.session, None)
