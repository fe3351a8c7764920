#!/usr/bin/env python3
"""Run one command as a whole process; print its wall time and CPU time.

Usage: rusage.py -- COMMAND [ARG ...]

Prints one JSON object: wall_s, user_s, sys_s, cpu_s (user + sys) and max_rss_kb, the
kernel's accounting of that one finished process from wait4 (as benches/measure.py, which
does not report CPU). The command's stdout is discarded; a run exiting other than 0 stops
it with the tail of its stderr.
"""
import json
import os
import subprocess
import sys
import tempfile
import time


def main():
    args = sys.argv[1:]
    if not args or args[0] != "--" or len(args) < 2:
        sys.exit(__doc__)
    cmd = args[1:]
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=null, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        p.returncode = code
        if code != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            sys.exit(f"{' '.join(cmd)} exited {code}: {tail}")
    print(json.dumps({
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss,
    }))


if __name__ == "__main__":
    main()
