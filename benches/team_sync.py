#!/usr/bin/env python3
"""The team ledger benchmark's cases (see benches/team_sync_bench.sh).

Usage: team_sync.py PASSBACK_BINARY RUNS

For each ledger (a SQLite file; a fresh database on the PostgreSQL server that
PASSBACK_TEST_POSTGRES names, password through PGPASSFILE) and each number of
workers (1, 2): a fresh ledger with the sandbox as platform `sb` and 10,000 tool
grades imported, the sandbox's counters reset, then the workers started together,
each `passback sync --concurrency 16` timed as a whole process (benches/rusage.py).
Wall time is the last worker's end; CPU is the workers' user + sys summed. The
sandbox's counters give the requests; a case fails if the LMS does not end with
every grade written exactly once.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

GRADES = 10_000
LATENCY_MS = 20
CONCURRENCY = 16


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def main():
    binary, runs = sys.argv[1], int(sys.argv[2])
    admin = os.environ["PASSBACK_TEST_POSTGRES"]
    work = tempfile.mkdtemp()
    sids = os.path.join(work, "sourcedids.txt")
    with open(sids, "w") as f:
        f.writelines(f"sid-{i}\n" for i in range(GRADES))
    sandbox = subprocess.Popen(
        [binary, "sandbox", "--dialect", "moodle", "--seed", "3", "--sourcedids", sids,
         "--latency-ms", str(LATENCY_MS)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = json.loads(sandbox.stdout.readline())
    base = info["base_url"]

    def lms(path, method="GET"):
        req = urllib.request.Request(base + path, method=method)
        with urllib.request.urlopen(req) as r:
            return json.load(r) if method == "GET" else None

    grades = os.path.join(work, "grades.csv")
    with open(grades, "w") as f:
        f.write("context_id,resource_link_id,user_id,score_given,score_maximum,lis_result_sourcedid,"
                "lis_outcome_service_url\n")
        for i in range(GRADES):
            f.write(f"c1,rl-{i % 20},u-{i},{(i * 7) % 11},10,sid-{i},{info['lti11_outcome_url']}\n")

    n = 0

    def fresh_ledger(engine):
        nonlocal n
        n += 1
        if engine == "sqlite":
            db = os.path.join(work, f"ledger-{n}.sqlite")
        else:
            name = f"bench_{os.getpid()}_{n}"
            sh(["psql", admin, "-qc", f"CREATE DATABASE {name}"])
            db = admin.rsplit("/", 1)[0] + "/" + name
        env = dict(os.environ, PASSBACK_DB=db)
        sh([binary, "platform", "add-lti11", "--name", "sb", "--consumer-key", info["consumer_key"],
            "--allow-host", "127.0.0.1"], input=info["consumer_secret"], env=env)
        sh([binary, "import", grades, "--platform", "sb"], env=env)
        return env

    results = []
    for run in range(runs):
        for engine in ("sqlite", "postgres"):
            for workers in (1, 2):
                env = fresh_ledger(engine)
                lms("/_sandbox/reset", "POST")
                start = time.perf_counter()
                procs = [subprocess.Popen(
                    [sys.executable, "benches/rusage.py", "--", binary, "sync", "--concurrency", str(CONCURRENCY)],
                    stdout=subprocess.PIPE, text=True,
                    env=dict(env, PASSBACK_ACTOR=f"worker-{w}")) for w in range(workers)]
                outs = [json.loads(p.communicate()[0]) for p in procs]
                wall = time.perf_counter() - start
                if any(p.returncode != 0 for p in procs):
                    sys.exit(f"{engine} x{workers}: a worker failed")
                r = lms("/_sandbox/results")
                writes = r["write_counts"] if "write_counts" in r else r["writes"]
                if r["total_writes"] != GRADES or len(r["results"]) != GRADES or any(v != 1 for v in writes.values()):
                    sys.exit(f"{engine} x{workers}: {r['total_writes']} writes for {GRADES} grades")
                cpu = sum(o["cpu_s"] for o in outs)
                rss = max(o["max_rss_kb"] for o in outs)
                results.append({"run": run, "engine": engine, "workers": workers, "wall_s": wall, "cpu_s": cpu,
                                "requests": r["total_requests"], "max_rss_kb": rss})
                print(f"  {engine:8} x{workers}: {wall:6.2f} s wall, {cpu:5.2f} s CPU, "
                      f"{r['total_requests']} requests", flush=True)
    sandbox.terminate()

    print()
    print("| ledger | workers | wall (median) | vs SQLite, 1 worker | ideal | efficiency | CPU per grade | requests | peak RSS per worker |")
    print("|---|---|---|---|---|---|---|---|---|")
    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]
    base_wall = median([x["wall_s"] for x in results if x["engine"] == "sqlite" and x["workers"] == 1])
    for engine in ("sqlite", "postgres"):
        for workers in (1, 2):
            xs = [x for x in results if x["engine"] == engine and x["workers"] == workers]
            wall = median([x["wall_s"] for x in xs])
            cpu = median([x["cpu_s"] for x in xs])
            req = xs[0]["requests"]
            ideal = req * LATENCY_MS / 1000 / (CONCURRENCY * workers)
            label = "SQLite file" if engine == "sqlite" else "PostgreSQL"
            print(f"| {label} | {workers} | {wall:.2f} s | {base_wall / wall:.2f}x | {ideal:.1f} s | "
                  f"{ideal / wall * 100:.1f} % | {cpu / GRADES * 1000:.3f} ms | {req:,} | "
                  f"{max(x['max_rss_kb'] for x in xs) / 1024:.0f} MB |")


if __name__ == "__main__":
    main()
