"""Cold start and memory of the real app window (tauri-driver + WebKitWebDriver under
Xvfb): from launching the app to its first paint and to the ledger on screen, then the
resident memory of every process of the app (the shell and its WebKit processes).

Usage: app_start.py BINARY RUNS  (tauri-driver listening on 127.0.0.1:4444; the app
inherits PASSBACK_DB). Prints one JSON line. Stdlib only."""
import json
import os
import statistics
import sys
import time
import urllib.request

DRIVER = "http://127.0.0.1:4444"


def request(method, path, body=None, timeout=120):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(DRIVER + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}").get("value")


def script(sid, js):
    return request("POST", f"/session/{sid}/execute/sync", {"script": js, "args": []})


def tree(root):
    """The pids of `root` and all its descendants."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(pid))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory(pids):
    """Total RSS and PSS (kB) of these processes, and their names."""
    rss = pss = 0
    names = []
    for p in pids:
        try:
            with open(f"/proc/{p}/comm") as f:
                names.append(f.read().strip())
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss, sorted(names)


def app_pid():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "passback-deskto":
                        return int(pid)
            except OSError:
                pass
    return None


def one_run(binary):
    caps = {"capabilities": {"alwaysMatch": {"tauri:options": {"application": binary}}}}
    t0 = time.time()
    sid = request("POST", "/session", caps)["sessionId"]
    try:
        # The ledger is on screen when the window shows what it holds (a count, or the
        # first-run page).
        deadline = time.time() + 60
        while time.time() < deadline:
            shown = script(sid, "return !!document.querySelector('[data-testid=grades-count], [data-testid=empty-state], [data-testid=demo-banner]')")
            if shown:
                break
            time.sleep(0.01)
        t_ledger = time.time()
        timing = script(sid, "const p = performance.getEntriesByType('paint');"
                             "const fcp = p.find((e) => e.name === 'first-contentful-paint') || p[0];"
                             "return [performance.timeOrigin, fcp ? fcp.startTime : null];")
        origin_ms, fcp = timing
        first_paint = (origin_ms + fcp) / 1000 - t0 if fcp is not None else None
        time.sleep(2)  # settle: what an idle window holds
        pid = app_pid()
        rss, pss, names = memory(tree(pid)) if pid else (0, 0, [])
        return {"first_paint_s": first_paint, "ledger_on_screen_s": t_ledger - t0,
                "rss_mb": rss / 1024, "pss_mb": pss / 1024, "processes": names}
    finally:
        request("DELETE", f"/session/{sid}", timeout=30)
        time.sleep(1)


def main():
    binary, runs = os.path.abspath(sys.argv[1]), int(sys.argv[2])
    results = [one_run(binary) for _ in range(runs)]
    summary = {}
    for k in ["first_paint_s", "ledger_on_screen_s", "rss_mb", "pss_mb"]:
        vals = [r[k] for r in results if r[k] is not None]
        summary[k] = {"min": min(vals), "median": statistics.median(vals), "max": max(vals)} if vals else None
    summary["processes"] = results[-1]["processes"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
