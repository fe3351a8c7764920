#!/usr/bin/env python3
"""Write the seed inputs of every fuzz corpus (fuzz/corpus/<target>/seed-*).

The import targets start from the import fixtures (tests/fixtures/import/); the protocol
targets from the LMS answers and requests the unit tests and the sandbox LMS use
(src/lti11/pox/tests.rs, src/lti11/oauth/tests.rs, src/ltiaas/classify.rs,
crates/passback-sandbox/src/ltiaas.rs). Fuzzing adds to the corpora; `cargo fuzz cmin`
keeps them small; running this again puts the seeds back. Idempotent.
"""

import base64
import hashlib
import hmac
import pathlib
import struct
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "import"
CORPUS = ROOT / "fuzz" / "corpus"


def fixture(name):
    return (FIXTURES / name).read_bytes()


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


IMPORTS = {
    "import_tool_csv": ["tool-grades.csv", "tool-grades-bad.csv", "tool-grades-semicolon.csv", "tool-grades-utf16.csv"],
    "import_edx_log": ["edx-tracking.log"],
    "import_edx_dump": ["edx-lti-provider.json", "edx-gradedassignment.csv", "edx-ltiuser.csv"],
    "import_caliper": ["caliper-events.json", "caliper-events.ndjson", "caliper-truncated.json"],
    "import_launches": ["launches.txt", "launches.json"],
    "import_proxy": ["proxy-requests.txt", "proxy-requests-sha1.json"],
    "import_idtoken": ["ltiaas-idtokens.json"],
    "import_gradebook": ["2026-11-20T1010_Grades-BIO_101.csv", "moodle-grades.csv"],
}

for target, names in IMPORTS.items():
    for n in names:
        write(target, n, fixture(n))
        write("import_detect", n, fixture(n))
for n in ["caliper-events.json", "caliper-events.ndjson", "caliper-truncated.json", "launches.json",
          "edx-lti-provider.json", "ltiaas-idtokens.json", "tool-grades-utf16.csv"]:
    write("text_json", n, fixture(n))
write("text_json", "times", "2026-11-20 10:00:00,123")
write("text_json", "number", "1.234,5")

# --- POX answers (src/lti11/pox/tests.rs and what Canvas, Moodle and Sakai send) -------------
NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"


def envelope(major, description="", ref="999999123", op_ref="replaceResult", body="<replaceResultResponse/>", extra=""):
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<imsx_POXEnvelopeResponse xmlns="{NS}"><imsx_POXHeader>'
        f"<imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier>1739208446"
        f"</imsx_messageIdentifier><imsx_statusInfo><imsx_codeMajor>{major}</imsx_codeMajor><imsx_severity>status"
        f"</imsx_severity><imsx_description>{description}</imsx_description><imsx_messageRefIdentifier>{ref}"
        f"</imsx_messageRefIdentifier><imsx_operationRefIdentifier>{op_ref}</imsx_operationRefIdentifier>{extra}"
        f"</imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody>{body}</imsx_POXBody>"
        f"</imsx_POXEnvelopeResponse>"
    )


READ = "<readResultResponse><result><resultScore><language>en</language><textString>0.92</textString></resultScore></result></readResultResponse>"
POX = {
    "canvas-success": envelope("success"),
    "canvas-failure": envelope("failure", "User is no longer in course", extra="<ext_canvas_error_code>user_not_in_course</ext_canvas_error_code>"),
    "canvas-read": envelope("success", "", op_ref="readResult", body=READ),
    "read-empty": envelope("success", "", op_ref="readResult", body="<readResultResponse><result><resultScore><language>en</language><textString/></resultScore></result></readResultResponse>"),
    "moodle-failure": envelope("failure", "Message signature not valid", op_ref="replaceResultRequest"),
    "sakai-code-minor": envelope("failure", "Unable to update grade: Grade out of range", extra=(
        "<imsx_codeMinor><imsx_codeMinorField><imsx_codeMinorFieldName>TargetEndSystem</imsx_codeMinorFieldName>"
        "<imsx_codeMinorFieldValue>invaliddata</imsx_codeMinorFieldValue></imsx_codeMinorField></imsx_codeMinor>")),
    "unsupported": envelope("unsupported", "Request could not be handled. &#175;\\_(&#x30c4;)_/&#175;", body=""),
    "prefixed": "\ufeff<?xml version=\"1.0\"?><x:imsx_POXEnvelopeResponse xmlns:x=\"" + NS + "\"><x:imsx_POXHeader><x:imsx_POXResponseHeaderInfo><x:imsx_statusInfo><x:imsx_codeMajor> Processing </x:imsx_codeMajor></x:imsx_statusInfo></x:imsx_POXResponseHeaderInfo></x:imsx_POXHeader><x:imsx_POXBody><x:replaceResultResponse/></x:imsx_POXBody></x:imsx_POXEnvelopeResponse>",
    "moodle-notice": "<br />\n<b>Notice</b>:  Undefined index: foo in <b>/var/www/moodle/mod/lti/service.php</b> on line <b>42</b><br />\n" + envelope("success"),
    "doctype": "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]><imsx_POXEnvelopeResponse><imsx_codeMajor>&e;</imsx_codeMajor></imsx_POXEnvelopeResponse>",
    "html": "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Log in</body></html>",
    "canvas-401-json": "{\"errors\":[{\"message\":\"Invalid access token.\"}]}",
    "rate-limit": "403 Forbidden (Rate Limit Exceeded)",
    "cdata": envelope("failure", "<![CDATA[a < b & c]]> &amp; &lt;done&gt;"),
}
for name, body in POX.items():
    write("pox_response", name, body)

# --- OAuth: headers, and signed requests (the signer's layout, RFC 5849) ---------------------


def enc(s):
    return urllib.parse.quote(s, safe="-._~")


def signed_header(method, url, body, key, secret, nonce, ts, extra_params=()):
    parts = urllib.parse.urlsplit(url)
    base_uri = f"{parts.scheme}://{parts.netloc.lower()}{parts.path or '/'}"
    oauth = [
        ("oauth_body_hash", base64.b64encode(hashlib.sha1(body).digest()).decode()),
        ("oauth_consumer_key", key),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", str(ts)),
        ("oauth_version", "1.0"),
    ]
    params = oauth + urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(extra_params)
    norm = "&".join(f"{n}={v}" for n, v in sorted((enc(n), enc(v)) for n, v in params))
    base = "&".join([method.upper(), enc(base_uri), enc(norm)])
    sig = base64.b64encode(hmac.new(f"{enc(secret)}&".encode(), base.encode(), hashlib.sha1).digest()).decode()
    header = [("oauth_body_hash", oauth[0][1]), ("oauth_consumer_key", key), ("oauth_nonce", nonce),
              ("oauth_signature", sig)] + oauth[3:]
    return "OAuth realm=\"\"," + ",".join(f'{enc(n)}="{enc(v)}"' for n, v in header)


BODY = envelope("success").encode()
URL = "https://lms.example.edu/api/lti/v1/tools/7/grade_passback?a=1&b=two+words"
H = signed_header("POST", URL, BODY, "fuzz-key", "fuzz-secret", "n-1", 1795170600)
write("oauth_header", "signed", H)
write("oauth_header", "rfc5849", 'OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_signature_method="HMAC-SHA1", '
      'oauth_timestamp="137131200", oauth_nonce="wIjqoS", oauth_callback="http%3A%2F%2Fprinter.example.com%2Fready", '
      'oauth_signature="74KNZJeDHnMBp0EMJ9ZHt%2FXKycU%3D"')
write("oauth_header", "loose", "oauth   realm=\"\"\r\n oauth_nonce=\"a%20b%2bc\" oauth_version=1.0")
write("oauth_verify", "signed", b"POST\n" + URL.encode() + b"\n" + H.encode() + b"\n" + BODY)
write("oauth_verify", "tampered-body", b"POST\n" + URL.encode() + b"\n" + H.encode() + b"\n" + BODY + b" ")
LAUNCH = {"user_id": "u-ada", "context_id": "bio-101", "resource_link_id": "quiz-1", "roles": "Learner"}
write("oauth_verify", "form", urllib.parse.urlencode(LAUNCH).encode() + b"\nn-launch-1\n" + struct.pack(">Q", 1795170600))
write("oauth_verify", "structured", b"\x00\x00\x00\x00\x00\x6a\xff\x2b\x28n-2\napi/lti/v1/tools/7/grade_passback?x=y\n\x05" + BODY)

# --- The proxy-tool MAC: a digest byte, the secret line, a request --------------------------
for i, line in enumerate(fixture("proxy-requests.txt").decode().splitlines()):
    body = line.split(" ", 1)[-1]
    if "mac=" in body:
        write("proxy_mac", f"request-{i}", b"\x00proxy-shared-secret\n" + body.encode())
write("proxy_mac", "sha1", b"\x01s3cret\nuserid=_1_1&timestamp=1608831491&course_id=bio-101&mac=x")

# --- LTIAAS answers: status, flags, Retry-After, X-Rate-Limit-Remaining, Location, body ------


def ltiaas(status, body, flags=0, retry="", remaining="", location=""):
    return struct.pack(">HB", status, flags) + f"{retry}\n{remaining}\n{location}\n".encode() + body.encode()


LTIAAS = {
    "invalid-ltik": ltiaas(401, '{"status":401,"error":"Unauthorized","details":{"message":"INVALID_LTIK_AUTH_AUTHORIZATION_HEADER","description":"Invalid or expired ltik."}}'),
    "stale-service-key": ltiaas(401, '{"status":401,"error":"Unauthorized","details":{"message":"INVALID_SERVICE_KEY_AUTH_AUTHORIZATION_HEADER","description":"Invalid or expired service key."}}', flags=1),
    "not-a-student": ltiaas(422, '{"status":422,"error":"Unprocessable Entity","details":{"bodyReceived":{"errors":{"type":"unprocessable_entity","message":"User not found in course or is not a student"}},"externalError":true}}'),
    "concluded": ltiaas(500, '{"status":500,"details":{"bodyReceived":"{\\"errors\\":[{\\"message\\":\\"This course has concluded.\\"}]}","externalError":"true"}}', retry="120"),
    "inactive-service": ltiaas(400, '{"status":400,"error":"Bad Request","details":{"errors":["INACTIVE_SERVICE", {"message":"x"}]}}'),
    "rate-limited": ltiaas(403, '{"status":403,"details":{"bodyReceived":"403 Forbidden (Rate Limit Exceeded)","externalError":true}}', remaining="0"),
    "too-many": ltiaas(429, '{"status":429,"error":"Too Many Requests"}', retry="Fri, 20 Nov 2026 10:01:00 GMT"),
    "html-404": ltiaas(404, "<html><body>Not Found</body></html>"),
    "redirect": ltiaas(302, "", location="https://login.example.edu/"),
    "score-ok": ltiaas(200, '{"userId":"u-ada","scoreGiven":9,"scoreMaximum":10}'),
    "broken-json": ltiaas(200, '{"lineItems": [{"id": '),
    "timestamp": ltiaas(400, '{"errors":{"type":"bad_request","message":"Provided timestamp of 2026-11-20T10:00:00Z before last updated timestamp of 2026-11-20T11:00:00Z"}}'),
}
for name, data in LTIAAS.items():
    write("ltiaas_classify", name, data)
