#!/usr/bin/env python3
"""Time a command as a whole process: wall seconds and peak RSS, over several runs.

Usage: measure.py [--runs N] [--setup 'SHELL COMMAND'] -- COMMAND [ARG ...]

The setup command (run through sh, not timed) prepares each run, e.g. a fresh
ledger. Prints one JSON object: every run's wall time and peak RSS (the kernel's
accounting of that one finished process, from wait4), their median and maximum.
The command's output is discarded; a run exiting other than 0 or 1 stops it.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run_once(cmd):
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=null, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode not in (0, 1):
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            sys.exit(f"{' '.join(cmd)} exited {p.returncode}: {tail}")
        return wall, usage.ru_maxrss


def main():
    args = sys.argv[1:]
    runs, setup = 3, None
    while args and args[0] != "--":
        if args[0] == "--runs":
            runs, args = int(args[1]), args[2:]
        elif args[0] == "--setup":
            setup, args = args[1], args[2:]
        else:
            sys.exit(f"unknown option {args[0]}")
    cmd = args[1:]
    walls, rss = [], []
    for _ in range(runs):
        if setup:
            subprocess.run(["sh", "-c", setup], check=True, stdout=subprocess.DEVNULL)
        wall, kb = run_once(cmd)
        walls.append(wall)
        rss.append(kb)
    print(json.dumps({
        "wall_s": [round(w, 3) for w in walls],
        "rss_kb": rss,
        "median_wall_s": statistics.median(walls),
        "max_rss_kb": max(rss),
    }))


if __name__ == "__main__":
    main()
