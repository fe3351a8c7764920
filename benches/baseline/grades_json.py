#!/usr/bin/env python3
"""Baseline for `passback grades --json`: Python's sqlite3 and json modules
listing the same current grades of the same ledger, streamed row by row."""
import json
import sqlite3
import sys

db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
out = sys.stdout
out.write("[")
first = True
for r in db.execute(
    """SELECT g.id, p.name, c.context_id, a.resource_link_id, a.title, l.lti_user_id, l.name, g.version,
              g.score_given, g.score_maximum, g.recorded_at, cg.status, cg.status_detail
       FROM current_grades cg JOIN grades g ON g.id = cg.grade_ref JOIN activities a ON a.id = cg.activity_ref
       JOIN contexts c ON c.id = a.context_ref JOIN platforms p ON p.id = c.platform_id
       JOIN learners l ON l.id = cg.learner_ref"""
):
    keys = ("grade_id", "platform", "context_id", "resource_link_id", "activity_title", "lti_user_id",
            "learner_name", "version", "score_given", "score_maximum", "recorded_at", "status", "status_detail")
    out.write(("\n" if first else ",\n") + json.dumps(dict(zip(keys, r)), indent=2))
    first = False
out.write("\n]\n")
