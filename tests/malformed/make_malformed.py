#!/usr/bin/env python3
"""Writes the malformed-input corpus in this folder (stdlib only; deterministic):
every file, `manifest.tsv` (what `tests/integration/malformed.rs` asserts) and the
table in `README.md`.

Each file is damaged the way real files are (cut off, re-saved, hand-edited,
concatenated, forged) and must be refused with a `file:line` reason that names the
problem, leaving the ledger's data unchanged. The good records some files start
with are copies of what the test's ledger already holds (`tests/fixtures/import`),
so they import as "unchanged".

Run: python3 tests/malformed/make_malformed.py
"""
import base64
import hashlib
import json
import os
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "import")
OUTCOME_URL = "https://canvas.example.edu/api/lti/v1/tools/7/grade_passback"
PROXY_SECRET = "proxy-shared-secret"
T0 = 1795170000  # 2026-11-20T10:20:00Z

# Arguments every file of a format is imported with (the test's ledger has two
# platforms: the LTI 1.1 `canvas` and the LTIAAS `ltiaas`).
TOOL = "--platform canvas"
PROXY = "--platform canvas --proxy-secret-env PROXY_SECRET"
GRADEBOOK = "--platform canvas --context bio-101 --exported-at 2026-11-22T10:00:00Z"

CASES = []


def case(name, fmt, args, line, column, reason, what, data):
    """One malformed file: its name, the format it is (detected, or given with
    --format in `args`), the import arguments, the line and column of the first
    rejected record, a substring of the reason, and what is wrong with it."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    CASES.append(dict(name=name, format=fmt, args=args, line=line, column=column or "-",
                      reason=reason, what=what, data=data))


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def form(p):
    return urllib.parse.urlencode(p)


def iso(t):
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- Tool grade CSVs ------------------------------------------------------------------------
H = "context_id,resource_link_id,user_id,score_given,score_maximum"
HX = H + ",graded_at,comment"
GOOD_TOOL = fixture("tool-grades.csv").decode("utf-8").splitlines(keepends=True)

case("tool-score-nan.csv", "tool-csv", TOOL, 2, "score_given", "score_given is not a number",
     "score_given is `NaN`", H + "\nbio-101,quiz-1,u-ada,NaN,10\n")
case("tool-score-negative.csv", "tool-csv", TOOL, 3, "score_given", "score_given must be 0 or more",
     "a negative score after a blank line", H + "\n\nbio-101,quiz-1,u-ada,-3,10\n")
case("tool-score-percent.csv", "tool-csv", TOOL, 2, "score_given", "score_given is not a number",
     "the score written as a percentage (`85%`)", H + "\nbio-101,quiz-1,u-ada,85%,100\n")
case("tool-score-infinite.csv", "tool-csv", TOOL, 2, "score_given", "score_given is not a number",
     "a number too large for a double (`1e999`)", H + "\nbio-101,quiz-1,u-ada,1e999,10\n")
case("tool-score-max-zero.csv", "tool-csv", TOOL, 2, "score_maximum", "score_maximum must be above 0",
     "score_maximum is 0", H + "\nbio-101,quiz-1,u-ada,0,0\n")
case("tool-score-max-missing.csv", "tool-csv", TOOL, 2, "score_maximum", "score_given needs score_maximum",
     "a score_given column without score_maximum", "context_id,resource_link_id,user_id,score_given\nbio-101,quiz-1,u-ada,9\n")
case("tool-score-fraction-over-one.csv", "tool-csv", TOOL, 2, "score", "score must be between 0 and 1",
     "a 0–1 `score` of 1.5", "context_id,resource_link_id,user_id,score\nbio-101,quiz-1,u-ada,1.5\n")
case("tool-no-score.csv", "tool-csv", TOOL, 2, "score_given", "no score",
     "both score cells empty", H + "\nbio-101,quiz-1,u-ada,,\n")
case("tool-user-id-blank.csv", "tool-csv", TOOL, 2, "user_id", "user_id is empty",
     "user_id is only spaces", H + "\nbio-101,quiz-1,   ,9,10\n")
case("tool-context-id-empty.csv", "tool-csv", TOOL, 2, "context_id", "context_id is empty",
     "context_id is empty", H + "\n,quiz-1,u-ada,9,10\n")
case("tool-graded-at-words.csv", "tool-csv", TOOL, 2, "graded_at", "graded_at is not a date and time",
     "graded_at is `yesterday`", HX + "\nbio-101,quiz-1,u-ada,9,10,yesterday,\n")
case("tool-graded-at-feb-30.csv", "tool-csv", TOOL, 2, "graded_at", "graded_at is not a date and time",
     "graded_at is 30 February", HX + "\nbio-101,quiz-1,u-ada,9,10,2026-02-30T10:00:00Z,\n")
case("tool-graded-at-day-first.csv", "tool-csv", TOOL, 2, "graded_at", "graded_at is not a date and time",
     "graded_at written day first (`20/11/2026 10:00`)", HX + "\nbio-101,quiz-1,u-ada,9,10,20/11/2026 10:00,\n")
case("tool-graded-at-far-future.csv", "tool-csv", TOOL, 2, "-", "dated more than a day in the future",
     "graded_at in the year 9999 (it would keep every later grade of Ada's out)",
     HX + "\nbio-101,quiz-1,u-ada,8,10,9999-12-31T23:59:59Z,\n")
case("tool-result-text-and-url.csv", "tool-csv", TOOL, 2, "result_url", "result_text or result_url, not both",
     "both result_text and result_url", H + ",result_text,result_url\nbio-101,quiz-1,u-ada,9,10,essay,https://tool.example.org/e/1\n")
case("tool-unknown-consumer-key.csv", "tool-csv", "-", 2, "oauth_consumer_key", "unknown consumer key",
     "an oauth_consumer_key no platform has", H + ",oauth_consumer_key\nbio-101,quiz-1,u-ada,9,10,moodle-key\n")
case("tool-empty-consumer-key.csv", "tool-csv", "-", 2, "oauth_consumer_key", "oauth_consumer_key is empty",
     "an empty oauth_consumer_key", H + ",oauth_consumer_key\nbio-101,quiz-1,u-ada,9,10,\n")
case("tool-truncated.csv", "tool-csv", TOOL, 5, "-", "fields where the header has 12",
     "the export broke off in the middle of its fourth row (the rows before it are in the ledger already)",
     "".join(GOOD_TOOL[:4]) + GOOD_TOOL[4][:22])
case("tool-short-row.csv", "tool-csv", TOOL, 2, "-", "4 fields where the header has 5",
     "a row with a field missing", H + "\nbio-101,quiz-1,u-ada,9\n")
case("tool-unquoted-comma.csv", "tool-csv", TOOL, 2, "-", "8 fields where the header has 7",
     "a comment with an unquoted comma shifts the columns", HX + "\nbio-101,quiz-1,u-ada,9,10,2026-11-20T09:00:00Z,good, well argued\n")
case("tool-unterminated-quote.csv", "tool-csv", TOOL, 2, "-", "never closed",
     "a quoted comment is never closed, swallowing the rows after it",
     HX + '\nbio-101,quiz-1,u-ada,9,10,2026-11-20T09:00:00Z,"Good work\nbio-101,quiz-1,u-grace,7.5,10,2026-11-20T09:01:00Z,\n')
case("tool-bad-utf8.csv", "tool-csv", TOOL, 2, "-", "not UTF-8 text",
     "a Latin-1 name in a file read as UTF-8", (H + ",lis_person_name_full\nbio-101,quiz-1,u-zoe,9,10,Zo").encode() + b"\xeb\n")
case("tool-concatenated.csv", "tool-csv", TOOL, 2, "score_given", "score_given is not a number",
     "two exports joined with `cat`: the second header (with its BOM) is read as a row",
     "\ufeff" + H + "\n\ufeff" + H + "\n")
case("tool-semicolon-decimal.csv", "tool-csv", TOOL, 2, "score_given", "score_given is not a number",
     "a semicolon export with a score of `8,5,1`", "\ufeffcontext_id;resource_link_id;user_id;score_given;score_maximum\r\nbio-101;quiz-1;u-ada;8,5,1;10\r\n")
case("tool-semicolon-comma-rows.csv", "tool-csv", TOOL, 2, "-", "1 field where the header has 5",
     "a semicolon header over comma-separated rows", "context_id;resource_link_id;user_id;score_given;score_maximum\nbio-101,quiz-1,u-ada,9,10\n")
case("tool-crlf-mixed.csv", "tool-csv", TOOL, 3, "score_given", "score_given must be 0 or more",
     "CRLF, CR and LF line ends mixed (a CR alone ends a line; the grade on line 2 is in the ledger already)",
     H + "\r\nbio-101,quiz-1,u-ada,9,10\rbio-101,quiz-1,u-grace,-2,10\n")
case("tool-utf16-negative.csv", "tool-csv", TOOL, 3, "score_given", "score_given must be 0 or more",
     "Excel's UTF-16 \"Unicode text\" with a negative score on line 3",
     ("\ufeff" + "\t".join(H.split(",")) + "\r\n\r\nbio-101\tquiz-1\tu-zoe\t-0.5\t1\r\n").encode("utf-16-le"))
case("tool-utf16-truncated.csv", "tool-csv", TOOL, 2, "-", "fields where the header has 5",
     "a UTF-16 file cut off mid-row, on half a character",
     ("\ufeff" + "\t".join(H.split(",")) + "\r\nbio-101\tquiz-1\tu-zoe").encode("utf-16-le") + b"\x41")
case("tool-header-typo.csv", "tool-csv", "--format tool-csv " + TOOL, 1, "-", "the header has no user_id column",
     "the header says `userid` (no `user_id`)", "context_id,resource_link_id,userid,score_given,score_maximum\nbio-101,quiz-1,u-ada,9,10\n")
case("tool-duplicate-column.csv", "tool-csv", TOOL, 1, "-", "score_given more than once",
     "the header names score_given twice (which one is the grade?)", H + ",score_given\nbio-101,quiz-1,u-ada,9,10,7\n")
case("tool-control-character.csv", "tool-csv", TOOL, 2, "user_id", "control character",
     "a user_id with an escape (0x1B) and a NUL in it", H + "\nbio-101,quiz-1,u-\x1bada\x00,9,10\n")

# --- Open edX outcome-failure logs ---------------------------------------------------------------
COURSE = "course-v1:ExampleU+BIO101+2026"
Q1 = "block-v1:ExampleU+BIO101+2026+type@problem+block@quiz1"
PRE = "2026-11-20 10:00:06,006 ERROR 4242 [edx.lti_provider] tasks.py:85 - "
INFO = "2026-11-20 10:00:01,001 INFO 4242 [edx.lti_provider] views.py:120 - LTI launch for user 17\n"
FAIL = "Outcome Service: Failed to update score on LTI consumer. "


def fail(user="17", score="3.0", possible="4.0", prefix=PRE):
    return f"{prefix}{FAIL}User: {user}, course: {COURSE}, usage: {Q1}, score: {score}, possible: {possible} status: None, body: Unknown\n"


case("edx-user-not-a-number.log", "edx-log", "-", 2, "User", "not an Open edX user id",
     "a user that is a name, not an id", INFO + fail(user="ada"))
case("edx-score-nan.log", "edx-log", "-", 2, "score", "score is not a number",
     "score is `nan`", INFO + fail(score="nan"))
case("edx-possible-not-a-number.log", "edx-log", "-", 1, "possible", "possible is not a number",
     "possible is `None`", fail(possible="None"))
case("edx-possible-zero.log", "edx-log", "-", 1, "possible", "points possible is 0",
     "points possible is 0", fail(possible="0"))
case("edx-negative-score.log", "edx-log", "-", 1, "score", "a negative score",
     "a negative score", fail(score="-1.0"))
case("edx-score-infinite.log", "edx-log", "-", 1, "score", "score is not a number",
     "a score too large for a double", fail(score="1e400"))
case("edx-truncated.log", "edx-log", "-", 2, "-", "without its User, course, usage, score and possible",
     "the log was cut off in the middle of a failure line", INFO + fail()[:180])
case("edx-fields-missing.log", "edx-log", "-", 1, "-", "without its User, course, usage, score and possible",
     "a failure line whose `possible` field was lost",
     fail().replace(", possible: 4.0", ""))
case("edx-bad-timestamp.log", "edx-log", "-", 2, "time", "not a valid date and time",
     "a failure line stamped 2026-13-45 25:61:00", INFO + fail(prefix=PRE.replace("2026-11-20 10:00:06", "2026-13-45 25:61:00")))
case("edx-future.log", "edx-log", "-", 2, "-", "dated more than a day in the future",
     "a failure line stamped 2099 by a server with a wrong clock",
     INFO + fail(prefix=PRE.replace("2026-11-20", "2099-11-20")))
case("edx-crlf-body.log", "edx-log", "-", 2, "User", "not an Open edX user id",
     "CRLF line ends and a multi-line body after a bad user id",
     (INFO + fail(user="x17").replace("body: Unknown", "body: <html>\r\n<body>oops</body>\r\n</html>")).replace("\n", "\r\n"))
case("edx-bad-utf8.log", "edx-log", "-", 2, "User", "not an Open edX user id",
     "a user id with a byte that is not UTF-8", INFO.encode() + fail(user="1\xff7").encode("latin-1"))

# --- Open edX lti_provider records (dumpdata JSON and CSV) ---------------------------------------
DUMP = json.loads(fixture("edx-lti-provider.json"))


def dump(records, indent=2):
    return json.dumps(records, indent=indent) + "\n"


full = dump(DUMP)
case("edx-dump-truncated.json", "edx-dump", "-", 20, "-", "ends in the middle of a record",
     "a dumpdata file cut off in its third record (the two before it are in the ledger already)",
     full[:full.index('"u-ada"') + 4])
case("edx-dump-no-pk.json", "edx-dump", "-", 2, "-", "no primary key",
     "an LtiUser record without its pk",
     dump([{"model": "lti_provider.ltiuser", "fields": {"lti_consumer": 1, "lti_user_id": "u-new", "edx_user": 99}}]))
case("edx-dump-missing-field.json", "edx-dump", "-", 2, "-", "the record has no lti_user_id",
     "an LtiUser record without lti_user_id",
     dump([{"model": "lti_provider.ltiuser", "pk": 40, "fields": {"lti_consumer": 1, "edx_user": 99}}]))
case("edx-dump-user-not-a-number.json", "edx-dump", "-", 2, "-", "edx_user is missing or not a number",
     "an LtiUser whose edx_user is a name",
     dump([{"model": "lti_provider.ltiuser", "pk": 40, "fields": {"lti_consumer": 1, "lti_user_id": "u-new", "edx_user": "ada"}}]))
case("edx-dump-fields-wrong-shape.json", "edx-dump", "-", 1, "-", "the record has no lis_outcome_service_url",
     "an OutcomeService whose fields are a list, not an object",
     '[{"model": "lti_provider.outcomeservice", "pk": 9, "fields": ["https://canvas.example.edu/x", 1]}]\n')
case("edx-dump-duplicate-key.json", "edx-dump", "-", 1, "-", "names the same key twice",
     "an LtiUser naming lti_user_id twice",
     '[{"model": "lti_provider.ltiuser", "pk": 41, "fields": {"lti_consumer": 1, "lti_user_id": "u-a", "lti_user_id": "u-b", "edx_user": 98}}]\n')
case("edx-dump-trailing-garbage.json", "edx-dump", "-", 3, "-", "expected a JSON object or array of objects",
     "a Python traceback after the array (its record is in the ledger already)",
     json.dumps([DUMP[2]]) + "\n\nTraceback (most recent call last):\n")
case("edx-dump-numbers-array.json", "edx-dump", "--format edx-dump", 1, "-", "expected a JSON object or array of objects",
     "a JSON array of numbers, not records", "[1, 2, 3]\n")
case("edx-dump-bad-escape.json", "edx-dump", "--format edx-dump", 2, "-", "not valid JSON",
     "a record with an invalid `\\u` escape",
     '[\n  {"model": "lti_provider.ltiuser", "pk": 43, "fields": {"lti_consumer": 1, "lti_user_id": "u-\\uZZZZ", "edx_user": 96}}\n]\n')
case("edx-ltiuser-not-a-number.csv", "edx-dump", "-", 2, "-", "edx_user is missing or not a number",
     "an LtiUser CSV with an edx_user_id of `n/a`", "id,lti_consumer_id,lti_user_id,edx_user_id\n44,1,u-d,n/a\n")
case("edx-gradedassignment-no-sourcedid.csv", "edx-dump", "-", 2, "-", "the record has no lis_result_sourcedid",
     "a GradedAssignment CSV row without its sourcedid",
     f"id,user_id,course_key,usage_key,outcome_service_id,lis_result_sourcedid,version_number\n45,21,{COURSE},{Q1},1,,1\n")
case("edx-dump-unknown-columns.csv", "edx-dump", "--format edx-dump", 1, "-", "not those of an lti_provider model",
     "a CSV whose columns are no lti_provider model's", "id,username,email\n1,ada,ada@example.edu\n")

# --- Caliper LTIEvents ------------------------------------------------------------------------------
CAL = json.loads(fixture("caliper-events.json"))
EV = CAL["data"][0]


def event(**changes):
    e = json.loads(json.dumps(EV))
    for path, value in changes.items():
        node = e
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return e


case("caliper-truncated.json", "caliper", "-", 126, "-", "ends in the middle of a record",
     "a sensor upload cut off in its third event (the two before it are in the ledger already)",
     fixture("caliper-truncated.json"))
case("caliper-no-launch-parameters.json", "caliper", "-", 1, "object.launchParameters", "carries no launch parameters",
     "a launch event without object.launchParameters", json.dumps(event(object__launchParameters=None)) + "\n")
case("caliper-launch-parameters-string.ndjson", "caliper", "-", 2, "object.launchParameters", "carries no launch parameters",
     "launchParameters as a query string instead of an object (NDJSON, after a blank line)",
     "\n" + json.dumps(event(object__launchParameters="user_id=u-ada&context_id=bio-101")) + "\n")
case("caliper-no-user-id.json", "caliper", "-", 1, "user_id", "the launch has no user_id",
     "a launch without user_id", json.dumps(event(object__launchParameters__user_id=None)) + "\n")
case("caliper-unknown-consumer-key.json", "caliper", "-", 1, "oauth_consumer_key", "unknown consumer key",
     "a launch signed with a consumer key no platform has",
     json.dumps(event(object__launchParameters__oauth_consumer_key="moodle-key")) + "\n")
case("caliper-ndjson-bad-line.ndjson", "caliper", "--format caliper", 1, "-", "not valid JSON",
     "NDJSON whose first line has single-quoted strings and whose second has no user_id",
     "{'type': 'LTIEvent', 'action': 'LoggedIn'}\n" + json.dumps(event(object__launchParameters__user_id=None)) + "\n")
case("caliper-deep-nesting.json", "caliper", "--format caliper", 1, "-", "not valid JSON",
     "an event nested 10,000 arrays deep", '{"type": "LTIEvent", "x": ' + "[" * 10000 + "]" * 10000 + "}\n")
case("caliper-bad-utf8.json", "caliper", "-", 2, "-", "not valid JSON",
     "an envelope whose event has a byte that is not UTF-8",
     b'{"sensor": "s", "data": [\n' + json.dumps(event(object__launchParameters__user_id="u-X")).encode().replace(b"u-X", b"u-\xff") + b"\n]}\n")

case("caliper-duplicate-key.json", "caliper", "-", 1, "-", "names the same key twice",
     "launchParameters naming user_id twice (which one did the LMS sign?)",
     json.dumps(event()).replace('"user_id": "u-ada"', '"user_id": "u-ada", "user_id": "u-mallory"') + "\n")
case("caliper-unclosed-envelope.json", "caliper", "-", 6, "-", "ends in the middle of a record",
     "an envelope whose data array and object never close (its one event is in the ledger already)",
     '{"sensor": "https://learn.example.edu/caliper",\n "data": [\n' + json.dumps(EV) + ',\n\n\n')

# --- Captured LTI 1.1 launches ----------------------------------------------------------------------
LAUNCH_TXT = fixture("launches.txt").decode().splitlines()
GOOD_LINE = LAUNCH_TXT[1]
TIME, BODY = GOOD_LINE.split(" ", 1)
PARAMS = dict(urllib.parse.parse_qsl(BODY))


def launch_line(t=TIME, **changes):
    p = dict(PARAMS)
    for k, v in changes.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    return f"{t} {form(p)}"


case("launches-no-user-id.txt", "launches", "-", 2, "user_id", "the launch has no user_id",
     "a captured launch without user_id", "# captured by the proxy\n" + launch_line(user_id=None) + "\n")
case("launches-not-form-encoded.txt", "launches", "-", 2, "-", "not a form-encoded request",
     "a line of prose after a launch (which is in the ledger already)",
     GOOD_LINE + "\n2026-11-20T10:33:10.000Z see attached screenshot\n")
case("launches-unknown-consumer-key.txt", "launches", "-", 1, "oauth_consumer_key", "unknown consumer key",
     "a launch from a consumer no platform has", launch_line(oauth_consumer_key="moodle-key") + "\n")
case("launches-control-character.txt", "launches", "-", 1, "user_id", "control character",
     "a user_id with a NUL in it (`%00`)", launch_line(user_id="u-ada\x00") + "\n")
case("launches-bad-utf8.txt", "launches", "-", 2, "-", "not UTF-8 text",
     "a Latin-1 byte in a raw capture (after a launch that is in the ledger already)",
     (GOOD_LINE + "\n").encode() + launch_line(user_id="u-ada").encode().replace(b"u-ada", b"u-\xe9da") + b"\n")
case("launches-truncated.json", "launches", "--format launches", 2, "-", "ends in the middle of a record",
     "a JSON capture cut off in its first launch", fixture("launches.json")[:400])
case("launches-not-objects.json", "launches", "--format launches", 1, "-", "expected a JSON object",
     "a JSON array of form-encoded strings instead of objects", json.dumps([BODY]) + "\n")
case("launches-nested-array.json", "launches", "-", 3, "-", "expected a JSON object of parameters",
     "a nested array after a launch (which is in the ledger already)",
     "[\n" + json.dumps(json.loads(fixture("launches.json"))[0]) + ',\n["user_id", "u-ada"]\n]\n')
case("launches-duplicate-key.json", "launches", "-", 1, "-", "names the same key twice",
     "a launch naming user_id twice",
     "[" + json.dumps(PARAMS)[:-1] + ', "user_id": "u-mallory"}]\n')

# --- Blackboard proxy-tool requests -------------------------------------------------------------------
def proxy(secret=PROXY_SECRET, digest="md5", drop=(), **changes):
    p = {
        "ourguid": "7f1f8e2c-proxy-tool", "tcbaseurl": "https://learn.example.edu", "returnurl": "/webapps/blackboard/execute/courseMain",
        "locale": "en_US", "direction": "ltr", "timestamp": str((T0 + 900) * 1000), "ticket": "T-0123456789",
        "userid": "_20_1", "role": "COURSE:STUDENT", "tcrole": "STUDENT", "course_id": "_41_1",
    }
    p.update(changes)
    for k in drop:
        p.pop(k)
    data = "".join(p[k] for k in sorted(p)) + secret
    h = hashlib.md5 if digest == "md5" else hashlib.sha1
    p["mac"] = base64.b64encode(h(data.encode("utf-8")).digest()).decode()
    return p


AT = iso(T0 + 901)
PROXY_TXT = fixture("proxy-requests.txt").decode().splitlines()
forged = proxy()
forged["userid"] = "_99_1"
case("proxy-forged.txt", "proxy", PROXY, 1, "mac", "forged or altered",
     "a request whose userid was changed after it was signed", f"{AT} {form(forged)}\n")
case("proxy-wrong-secret.txt", "proxy", PROXY, 2, "mac", "forged or altered",
     "a request signed with another secret", "# proxy capture\n" + f"{AT} {form(proxy(secret='guess'))}\n")
case("proxy-sha1.json", "proxy", PROXY, 2, "mac", "the MAC is sha1, not md5",
     "a SHA-1 MAC imported as MD5", json.dumps([dict(proxy(digest="sha1"), captured_at=AT)], indent=0) + "\n")
case("proxy-mac-not-base64.txt", "proxy", PROXY, 1, "mac", "forged or altered",
     "a MAC that is not base64", f"{AT} {form(dict(proxy(), mac='!!not*base64!!'))}\n")
case("proxy-mac-missing.txt", "proxy", "--format proxy " + PROXY, 1, "mac", "the request has no mac",
     "a request without its mac", f"{AT} {form({k: v for k, v in proxy().items() if k != 'mac'})}\n")
case("proxy-stale.txt", "proxy", PROXY, 1, "timestamp", "stale",
     "a request replayed two hours after it was signed", f"{iso(T0 + 901 + 7200)} {form(proxy())}\n")
case("proxy-replayed.txt", "proxy", PROXY, 3, "mac", "replayed",
     "the same signed request twice (the first is in the ledger already)",
     PROXY_TXT[0] + "\n" + PROXY_TXT[1] + "\n" + PROXY_TXT[1].replace("10:35:01", "10:35:04") + "\n")
case("proxy-timestamp-words.txt", "proxy", PROXY, 1, "timestamp", "no usable timestamp",
     "a correctly signed request whose timestamp is `soon`", f"{AT} {form(proxy(timestamp='soon'))}\n")
case("proxy-timestamp-huge.txt", "proxy", PROXY, 1, "timestamp", "no usable timestamp",
     "a correctly signed request with a 30-digit timestamp", f"{AT} {form(proxy(timestamp='9' * 30))}\n")
case("proxy-no-userid.txt", "proxy", PROXY, 1, "userid", "the request has no userid",
     "a correctly signed request without userid", f"{AT} {form(proxy(drop=('userid',)))}\n")
case("proxy-truncated.txt", "proxy", PROXY, 2, "mac", "forged or altered",
     "a capture cut off in the middle of its second request's MAC (the first is in the ledger already)",
     PROXY_TXT[1] + "\n" + PROXY_TXT[2][:-6])

# --- LTIAAS ID tokens -----------------------------------------------------------------------------
TOKENS = json.loads(fixture("ltiaas-idtokens.json"))


def token(**changes):
    t = json.loads(json.dumps(TOKENS[0]))
    t["services"].pop("serviceKey")  # never a service key: nothing may reach the keyring
    for path, value in changes.items():
        node = t
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return t


JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJsdC11c2VyLTEiLCJodHRwczovL3B1cmwuaW1zZ2xvYmFsLm9yZy9zcGVjL2x0aS9jbGFpbS9yb2xlcyI6W119"
case("idtoken-no-context.json", "ltiaas-idtoken", "-", 2, "launch", "no launch.context.id or launch.resourceLink.id",
     "an ID token without launch.context", dump([token(launch__context=None)]))
case("idtoken-no-user-id.json", "ltiaas-idtoken", "-", 2, "-", "the ID token has no user.id",
     "an ID token whose user.id is empty", dump([token(user__id="")]))
case("idtoken-user-is-string.json", "ltiaas-idtoken", "-", 1, "-", "not an LTIAAS ID token",
     "`user` is the user id, not an object", json.dumps(token(user="lt-user-1")) + "\n")
case("idtoken-truncated.json", "ltiaas-idtoken", "--format ltiaas-idtoken", 2, "-", "ends in the middle of a record",
     "a capture cut off in its first token", dump([token()])[:300])
case("idtoken-raw-jwt.txt", "ltiaas-idtoken", "--format ltiaas-idtoken", 1, "-", "expected a JSON object",
     "the LMS's raw id_token (a JWT with two segments) instead of LTIAAS's JSON", JWT + "\n")
case("idtoken-jwt-in-array.json", "ltiaas-idtoken", "--format ltiaas-idtoken", 1, "-", "expected a JSON object",
     "a JSON array of JWT strings", json.dumps([JWT + ".c2ln"]) + "\n")
case("idtoken-launch-string.json", "ltiaas-idtoken", "-", 1, "-", "not an LTIAAS ID token",
     "`launch` is a string, not an object", json.dumps(token(launch="chem-1/titration-lab")) + "\n")

case("idtoken-duplicate-key.json", "ltiaas-idtoken", "-", 1, "-", "names the same key twice",
     "a token naming user.id twice", json.dumps(token()).replace('"id": "lt-user-1"', '"id": "lt-user-1", "id": "lt-user-9"') + "\n")
case("idtoken-context-id-blank.json", "ltiaas-idtoken", "-", 2, "-", "the ID token has no launch.context.id",
     "launch.context.id is only spaces", dump([token(launch__context__id="   ")]))

# --- LMS gradebook exports ---------------------------------------------------------------------------
CANVAS_H = "Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1: Cells (501),Lab report: Osmosis (502)\n"
CANVAS_PP = "    Points Possible,,,,,10,20\n"
case("canvas-not-a-number.csv", "canvas-gradebook", GRADEBOOK, 3, "Quiz 1: Cells (501)", "not a number",
     "a Canvas cell of `nine`", CANVAS_H + CANVAS_PP + '"Lovelace, Ada",9001,S1001,ada,BIO 101 A,nine,\n')
case("canvas-percent-in-points.csv", "canvas-gradebook", GRADEBOOK, 3, "Quiz 1: Cells (501)", "not a number",
     "a percentage (`85%`) in a Canvas points column", CANVAS_H + CANVAS_PP + '"Lovelace, Ada",9001,S1001,ada,BIO 101 A,85%,\n')
case("canvas-points-with-unit.csv", "canvas-gradebook", GRADEBOOK, 4, "Lab report: Osmosis (502)", "not a number",
     "`18 pts` in a Canvas cell (the row before it is blank)",
     CANVAS_H + CANVAS_PP + '"Hopper, Grace",9002,S1002,grace,BIO 101 A,,\n"Lovelace, Ada",9001,S1001,ada,BIO 101 A,9,18 pts\n')
case("canvas-nan.csv", "canvas-gradebook", GRADEBOOK, 3, "Lab report: Osmosis (502)", "not a number",
     "a Canvas cell of `NaN`", CANVAS_H + CANVAS_PP + '"Lovelace, Ada",9001,S1001,ada,BIO 101 A,,NaN\n')
case("canvas-unclosed-quote.csv", "canvas-gradebook", GRADEBOOK, 3, "-", "8 fields where the header has 7",
     "a student name whose closing quote is lost: the next row's opening quote closes it, merging two rows",
     CANVAS_H + CANVAS_PP + '"Lovelace, Ada,9001,S1001,ada,BIO 101 A,9,\n"Hopper, Grace",9002,S1002,grace,BIO 101 A,6,18.5\n')
case("canvas-short-row.csv", "canvas-gradebook", GRADEBOOK, 3, "-", "6 fields where the header has 7",
     "a row that lost its last cell", CANVAS_H + CANVAS_PP + '"Lovelace, Ada",9001,S1001,ada,BIO 101 A,9\n')
case("canvas-no-student-column.csv", "canvas-gradebook", "--format canvas-gradebook " + GRADEBOOK, 1, "-",
     "not a Canvas gradebook", "a gradebook whose Student and ID columns were deleted",
     "SIS User ID,Quiz 1: Cells (501)\nS1001,9\n")
case("canvas-bad-utf8.csv", "canvas-gradebook", GRADEBOOK, 3, "-", "not UTF-8 text",
     "a student name saved as Windows-1252",
     (CANVAS_H + CANVAS_PP).encode() + b'"Lovelace, Ad\xe1",9001,S1001,ada,BIO 101 A,9,\n')
MOODLE_H = '"First name","Last name","ID number","Institution","Department","Email address","Quiz: Quiz 1: Cells (Percentage)"\n'
case("moodle-not-a-number.csv", "moodle-gradebook", GRADEBOOK, 2, "Quiz: Quiz 1: Cells (Percentage)", "not a number",
     "a Moodle percentage of `ninety %`", MOODLE_H + '"Ada","Lovelace","S1001","Example U","Biology","ada@example.edu","ninety %"\n')
case("moodle-percent-in-real.csv", "moodle-gradebook", GRADEBOOK, 2, "Quiz: Quiz 1: Cells (Real)", "not a number",
     "a percentage in a Moodle column of points (Real)",
     MOODLE_H.replace("(Percentage)", "(Real)") + '"Ada","Lovelace","S1001","Example U","Biology","ada@example.edu","90.00 %"\n')
case("moodle-infinite.csv", "moodle-gradebook", GRADEBOOK, 2, "Quiz: Quiz 1: Cells (Percentage)", "not a number",
     "a Moodle percentage too large for a double", MOODLE_H + '"Ada","Lovelace","S1001","Example U","Biology","ada@example.edu","1e999 %"\n')
case("moodle-truncated.csv", "moodle-gradebook", GRADEBOOK, 2, "-", "6 fields where the header has 7",
     "a Moodle export cut off before the grade cell", MOODLE_H + '"Ada","Lovelace","S1001","Example U","Biology","ada@example.edu"')
case("moodle-semicolon-mix.csv", "moodle-gradebook", GRADEBOOK, 3, "-", "1 field where the header has 7",
     "a Moodle export re-saved with semicolons in its second row",
     MOODLE_H + '"Grace","Hopper","","Example U","Biology","grace@example.edu","-"\n'
     '"Ada";"Lovelace";"S1001";"Example U";"Biology";"ada@example.edu";"90 %"\n')
case("moodle-excel-crlf.csv", "moodle-gradebook", GRADEBOOK, 3, "Quiz: Quiz 1: Cells (Percentage)", "not a number",
     "re-saved by Excel (BOM, CRLF) with a cell of `#VALUE!` on line 3",
     ("\ufeff" + MOODLE_H + '"Grace","Hopper","","Example U","Biology","grace@example.edu","-"\n'
      '"Ada","Lovelace","S1001","Example U","Biology","ada@example.edu","#VALUE!"\n').replace("\n", "\r\n"))
case("moodle-bad-utf8.csv", "moodle-gradebook", GRADEBOOK, 2, "-", "not UTF-8 text",
     "a department saved as Windows-1252",
     MOODLE_H.encode() + b'"Ada","Lovelace","S1001","Example U","Biolog\xeda","ada@example.edu","90.00 %"\n')
case("moodle-header-bad-utf8.csv", "moodle-gradebook", GRADEBOOK, 1, "-", "the header row cannot be read",
     "a header saved as Windows-1252",
     MOODLE_H.replace("Institution", "Institu\u00e7\u00e3o").encode("cp1252")
     + b'"Ada","Lovelace","S1001","Example U","Biology","ada@example.edu","90.00 %"\n')


# Not corpus files.
KEPT = ("make_malformed.py", "README.md", "manifest.tsv", ".gitattributes")


def main():
    for old in os.listdir(HERE):
        if old not in KEPT and os.path.isfile(os.path.join(HERE, old)):
            os.remove(os.path.join(HERE, old))
    names = set()
    for c in CASES:
        assert c["name"] not in names, c["name"]
        names.add(c["name"])
        assert "\t" not in c["reason"] + c["what"] + c["args"]
        with open(os.path.join(HERE, c["name"]), "wb") as f:
            f.write(c["data"])
    with open(os.path.join(HERE, ".gitattributes"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# The damage is in the bytes (CR, CRLF, encodings): never convert them.\n* -text\n")
    with open(os.path.join(HERE, "manifest.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# Written by make_malformed.py. file, format, import arguments (- for none), line and column\n")
        f.write("# (- for none) of the first rejected record, a substring of its reason, what is wrong.\n")
        f.write("file\tformat\targs\tline\tcolumn\treason\twhat\n")
        for c in CASES:
            f.write("\t".join([c["name"], c["format"], c["args"], str(c["line"]), c["column"], c["reason"], c["what"]]) + "\n")
    by_format = {}
    for c in CASES:
        by_format[c["format"]] = by_format.get(c["format"], 0) + 1
    with open(os.path.join(HERE, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(README_HEAD)
        f.write("| format | files |\n|---|---|\n")
        for fmt, n in by_format.items():
            f.write(f"| `{fmt}` | {n} |\n")
        f.write(f"| all | {len(CASES)} |\n\n")
        f.write("| file | format | import arguments | line | column | reason (substring) | what is wrong |\n")
        f.write("|---|---|---|---|---|---|---|\n")
        for c in CASES:
            md = lambda s: s.replace("|", "\\|")
            f.write(f"| `{c['name']}` | {c['format']} | {'`' + c['args'] + '`' if c['args'] != '-' else ''} | "
                    f"{c['line']} | {'' if c['column'] == '-' else md(c['column'])} | {md(c['reason'])} | {md(c['what'])} |\n")
    print(f"{len(CASES)} malformed files written to", HERE)


README_HEAD = """# Malformed-input corpus

Files every importer must refuse: each yields a `file:line` reason that names the problem
(never quoting the record) and leaves the ledger's data as it was, apart from the import
batch's own record (the batch and its rejected rows). `tests/integration/malformed.rs` imports
every file through the `passback` CLI (`import --json`, once as is and once with `--strict`)
into a ledger that already holds the fixtures of `tests/fixtures/import`, and compares a
logical dump of every table (`Store::logical_dump`) before and after.

Everything here is written by `make_malformed.py` (run it after changing a case): the files,
`manifest.tsv` (what the test reads: file, format, import arguments, the line and column of the
first rejected record, a substring of its reason) and the table below. `PROXY_SECRET` is set to
the fixtures' proxy-tool secret when the files are imported. Some files begin with good records
copied from the fixtures: the ledger holds them already, so they change nothing.

What the corpus pins down, beyond each format's own checks:

- Line numbers are physical lines, whatever ends them (LF, CRLF, a lone CR) and however many
  empty lines come before a record; a record that spans lines is reported where it starts.
- A CSV row with more or fewer fields than the header (cut off, a separator in an unquoted
  value, another separator) is unreadable, and so is a quoted value that is never closed
  (which would otherwise swallow the rest of the file into one field). A header naming a
  column twice refuses the file.
- A JSON object naming a key twice is not valid JSON here (which of two `user_id`s counts?).
- An identifier (context, resource link, user, sourcedid, Open edX keys) with a control
  character in it is refused.
- A grade dated more than a day in the future is refused (it would keep every later grade of
  its learner and activity out), and so is an Open edX log line whose date is not one.
- A gradebook cell that is not a number rejects its row (`--strict`: the file); `%` counts only
  in a Percentage column.
- A byte that is not UTF-8 is reported on its line, not as "cannot tell what this file is".
  A refusal before the first record (a header without a required column) names line 1.

"""

if __name__ == "__main__":
    main()
