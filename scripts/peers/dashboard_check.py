"""Drive the daemon's web dashboard in real headless Chromium (Debian's chromium and
chromium-driver, over WebDriver with selenium) and assert what a user would see.

    dashboard_check.py check --url http://127.0.0.1:PORT --token READ_TOKEN \
        --py1 127.0.0.240 --ts 127.0.0.241 --hostile 127.0.0.242 --stop-pid PID \
        --screenshots DIR
    dashboard_check.py bench --url http://127.0.0.1:PORT [--token T] [--runs N] \
        [--screenshots DIR]

`check` (tests/dashboard.rs runs it against the daemon scanning real peers):
  1. the servers table lists the three servers with their kind, name, transport, tool count
     and health (waits for the first health checks);
  2. a text filter narrows the table to one server, the URL holds it, and reloading that URL
     gives the same view (same rows, the input filled again); a column sort goes to the URL;
  3. the hostile server (py1-hostile: <script> and <img onerror> in its name, instructions
     and a tool) is shown as literal text and never runs code: window.__pwned stays
     undefined, the document holds no <img> and no script but app.js;
  4. stopping a real server (SIGTERM to --stop-pid) turns its row unhealthy on screen
     without a reload (a marker set before survives), within 2 s of the committed
     health_changed change (its `at` against the browser's clock, same machine);
  5. the topology, jobs/sinks/config views render; the config shows no read token.
  Prints `RESULT {json}` and exits 0, or prints `FAIL reason` (and saves fail.png) and exits 1.

`bench`: loads the servers view N times in a fresh browser each (no cache) and prints the
first-render time (performance.now() at the table's first render, from navigation start)
and the bytes of the first load (Performance API: the document and every resource, their
transferSize, which counts headers and body as they crossed the wire), as `BENCH {json}`.

Network: Chromium is started with every background service off and a proxy on a closed
loopback port, so nothing it does can leave the machine; the daemon is on loopback.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import statistics
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
# Waits, each bounded.
READY_S = 60.0  # the first scan and health checks
STEP_S = 15.0  # one view to render
UNHEALTHY_S = 45.0  # a stopped server to turn unhealthy (checks every second, threshold 2)
LIVE_LIMIT_MS = 2000  # from the committed change to the screen
POLL_S = 0.1

HOSTILE_SCRIPT = "<script>window.__pwned=1</script>"
HOSTILE_IMG = '<img src=x onerror="window.__pwned=1">'


class Fail(Exception):
    pass


def browser(token: str | None) -> webdriver.Chrome:
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1500,1000",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
        "--metrics-recording-only",
        # Anything not on loopback (which Chromium never proxies) would go to this proxy, a
        # closed loopback port.
        "--proxy-server=http://127.0.0.1:9",
    ]:
        o.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
    d.set_page_load_timeout(STEP_S)
    if token:
        # How a browser that answered the Basic prompt sends the read token (any user name).
        basic = base64.b64encode(f"dashboard:{token}".encode()).decode()
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {basic}"}})
    return d


def wait(what: str, limit: float, fn):
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except WebDriverException as e:
            last = e
            v = None
        else:
            v = last
        if v:
            return v
        time.sleep(POLL_S)
    raise Fail(f"timed out after {limit:.0f} s waiting for {what} (last: {last!r})")


def rows(d) -> list[dict]:
    """The servers table as the user sees it: one dict per row."""
    return d.execute_script(
        """
        const t = document.getElementById('servers');
        if (!t || t.getAttribute('data-state') !== 'ready') return null;
        return [...t.querySelectorAll('tbody tr[data-id]')].map((r) => ({
          id: r.getAttribute('data-id'),
          health: r.querySelector('td.health .badge').getAttribute('data-health'),
          reason: r.querySelector('td.health .badge').title,
          cells: [...r.cells].map((c) => c.textContent),
        }));
        """
    )


def by_url(rs: list[dict], ip: str) -> dict | None:
    for r in rs:
        if f"http://{ip}:8000/mcp" in r["cells"]:
            return r
    return None


def shot(d, dirname: str, name: str) -> str:
    path = os.path.join(dirname, name)
    d.save_screenshot(path)
    return path


def check(a) -> dict:
    os.makedirs(a.screenshots, exist_ok=True)
    d = browser(a.token)
    out: dict = {"screenshots": []}
    try:
        try:
            return _check(d, a, out)
        except Fail:
            out["screenshots"].append(shot(d, a.screenshots, "fail.png"))
            raise
    finally:
        d.quit()


def _check(d, a, out: dict) -> dict:
    base = a.url.rstrip("/")
    # 1. the servers appear with the right fields, and the py1 and ts ones turn healthy.
    d.get(base + "/#/servers")
    def three_healthy():
        rs = rows(d)
        if not rs or len(rs) < 3:
            return None
        p, t = by_url(rs, a.py1), by_url(rs, a.ts)
        if p and t and p["health"] == "healthy" and t["health"] == "healthy":
            return rs
        return None
    rs = wait("three servers, py1 and ts healthy", READY_S, three_healthy)
    cols = d.execute_script("return [...document.querySelectorAll('#servers thead th')].map((h) => h.textContent)")
    want_cols = ["Health", "Kind", "Name", "Version", "URL", "Transport", "Protocol", "Tools", "Auth",
                 "Uptime 24 h", "Last seen", "Found by"]
    if cols != want_cols:
        raise Fail(f"columns {cols}, want {want_cols}")
    py1 = by_url(rs, a.py1)
    c = dict(zip(want_cols, py1["cells"]))
    expect = {"Kind": "mcp", "Name": "weather-demo", "Transport": "streamable-http", "Tools": "2", "Auth": "none"}
    for k, v in expect.items():
        if c[k] != v:
            raise Fail(f"py1 row {k} = {c[k]!r}, want {v!r} (row {c})")
    if not c["Uptime 24 h"].endswith("%"):
        raise Fail(f"py1 uptime {c['Uptime 24 h']!r}")
    if "sweep" not in c["Found by"]:
        raise Fail(f"py1 found by {c['Found by']!r}")
    ts = dict(zip(want_cols, by_url(rs, a.ts)["cells"]))
    if ts["Kind"] != "mcp" or ts["Transport"] != "streamable-http":
        raise Fail(f"ts row {ts}")
    out["rows"] = len(rs)
    out["py1_row"] = c
    out["screenshots"].append(shot(d, a.screenshots, "servers.png"))

    # 2. a filter narrows the table, lives in the URL, and the URL reloads the same view.
    box = d.find_element(By.ID, "f-q")
    box.send_keys(a.ts)
    narrowed = wait("the text filter to narrow the table", STEP_S,
                    lambda: (lambda rs: rs if rs is not None and len(rs) == 1 else None)(rows(d)))
    if by_url(narrowed, a.ts) is None:
        raise Fail(f"filtered rows {narrowed}")
    url = d.current_url
    if f"q={a.ts}" not in url:
        raise Fail(f"the filter is not in the URL: {url}")
    d.refresh()
    again = wait("the reloaded filtered view", STEP_S,
                 lambda: (lambda rs: rs if rs is not None and len(rs) == 1 else None)(rows(d)))
    if [r["id"] for r in again] != [r["id"] for r in narrowed]:
        raise Fail(f"reloaded view {again} differs from {narrowed}")
    if d.find_element(By.ID, "f-q").get_attribute("value") != a.ts:
        raise Fail("the reloaded view lost the filter input")
    out["filtered_url"] = url
    out["screenshots"].append(shot(d, a.screenshots, "filtered.png"))
    d.get(base + "/#/servers?kind=mcp")
    wait("the kind filter", STEP_S, lambda: (lambda rs: rs if rs and len(rs) == 3 else None)(rows(d)))
    d.find_element(By.CSS_SELECTOR, "#servers th[data-sort='name']").click()
    wait("sort=name in the URL", STEP_S, lambda: "sort=name" in d.current_url and "kind=mcp" in d.current_url)
    names = wait("the sorted table", STEP_S,
                 lambda: (lambda rs: [r["cells"][2] for r in rs] if rs and len(rs) == 3 else None)(rows(d)))
    if names != sorted(names):
        raise Fail(f"sorted on name: {names}")

    # 3. the hostile server: literal text, never code.
    d.get(base + "/#/servers")
    rs = wait("the table", STEP_S, lambda: rows(d))
    evil = by_url(rs, a.hostile)
    if evil is None:
        raise Fail(f"no hostile row in {rs}")
    if HOSTILE_SCRIPT not in evil["cells"][2] or HOSTILE_IMG not in evil["cells"][2]:
        raise Fail(f"the hostile name is not shown literally: {evil['cells'][2]!r}")
    d.find_element(By.CSS_SELECTOR, f"tr[data-id='{evil['id']}'] td.name a").click()
    wait("the hostile server's page", STEP_S,
         lambda: d.execute_script("const s = document.getElementById('server'); return s && s.getAttribute('data-state') === 'ready'"))
    state = d.execute_script(
        """
        return {
          pwned: typeof window.__pwned,
          imgs: document.querySelectorAll('img').length,
          scripts: [...document.scripts].map((s) => s.getAttribute('src')),
          title: document.getElementById('server-name').textContent,
          descs: [...document.querySelectorAll('#tools td.tool-desc')].map((t) => t.textContent),
          names: [...document.querySelectorAll('#tools td.tool-name')].map((t) => t.textContent),
          instructions: (document.getElementById('instructions') || {}).textContent,
          bold: document.querySelectorAll('#tools b').length,
        };
        """
    )
    if state["pwned"] != "undefined":
        raise Fail(f"the hostile server ran code: window.__pwned is {state['pwned']}")
    if state["imgs"] != 0 or state["scripts"] != ["/assets/app.js"] or state["bold"] != 0:
        raise Fail(f"hostile markup became elements: {state}")
    if HOSTILE_SCRIPT not in state["title"] or HOSTILE_IMG not in state["title"]:
        raise Fail(f"hostile name not literal: {state['title']!r}")
    if not any(HOSTILE_SCRIPT in t and HOSTILE_IMG in t and "<b>bold</b>" in t for t in state["descs"]):
        raise Fail(f"hostile tool description not literal: {state['descs']}")
    if not any(HOSTILE_IMG in n for n in state["names"]):
        raise Fail(f"hostile tool name not literal: {state['names']}")
    if HOSTILE_SCRIPT not in (state["instructions"] or ""):
        raise Fail(f"hostile instructions not literal: {state['instructions']!r}")
    visible = d.find_element(By.ID, "server-name").text
    if HOSTILE_SCRIPT not in visible:
        raise Fail(f"the hostile text is not visible: {visible!r}")
    out["hostile"] = {"pwned": state["pwned"], "title": state["title"]}
    out["screenshots"].append(shot(d, a.screenshots, "hostile.png"))
    for view in ["#/servers", "#/topology", "#/ops"]:
        d.get(base + "/" + view)
        time.sleep(0)  # the views render asynchronously; the waits below bound them
    if d.execute_script("return typeof window.__pwned") != "undefined":
        raise Fail("window.__pwned set after visiting every view")

    # 4. stop a real server: unhealthy on screen without a reload, within 2 s of the change.
    d.get(base + "/#/servers")
    wait("py1 healthy again on screen", STEP_S, lambda: (lambda r: r and r["health"] == "healthy")(by_url(rows(d) or [], a.py1)))
    wait("the live feed connected", STEP_S, lambda: d.execute_script("return document.getElementById('live').className === 'live on'"))
    d.execute_script("window.__noReload = 'still here'")
    os.kill(a.stop_pid, signal.SIGTERM)
    stopped = time.monotonic()
    r = wait("py1 unhealthy on screen", UNHEALTHY_S,
             lambda: (lambda r: r if r and r["health"] == "unhealthy" else None)(by_url(rows(d) or [], a.py1)))
    seen_ms = d.execute_script("return Date.now()")
    if d.execute_script("return window.__noReload") != "still here":
        raise Fail("the page reloaded")
    at = d.execute_script(
        """
        const id = arguments[0];
        for (const li of document.querySelectorAll('#feed-list li[data-kind="health_changed"]')) {
          const a = li.querySelector('a');
          if (a && decodeURIComponent(a.getAttribute('href')).endsWith(id)) return li.querySelector('.when').textContent;
        }
        return null;
        """,
        r["id"],
    )
    if not at:
        raise Fail("no health_changed entry for py1 in the live feed")
    committed_ms = d.execute_script("return Date.parse(arguments[0])", at)
    lag = seen_ms - committed_ms
    out["unhealthy_after_stop_s"] = round(time.monotonic() - stopped, 2)
    out["live_lag_ms"] = lag
    out["unhealthy_reason"] = r["reason"]
    if lag > LIVE_LIMIT_MS:
        raise Fail(f"the change reached the screen {lag} ms after it was committed (limit {LIVE_LIMIT_MS})")
    out["screenshots"].append(shot(d, a.screenshots, "unhealthy.png"))

    # 5. topology, jobs, sinks and config.
    d.get(base + "/#/topology")
    wait("the topology", STEP_S, lambda: d.execute_script("const t = document.getElementById('topology'); return t && t.getAttribute('data-state') === 'ready'"))
    dots = d.execute_script("return document.querySelectorAll('#topology-svg circle.dot').length")
    if dots != 3:
        raise Fail(f"topology shows {dots} servers, want 3")
    if d.execute_script("return document.querySelectorAll('#topology-svg circle.dot.unhealthy').length") != 1:
        raise Fail("topology does not colour the stopped server unhealthy")
    out["screenshots"].append(shot(d, a.screenshots, "topology.png"))
    d.get(base + "/#/ops")
    wait("jobs, sinks and config", STEP_S, lambda: d.execute_script("const t = document.getElementById('ops'); return t && t.getAttribute('data-state') === 'ready'"))
    cfg = d.find_element(By.ID, "config").text
    if a.token and a.token in cfg:
        raise Fail("the config view shows the read token")
    if "<redacted>" not in cfg:
        raise Fail(f"no redacted secret in the config view: {cfg[:300]!r}")
    jobs = d.execute_script("return [...document.querySelectorAll('#jobs tr[data-job]')].map((r) => [...r.cells].map((c) => c.textContent))")
    if not jobs or jobs[0][0] != "lo" or jobs[0][9] != "3":
        raise Fail(f"jobs table {jobs}")
    out["screenshots"].append(shot(d, a.screenshots, "ops.png"))
    return out


def bench(a) -> dict:
    firsts, sizes, totals = [], [], []
    for i in range(a.runs):
        d = browser(a.token)
        try:
            d.get(a.url.rstrip("/") + "/#/servers")
            ms = wait("the first render", 30.0, lambda: d.execute_script("return window.__scoutFirstRender || null"))
            total = d.execute_script("return Number(document.getElementById('servers').getAttribute('data-total'))")
            perf = d.execute_script(
                """
                const n = performance.getEntriesByType('navigation')[0];
                const rs = performance.getEntriesByType('resource');
                const all = [n, ...rs];
                return { transfer: all.reduce((s, e) => s + (e.transferSize || 0), 0),
                         body: all.reduce((s, e) => s + (e.encodedBodySize || 0), 0),
                         entries: all.map((e) => [e.name, e.transferSize, e.encodedBodySize]) };
                """
            )
            if i == 0 and a.screenshots:
                os.makedirs(a.screenshots, exist_ok=True)
                shot(d, a.screenshots, "bench-10k.png")
        finally:
            d.quit()
        firsts.append(ms)
        sizes.append(perf["transfer"])
        totals.append(total)
    return {
        "servers": totals[0],
        "runs": a.runs,
        "first_render_ms": [round(x, 1) for x in firsts],
        "first_render_ms_median": round(statistics.median(firsts), 1),
        "first_load_transfer_bytes": sizes[0],
        "first_load_body_bytes": perf["body"],
        "entries": perf["entries"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--url", required=True)
    c.add_argument("--token")
    c.add_argument("--py1", required=True)
    c.add_argument("--ts", required=True)
    c.add_argument("--hostile", required=True)
    c.add_argument("--stop-pid", type=int, required=True)
    c.add_argument("--screenshots", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--url", required=True)
    b.add_argument("--token")
    b.add_argument("--runs", type=int, default=5)
    b.add_argument("--screenshots")
    a = ap.parse_args()
    if not a.url.startswith(("http://127.", "http://[::1]", "http://localhost")):
        print(f"FAIL --url {a.url} is not on loopback", flush=True)
        return 1
    try:
        if a.cmd == "check":
            print("RESULT " + json.dumps(check(a)), flush=True)
        else:
            print("BENCH " + json.dumps(bench(a)), flush=True)
    except Fail as e:
        print(f"FAIL {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
