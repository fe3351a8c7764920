#!/usr/bin/env python3
"""Baseline for `passback sync`: grade passback as Open edX's lti_provider does it, one
replaceResult at a time, each a fresh `requests.post` (a new connection per grade), signed
with oauthlib (HMAC-SHA1, Authorization header, oauth_body_hash). One write per grade, no
read first, nothing journaled; each answer must carry codeMajor success.

Usage: edx_sequential_sync.py OUTCOME_URL CONSUMER_KEY N   (the consumer secret on stdin)

Sends grades 0..N-1 with the values benches/sync_bench.sh imports: sourcedid sid-{i},
score ((i * 7) % 11) / 10. Prints one JSON object: grades, wall_s and cpu_s of the send
loop alone (interpreter start and imports excluded), per_grade_ms.

Open edX adds the body hash itself (a `BodyHashClient` subclass); oauthlib 3.x already adds
`oauth_body_hash` for any body that is not form-encoded, so the plain Client is used and the
parameter is checked to be there once (adding it again would sign it twice).
"""
import json
import sys
import time
import uuid
from xml.sax.saxutils import escape

import requests
from oauthlib.oauth1 import SIGNATURE_HMAC, SIGNATURE_TYPE_AUTH_HEADER, Client

TEMPLATE = (
    '<?xml version="1.0" encoding="UTF-8"?><imsx_POXEnvelopeRequest '
    'xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"><imsx_POXHeader>'
    "<imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier>{mid}"
    "</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader><imsx_POXBody>"
    "<replaceResultRequest><resultRecord><sourcedGUID><sourcedId>{sid}</sourcedId></sourcedGUID>"
    "<result><resultScore><language>en</language><textString>{score}</textString></resultScore>"
    "</result></resultRecord></replaceResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"
)
HEADERS = {"Content-Type": "application/xml"}


def send_replace_result(client, url, sourcedid, score):
    body = TEMPLATE.format(mid=uuid.uuid4(), sid=escape(sourcedid), score=score)
    signed_url, headers, signed_body = client.sign(url, "POST", body, HEADERS)
    resp = requests.post(signed_url, data=signed_body.encode("utf-8"), headers=headers, timeout=30)
    if resp.status_code != 200 or "<imsx_codeMajor>success</imsx_codeMajor>" not in resp.text:
        sys.exit(f"{sourcedid}: HTTP {resp.status_code}: {resp.text[:500]}")
    return headers


def main():
    url, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    secret = sys.stdin.read().strip()
    client = Client(key, client_secret=secret, signature_method=SIGNATURE_HMAC,
                    signature_type=SIGNATURE_TYPE_AUTH_HEADER)
    grades = [(f"sid-{i}", ((i * 7) % 11) / 10) for i in range(n)]
    w0, c0 = time.perf_counter(), time.process_time()
    for i, (sourcedid, score) in enumerate(grades):
        headers = send_replace_result(client, url, sourcedid, score)
        if i == 0:
            assert headers["Authorization"].count("oauth_body_hash") == 1, headers
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(json.dumps({"grades": n, "wall_s": wall, "cpu_s": cpu, "per_grade_ms": wall / n * 1e3}))


if __name__ == "__main__":
    main()
