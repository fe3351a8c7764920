#!/usr/bin/env python3
"""Baseline for the Caliper import: Python's json module loading the same
envelope and pulling every LTIEvent's launch parameters. Writes nothing."""
import json
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    doc = json.load(f)
events = doc["data"] if isinstance(doc, dict) and "data" in doc else doc
n = 0
for e in events:
    if not str(e.get("type", "")).endswith("LTIEvent"):
        continue
    p = (e.get("object") or {}).get("launchParameters") or {}
    _ = (p.get("user_id"), p.get("context_id"), p.get("resource_link_id"), p.get("roles"),
         p.get("lis_result_sourcedid"), p.get("lis_outcome_service_url"), e.get("eventTime"))
    n += 1
print(n)
