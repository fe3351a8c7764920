#!/usr/bin/env python3
"""Baseline for the tool grade CSV import: Python's csv module reading the same
file by header and converting the scores. Writes nothing."""
import csv
import sys

n = 0
with open(sys.argv[1], newline="", encoding="utf-8-sig") as f:
    for row in csv.DictReader(f):
        float(row["score_given"]), float(row["score_maximum"])
        _ = (row["context_id"], row["resource_link_id"], row["user_id"], row.get("lis_result_sourcedid"))
        n += 1
print(n)
