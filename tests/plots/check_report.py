#!/usr/bin/python3
"""The report page in a real browser: headless Chromium loads a report of the fixture run.

usage: check_report.py [--screenshot FILE]

plots/report.py writes the page from tests/plots/full-run.json (history: both fixtures); the
page must reference nothing outside itself. Chromium (Debian's `chromium`, headless, no
sandbox when root, no network use) loads it from a file:// URL and is driven over the
DevTools protocol on a pipe (--remote-debugging-pipe; Python's standard library only):
- no console error, no uncaught exception, no blocked or failed load;
- every chart is an image the browser decoded, the table has a row per case;
- clicking a column header sorts the rows by it (again: reversed), empty values last;
- the scenario and transport filters and the name search show exactly the matching cases,
  and reset shows them all again;
- screenshots are kept: the top of the page (FILE, default report.png in the current folder)
  and the table filtered to the latency cases (FILE with -table before .png).
Exit status 0 when all hold; 1 otherwise, also when Chromium is not installed (./run.sh
setup installs it).
"""
import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

from common import FULL, QUICK, Checks, cases, run

TIMEOUT_S = 60


class Browser:
    """Chromium driven over the DevTools protocol on fds 3 (its input) and 4 (its output):
    JSON messages, each ended by a NUL byte."""

    def __init__(self, exe, profile):
        to_child, from_child = os.pipe(), os.pipe()
        # keep every pipe end off fds 3 and 4, so the child's dup2 cannot clobber one
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (*to_child, *from_child)]
        for fd in (*to_child, *from_child):
            os.close(fd)
        child_in, self.write_fd, self.read_fd, child_out = high

        def fds():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--mute-audio",
                "--hide-scrollbars", "--window-size=1400,1000", "about:blank"]
        self.log = open(os.path.join(profile, "chromium.log"), "w+")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, preexec_fn=fds, close_fds=False)
        os.close(child_in)
        os.close(child_out)
        self.next_id, self.buffer, self.events, self.session = 0, b"", [], None

    def send(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.write_fd, json.dumps(msg).encode() + b"\0")
        return self.wait(lambda m: m.get("id") == self.next_id)

    def wait(self, match, timeout=TIMEOUT_S):
        """Read messages until one matches; keep every event. Returns the matching message."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg:
                    self.events.append(msg)
                if match(msg):
                    if "error" in msg:
                        raise RuntimeError(f"DevTools error: {msg['error']}")
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe (see its log)")
            self.buffer += chunk

    def open(self, url):
        targets = self.send("Target.getTargets", session=False)["result"]["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": page["targetId"], "flatten": True},
                                 session=False)["result"]["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.navigate", {"url": url})
        self.wait(lambda m: m.get("method") == "Page.loadEventFired")

    def js(self, expression):
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})["result"]
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def errors(self):
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                details = p["exceptionDetails"]
                out.append(details.get("exception", {}).get("description")
                           or details.get("text", "exception"))
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning",
                                                                                 "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(p["entry"]["text"])
        return out

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# Page scripts: the state of the table as JSON-able values.
VISIBLE = "Array.from(document.querySelectorAll('#case-table tbody tr')).filter(r => !r.hidden)"
COLUMN = ("(name => Array.from(document.querySelectorAll('#case-table th'))"
          ".findIndex(h => h.textContent === name))")


def column_values(browser, header):
    return browser.js(f"(() => {{ const i = {COLUMN}({json.dumps(header)}); return {VISIBLE}"
                      ".map(r => r.cells[i].getAttribute('data-v')); })()")


def click_header(browser, header):
    browser.js(f"(() => {{ const i = {COLUMN}({json.dumps(header)}); "
               "document.querySelectorAll('#case-table th')[i].click(); })()")


def set_filter(browser, element, value, event):
    browser.js(f"(() => {{ const e = document.getElementById({json.dumps(element)}); "
               f"e.value = {json.dumps(value)}; "
               f"e.dispatchEvent(new Event({json.dumps(event)})); }})()")


def screenshot(browser, path):
    data = browser.send("Page.captureScreenshot", {"format": "png"})["result"]["data"]
    with open(path, "wb") as f:
        f.write(base64.b64decode(data))


def numbers(values):
    return [float(v) for v in values if v not in (None, "")]


def main(argv):
    shot = os.path.abspath(argv[argv.index("--screenshot") + 1]) if "--screenshot" in argv \
        else os.path.abspath("report.png")
    c = Checks("plots/report-browser")
    exe = shutil.which("chromium")
    if not exe:
        print("plots/report-browser: Chromium is not installed: apt-get install chromium "
              "(./run.sh setup installs it)", file=sys.stderr)
        return 1
    fixture = cases(FULL)
    with tempfile.TemporaryDirectory(prefix="knit-report-test-") as tmp:
        runs = os.path.join(tmp, "runs")
        os.makedirs(runs)
        for src in (FULL, QUICK):
            shutil.copy(src, runs)
        page = os.path.join(tmp, "report.html")
        rc, _, err = run("report.py", FULL, "--out", page, "--runs", runs)
        if not c.expect(rc == 0 and os.path.isfile(page), f"report.py writes the page: {err}"):
            return c.done()
        with open(page, encoding="utf-8") as f:
            text = f.read()
        outside = re.findall(r'(?:src|href)\s*=\s*"(?!data:|#)([^"]*)"', text)
        c.expect(not outside, f"the page loads nothing from outside itself: {outside[:3]}")
        c.expect("<script src" not in text and "@import" not in text and "url(" not in text,
                 "no external script, style or font")

        profile = os.path.join(tmp, "profile")
        os.makedirs(profile)
        try:
            browser = Browser(exe, profile)
        except OSError as e:
            c.expect(False, f"starting Chromium ({exe}): {e}")
            return c.done()
        try:
            browser.open("file://" + page)
            n = browser.js("document.querySelectorAll('#case-table tbody tr').length")
            c.expect(n == len(fixture), f"a row per case: {n} of {len(fixture)}")
            images = browser.js("Array.from(document.images).map(i => [i.alt, i.complete && "
                                "i.naturalWidth > 0])")
            c.expect(len(images) == 9, f"nine charts on the page: {[i[0] for i in images]}")
            for alt, ok in images:
                c.expect(ok, f"the browser decoded the {alt}")

            # sorting: ascending, then descending; cases without the figure stay last
            click_header(browser, "p50")
            values = column_values(browser, "p50")
            p50 = numbers(values)
            c.expect(p50 == sorted(p50) and len(p50) > 10, "p50 sorts ascending")
            c.expect(all(v == "" for v in values[len(p50):]), "cases without a p50 come last")
            click_header(browser, "p50")
            c.expect(numbers(column_values(browser, "p50")) == sorted(p50, reverse=True),
                     "a second click sorts descending")
            click_header(browser, "case")
            names = column_values(browser, "case")
            c.expect(names == sorted(names, key=lambda s: s.lower()) or
                     names == sorted(names), "the case column sorts by name")

            # filtering
            set_filter(browser, "filter-scenario", "latency", "change")
            want = [x["name"] for x in fixture if x["scenario"] == "latency"]
            got = column_values(browser, "case")
            c.expect(sorted(got) == sorted(want), f"scenario filter: {len(got)} of {len(want)}")
            set_filter(browser, "filter-transport", "tcp", "change")
            want = [x for x in want if "/tcp/" in x]
            got = column_values(browser, "case")
            c.expect(sorted(got) == sorted(want) and want, f"+ transport filter: {got}")
            shown = browser.js("document.getElementById('shown').textContent")
            c.expect(shown == f"{len(want)} of {len(fixture)} cases", f"the count says {shown!r}")
            browser.js("document.getElementById('filter-reset').click()")
            set_filter(browser, "filter-name", "gap-1", "input")
            want = [x["name"] for x in fixture if "gap-1" in x["name"]]
            got = column_values(browser, "case")
            c.expect(sorted(got) == sorted(want) and want, f"name search: {got}")
            browser.js("document.getElementById('filter-reset').click()")
            c.expect(len(column_values(browser, "case")) == len(fixture), "reset shows all")

            os.makedirs(os.path.dirname(shot), exist_ok=True)
            table_shot = shot[:-4] + "-table.png" if shot.endswith(".png") else shot + "-table"
            screenshot(browser, shot)
            set_filter(browser, "filter-scenario", "latency", "change")
            browser.js("document.getElementById('cases').scrollIntoView()")
            screenshot(browser, table_shot)
            for path in (shot, table_shot):
                c.expect(os.path.getsize(path) > 20000, f"screenshot kept: {path}")
            c.expect(not browser.errors(), f"no console errors: {browser.errors()}")
        except (RuntimeError, TimeoutError, StopIteration, OSError) as e:
            browser.log.seek(0)
            log = browser.log.read()[-2000:]
            c.expect(False, f"driving Chromium: {e}\nChromium's output:\n{log}")
        finally:
            browser.close()
    return c.done()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
