#!/usr/bin/env python3
"""Baseline for the Open edX log import: a plain Python regex scan of the same
file, finding every outcome-failure record (bodies may run over several lines)
and pulling out its fields. Writes nothing. Prints lines and records found."""
import re
import sys

START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
FAILURE = re.compile(
    r"Outcome Service: Failed to update score on LTI consumer\. User: (\S+), course: (\S+), usage: (\S+), "
    r"score: (\S+), possible: (\S+) status: (.*?), body: (.*)",
    re.S,
)

lines = found = 0
record = []


def flush():
    global found
    if record:
        m = FAILURE.search("".join(record))
        if m:
            user, course, usage, score, possible, status, body = m.groups()
            float(score), float(possible)
            found += 1


with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        lines += 1
        if START.match(line):
            flush()
            record = [line]
        else:
            record.append(line)
flush()
print(lines, found)
