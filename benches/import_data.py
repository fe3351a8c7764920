#!/usr/bin/env python3
"""Writes the import benchmark's inputs (stdlib only, deterministic).

  edx-dump.json       lti_provider records: 2,000 learners x 10 problems
  edx.log             1,000,000 log lines; 10 % of the records are outcome
                      failures (a fifth of those with an XML or HTML body over
                      several lines), the rest ordinary LMS log lines
  caliper.json        100,000 Caliper LTIEvents in an envelope, each a signed
                      LTI 1.1 launch (verified on import)
  tool-grades.csv     100,000 tool grade rows (5,000 learners x 20 activities)

Usage: import_data.py OUT_DIR
"""
import base64
import hashlib
import hmac
import json
import os
import random
import sys
import urllib.parse

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
rnd = random.Random(20261127)

KEY, SECRET = "canvas-key", "canvas-secret"
OUTCOME_URL = "https://canvas.example.edu/api/lti/v1/tools/7/grade_passback"
LAUNCH_URL = "https://tool.example.org/lti/launch"
COURSE = "course-v1:ExampleU+BIO101+2026"
T0 = 1795170000


def iso(t):
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- Open edX ----------------------------------------------------------------------
USERS, PROBLEMS = 2000, 10
usage = lambda p: f"block-v1:ExampleU+BIO101+2026+type@problem+block@p{p:02d}"
records = [
    {"model": "lti_provider.lticonsumer", "pk": 1, "fields": {"consumer_name": "Canvas", "consumer_key": KEY, "consumer_secret": "s", "instance_guid": "canvas"}},
    {"model": "lti_provider.outcomeservice", "pk": 1, "fields": {"lis_outcome_service_url": OUTCOME_URL, "lti_consumer": 1}},
]
pk = 0
for u in range(1, USERS + 1):
    records.append({"model": "lti_provider.ltiuser", "pk": u, "fields": {"lti_consumer": 1, "lti_user_id": f"lti-{u:05d}", "edx_user": 1000 + u}})
    for p in range(PROBLEMS):
        pk += 1
        records.append({"model": "lti_provider.gradedassignment", "pk": pk, "fields": {
            "user": 1000 + u, "course_key": COURSE, "usage_key": usage(p), "outcome_service": 1,
            "lis_result_sourcedid": f"sid-{u}-{p}", "version_number": 1}})
with open(os.path.join(OUT, "edx-dump.json"), "w") as f:
    json.dump(records, f)

XML = """<?xml version="1.0" encoding="UTF-8"?>
<imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">
  <imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version>
    <imsx_statusInfo><imsx_codeMajor>failure</imsx_codeMajor><imsx_severity>status</imsx_severity>
      <imsx_description>User is no longer in course</imsx_description></imsx_statusInfo>
  </imsx_POXResponseHeaderInfo></imsx_POXHeader>
</imsx_POXEnvelopeResponse>"""
HTML = """<!DOCTYPE html>
<html><head><title>503 Service Unavailable</title></head>
<body><h1>Service Unavailable</h1></body></html>"""
NOISE = [
    "INFO {pid} [tracking] logger.py:41 - {{\"username\": \"u{u}\", \"event_type\": \"problem_check\", \"event_source\": \"server\", \"page\": \"x_module\"}}",
    "INFO {pid} [django.request] log.py:224 - GET /courses/{c}/courseware/week{w}/ HTTP/1.1 200",
    "WARNING {pid} [edx.courseware] module_render.py:512 - Submission for usage {us} took {ms} ms",
    "INFO {pid} [edx.lti_provider] views.py:120 - LTI launch for user {u} in {c}",
    "INFO {pid} [celery.worker.strategy] strategy.py:161 - Task lms.djangoapps.grades.tasks.recalculate_subsection_grade_v3[{u:08x}] received",
]
lines = 0
failures = 0
records_n = 0
with open(os.path.join(OUT, "edx.log"), "w") as f:
    t = 0
    while lines < 1_000_000:
        t += 1
        prefix = f"2026-11-20 {10 + t // 360000 % 12:02d}:{t // 6000 % 60:02d}:{t // 100 % 60:02d},{t % 1000:03d} "
        u = rnd.randint(1, USERS + 200)  # some learners the dump does not know
        records_n += 1
        if rnd.random() < 0.10:
            failures += 1
            p = rnd.randrange(PROBLEMS)
            possible = 4.0
            score = rnd.randrange(0, 9) / 2
            kind = rnd.random()
            if kind < 0.10:
                status, body = "<Response [422]>", XML
            elif kind < 0.20:
                status, body = "<Response [503]>", HTML
            else:
                status, body = "None", "Unknown"
            text = (f"{prefix}ERROR 4242 [edx.lti_provider] tasks.py:85 - Outcome Service: Failed to update score on "
                    f"LTI consumer. User: {1000 + u}, course: {COURSE}, usage: {usage(p)}, score: {score}, "
                    f"possible: {possible} status: {status}, body: {body}\n")
        else:
            tpl = rnd.choice(NOISE)
            text = prefix + tpl.format(pid=4242, u=u, c=COURSE, w=rnd.randrange(12), us=usage(rnd.randrange(PROBLEMS)), ms=rnd.randrange(900)) + "\n"
        n = text.count("\n")
        if lines + n > 1_000_000:
            text = prefix + "INFO 4242 [django.request] log.py:224 - GET /heartbeat HTTP/1.1 200\n"
            n = 1
        f.write(text)
        lines += n
print(f"edx.log: {lines} lines, {records_n} records, {failures} failures", file=sys.stderr)


# --- Caliper --------------------------------------------------------------------------
def enc(s):
    return urllib.parse.quote(str(s), safe="-._~")


def sign(params):
    items = sorted((enc(k), enc(v)) for k, v in params.items())
    base = "&".join(["POST", enc(LAUNCH_URL), enc("&".join(f"{k}={v}" for k, v in items))])
    return base64.b64encode(hmac.new((enc(SECRET) + "&").encode(), base.encode(), hashlib.sha1).digest()).decode()


with open(os.path.join(OUT, "caliper.json"), "w") as f:
    f.write('{"sensor": "https://learn.example.edu/caliper", "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p1", "data": [\n')
    for i in range(100_000):
        u, a = i % 5000, i // 5000
        t = T0 + i
        p = {
            "lti_message_type": "basic-lti-launch-request", "lti_version": "LTI-1p0",
            "oauth_consumer_key": KEY, "oauth_nonce": f"nonce-{i:08d}", "oauth_signature_method": "HMAC-SHA1",
            "oauth_timestamp": str(t), "oauth_version": "1.0", "oauth_callback": "about:blank",
            "context_id": "bio-101", "context_title": "BIO 101", "resource_link_id": f"act-{a:02d}",
            "resource_link_title": f"Activity {a}", "user_id": f"user-{u:05d}",
            "roles": "urn:lti:role:ims/lis/Learner", "lis_person_name_full": f"Learner {u}",
            "lis_person_contact_email_primary": f"learner{u}@example.edu", "lis_person_sourcedid": f"S{u:05d}",
            "lis_result_sourcedid": f"sid-{u}-{a}", "lis_outcome_service_url": OUTCOME_URL,
            "ext_outcome_data_values_accepted": "url,text",
        }
        p["oauth_signature"] = sign(p)
        event = {
            "@context": "http://purl.imsglobal.org/ctx/caliper/v1p1",
            "type": "http://caliper.blackboard.com/caliper/v1/LTIEvent",
            "id": f"urn:uuid:00000000-0000-0000-0000-{i:012d}",
            "actor": {"id": f"https://caliper-mapping.example/users/{u}", "type": "Person"},
            "action": "LoggedIn",
            "object": {"type": "http://caliper.blackboard.com/caliper/v1/LTILaunchInfo", "launchUrl": LAUNCH_URL,
                       "launchParameters": p, "customParameters": {}},
            "eventTime": iso(t + 1),
        }
        f.write(("," if i else "") + json.dumps(event) + "\n")
    f.write("]}\n")

# --- Tool grade CSV ----------------------------------------------------------------------
with open(os.path.join(OUT, "tool-grades.csv"), "w") as f:
    f.write("context_id,resource_link_id,user_id,lis_person_name_full,score_given,score_maximum,"
            "lis_result_sourcedid,lis_outcome_service_url,graded_at,comment\n")
    for i in range(100_000):
        u, a = i % 5000, i // 5000
        f.write(f"bio-101,act-{a:02d},user-{u:05d},Learner {u},{rnd.randrange(0, 41) / 4},10,sid-{u}-{a},"
                f"{OUTCOME_URL},{iso(T0 + i)},\"Feedback, {a}\"\n")
