//! Known-answer vectors and properties of the OAuth 1.0a signer and verifier.
use super::*;
use proptest::prelude::*;

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("test URL parses")
}

/// The exact 590-byte body of reference §1.8 vector 5 (appendix).
const VECTOR5_BODY: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><imsx_POXEnvelopeRequest xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">"#,
    "<imsx_POXHeader><imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version>",
    "<imsx_messageIdentifier>999999123</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader>",
    "<imsx_POXBody><replaceResultRequest><resultRecord><sourcedGUID><sourcedId>3124567</sourcedId></sourcedGUID>",
    "<result><resultScore><language>en</language><textString>0.92</textString></resultScore></result>",
    "</resultRecord></replaceResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"
);

// ---- Known-answer tests: reference §1.8 ------------------------------------------

#[test]
fn vector1_oauth_core_a5() {
    let params = owned(&[
        ("file", "vacation.jpg"),
        ("size", "original"),
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_token", "nnch734d00sl2jdk"),
        ("oauth_nonce", "kllo9940pd9333jh"),
        ("oauth_timestamp", "1191242096"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_version", "1.0"),
    ]);
    let uri = normalize_base_uri("http://photos.example.net/photos").unwrap();
    let base = base_string("GET", &uri, &params);
    assert_eq!(
        base,
        "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
    );
    let sig = sign(
        SignatureMethod::HmacSha1,
        "kd94hf93k423kf44",
        "pfkkdhi9sl3r4s00",
        &base,
    );
    assert_eq!(sig, "tR3+Ty81lMeYAr/Fid0kMTYa/WM=");
}

#[test]
fn vector2_rfc5849_example_with_erratum_2550() {
    let u = url("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b");
    let mut params = query_params(&u);
    params.extend(form_params(b"c2&a3=2+q"));
    params.extend(owned(&[
        ("oauth_consumer_key", "9djdj82h48djs9d2"),
        ("oauth_token", "kkk9d7dh3k39sjv7"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131201"),
        ("oauth_nonce", "7d8f3e4a"),
    ]));
    let base = base_string("POST", &base_uri(&u).unwrap(), &params);
    assert_eq!(
        base,
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
    );
    let sig = sign(SignatureMethod::HmacSha1, "j49sk3j29djd", "dh893hdasih9", &base);
    assert_eq!(sig, "r6/TJjbCOr97/+UU0NsvSne7s5g=");
    assert_ne!(
        sig, "bYT5CMsGcbgUdFHObYMEfcx6bsw=",
        "the RFC's printed value is wrong (erratum 2550)"
    );
    // The same base string from the raw-string path.
    let raw_uri = normalize_base_uri("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
    assert_eq!(base_string("POST", &raw_uri, &params), base);
}

#[test]
fn vector3_ims_lti_launch_with_duplicate_query_keys() {
    let u = url("http://www.imsglobal.org/developers/LTI/test/v1p1/tool.php?foo=123&foo=bar");
    let mut params = query_params(&u);
    assert_eq!(params, owned(&[("foo", "123"), ("foo", "bar")]));
    params.extend(owned(&[
            ("resource_link_id", "rsc1"),
            ("oauth_callback", "about:blank"),
            (
                "lis_outcome_service_url",
                "http://www.imsglobal.org/developers/LTI/test/v1p1/common/tool_consumer_outcome.php?b64=MTIzNDU6OjpzZWNyZXQ=",
            ),
            ("lis_result_sourcedid", "feb-123-456-2929::28883"),
            ("launch_presentation_return_url", "http://www.imsglobal.org/developers/LTI/test/v1p1/lms_return.php"),
            ("lti_version", "LTI-1p0"),
            ("lti_message_type", "basic-lti-launch-request"),
            ("oauth_version", "1.0"),
            ("oauth_nonce", "7ee33f6dc94117e792ff529898ce3953"),
            ("oauth_timestamp", "1397708483"),
            ("oauth_consumer_key", "12345"),
            ("oauth_signature_method", "HMAC-SHA1"),
        ]));
    let base = base_string("POST", &base_uri(&u).unwrap(), &params);
    assert!(
        base.contains("foo%3D123%26foo%3Dbar"),
        "duplicate keys sorted by value: {base}"
    );
    assert_eq!(
        sign(SignatureMethod::HmacSha1, "secret", "", &base),
        "dHORwwJqwh5hQQAlvaA9csSIOhc="
    );
}

#[test]
fn vector4_body_hashes() {
    assert_eq!(
        body_hash(SignatureMethod::HmacSha1, b"Hello World!"),
        "Lve95gjOVATpfV8EL5X4nxwjKHE="
    );
    assert_eq!(
        body_hash(SignatureMethod::HmacSha1, b""),
        "2jmj7l5rSw0yVb/vlWAYkK/YBwk="
    );
    // SHA-256 of the empty string, base64.
    assert_eq!(
        body_hash(SignatureMethod::HmacSha256, b""),
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}

#[test]
fn vector5_pox_replace_result() {
    assert_eq!(VECTOR5_BODY.len(), 590);
    let u = url("https://lms.example.com:443/api/lti/v1/tools/1/grade_passback?x=1&a=b%20c");
    let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
    let signed = signer
        .sign_request("POST", &u, VECTOR5_BODY.as_bytes(), "nonce123", 1_700_000_000)
        .unwrap();
    assert_eq!(signed.body_hash, "T4+NuWGBvKwDMzCJE00B3/XnWYk=");
    assert_eq!(
        signed.base_string,
        "POST&https%3A%2F%2Flms.example.com%2Fapi%2Flti%2Fv1%2Ftools%2F1%2Fgrade_passback&a%3Db%2520c%26oauth_body_hash%3DT4%252BNuWGBvKwDMzCJE00B3%252FXnWYk%253D%26oauth_consumer_key%3Dkey%26oauth_nonce%3Dnonce123%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1700000000%26oauth_version%3D1.0%26x%3D1"
    );
    let sig = signed
        .params
        .iter()
        .find(|(k, _)| k == "oauth_signature")
        .map(|(_, v)| v.as_str());
    assert_eq!(sig, Some("Wqzvi7xiAX8WglnexGrRipGr2fc="));
    assert_eq!(
        signed.authorization,
        "OAuth realm=\"\",oauth_body_hash=\"T4%2BNuWGBvKwDMzCJE00B3%2FXnWYk%3D\",oauth_consumer_key=\"key\",\
             oauth_nonce=\"nonce123\",oauth_signature=\"Wqzvi7xiAX8WglnexGrRipGr2fc%3D\",\
             oauth_signature_method=\"HMAC-SHA1\",oauth_timestamp=\"1700000000\",oauth_version=\"1.0\""
    );
    // The low-level path and the raw-string URI normalization agree with the signer.
    let raw_uri =
        normalize_base_uri("https://lms.example.com:443/api/lti/v1/tools/1/grade_passback?x=1&a=b%20c")
            .unwrap();
    assert_eq!(
        raw_uri,
        "https://lms.example.com/api/lti/v1/tools/1/grade_passback"
    );
}

// ---- Building blocks ---------------------------------------------------------------

#[test]
fn percent_encode_uses_unreserved_set_only() {
    assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
    assert_eq!(
        percent_encode(" !*'()+=&/:%"),
        "%20%21%2A%27%28%29%2B%3D%26%2F%3A%25"
    );
    assert_eq!(percent_encode("é日"), "%C3%A9%E6%97%A5");
    assert_eq!(percent_encode(""), "");
}

#[test]
fn normalize_base_uri_rules() {
    let cases = [
        (
            "HTTP://Example.COM:80/r%20v/X?id=123",
            "http://example.com/r%20v/X",
        ),
        ("https://EXAMPLE.com:443", "https://example.com/"),
        (
            "https://example.com:8443/a/b/?q#frag",
            "https://example.com:8443/a/b/",
        ),
        ("http://example.com:443/", "http://example.com:443/"),
        ("https://example.com:80/", "https://example.com:80/"),
        ("http://user:pw@Example.com/p", "http://example.com/p"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("http://example.com:/x", "http://example.com/x"),
        ("http://example.com#frag", "http://example.com/"),
        (
            "http://example.com/A/./b/../%7e",
            "http://example.com/A/./b/../%7e",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(normalize_base_uri(input).as_deref(), Ok(expected), "{input}");
    }
    assert!(matches!(
        normalize_base_uri("ftp://example.com/"),
        Err(OAuthError::UnsupportedScheme(_))
    ));
    assert!(matches!(
        normalize_base_uri("example.com/path"),
        Err(OAuthError::InvalidUrl(_))
    ));
    assert!(matches!(
        normalize_base_uri("http:///path"),
        Err(OAuthError::InvalidUrl(_))
    ));
    assert!(matches!(
        normalize_base_uri("http://h:99999/"),
        Err(OAuthError::InvalidUrl(_))
    ));
    assert!(matches!(
        normalize_base_uri("http://h:8x/"),
        Err(OAuthError::InvalidUrl(_))
    ));
    assert!(matches!(
        normalize_base_uri("http://[::1/"),
        Err(OAuthError::InvalidUrl(_))
    ));
}

#[test]
fn base_uri_from_url_matches_wire_form() {
    let u = url("HTTPS://Lms.Example.COM:443/caf\u{e9} x/%7e?q=1");
    assert_eq!(u.as_str(), "https://lms.example.com/caf%C3%A9%20x/%7e?q=1");
    assert_eq!(base_uri(&u).unwrap(), "https://lms.example.com/caf%C3%A9%20x/%7e");
    assert_eq!(
        base_uri(&url("http://h.example:8080")).unwrap(),
        "http://h.example:8080/"
    );
    assert!(matches!(
        base_uri(&url("mailto:a@b.c")),
        Err(OAuthError::UnsupportedScheme(_))
    ));
    assert!(matches!(
        base_uri(&url("file:///etc/passwd")),
        Err(OAuthError::UnsupportedScheme(_))
    ));
}

#[test]
fn base_string_excludes_signature_and_realm_and_uppercases_method() {
    let params = owned(&[("b", "2"), ("oauth_signature", "x"), ("realm", "r"), ("a", "1")]);
    assert_eq!(
        base_string("post", "http://h/", &params),
        "POST&http%3A%2F%2Fh%2F&a%3D1%26b%3D2"
    );
}

#[test]
fn base_string_sorts_by_encoded_name_then_value() {
    // Names compare as encoded strings ("a" < "a%20b" < "ab"); encoded values break ties.
    let params = owned(&[
        ("ab", "1"),
        ("a b", "2"),
        ("a", "z"),
        ("a", "Z"),
        ("a", "10"),
        ("a", "9"),
    ]);
    assert_eq!(
        base_string("GET", "http://h/", &params),
        format!(
            "GET&http%3A%2F%2Fh%2F&{}",
            percent_encode("a=10&a=9&a=Z&a=z&a%20b=2&ab=1")
        )
    );
}

#[test]
fn hmac_sha256_variant_differs_and_verifies() {
    let u = url("https://lms.example.com/outcomes");
    let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha256);
    let signed = signer.sign_request("POST", &u, b"<x/>", "n", 1).unwrap();
    assert_eq!(signed.body_hash, body_hash(SignatureMethod::HmacSha256, b"<x/>"));
    assert!(
        signed
            .authorization
            .contains("oauth_signature_method=\"HMAC-SHA256\"")
    );
    let sig = &signed
        .params
        .iter()
        .find(|(k, _)| k == "oauth_signature")
        .unwrap()
        .1;
    assert_eq!(BASE64.decode(sig).unwrap().len(), 32);
    let params = parse_authorization_header(&signed.authorization).unwrap();
    let verified = verify_request("POST", &u, &params, b"<x/>", |_| Some("secret".into())).unwrap();
    assert_eq!(verified.signature_method, SignatureMethod::HmacSha256);
}

#[test]
fn signer_debug_hides_secret() {
    let signer = OAuthSigner::new("my-key", "top-secret-value", SignatureMethod::HmacSha1);
    let debug = format!("{signer:?}");
    assert!(debug.contains("my-key"));
    assert!(debug.contains("***"));
    assert!(!debug.contains("top-secret-value"));
}

#[test]
fn sign_now_uses_fresh_nonce_and_current_time() {
    let u = url("https://lms.example.com/outcomes");
    let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
    let before = unix_now();
    let a = signer.sign_now("POST", &u, b"body").unwrap();
    let b = signer.sign_now("POST", &u, b"body").unwrap();
    let after = unix_now();
    let get = |s: &SignedRequest, k: &str| s.params.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let nonce = get(&a, "oauth_nonce");
    assert_eq!(nonce.len(), 32);
    assert!(nonce.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(nonce, get(&b, "oauth_nonce"));
    assert_ne!(get(&a, "oauth_signature"), get(&b, "oauth_signature"));
    let ts: u64 = get(&a, "oauth_timestamp").parse().unwrap();
    assert!((before..=after).contains(&ts));
}

#[test]
fn signer_rejects_non_http_url() {
    let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
    assert!(
        signer
            .sign_request("POST", &url("data:text/plain,x"), b"", "n", 1)
            .is_err()
    );
}

#[test]
fn secrets_and_keys_with_reserved_characters() {
    let u = url("https://lms.example.com/outcomes?realm=q");
    let signer = OAuthSigner::new("k&y =\"x\"", "s&c+r%t é", SignatureMethod::HmacSha1);
    let signed = signer.sign_request("POST", &u, b"b", "n,o\"nce", 5).unwrap();
    // A query parameter named realm is signed (only the header realm is excluded).
    assert!(signed.base_string.contains("realm%3Dq"), "{}", signed.base_string);
    let params = parse_authorization_header(&signed.authorization).unwrap();
    assert!(params.contains(&("oauth_consumer_key".to_owned(), "k&y =\"x\"".to_owned())));
    let lookup = |k: &str| (k == "k&y =\"x\"").then(|| "s&c+r%t é".to_owned());
    verify_request("POST", &u, &params, b"b", lookup).unwrap();
}

// ---- Authorization header parsing ----------------------------------------------------

#[test]
fn parse_header_variants() {
    let expected = owned(&[("realm", ""), ("oauth_nonce", "a b+c"), ("oauth_version", "1.0")]);
    for h in [
        "OAuth realm=\"\",oauth_nonce=\"a%20b%2Bc\",oauth_version=\"1.0\"",
        "oauth realm=\"\", oauth_nonce=\"a%20b%2Bc\", oauth_version=\"1.0\"",
        "  OAUTH   realm = \"\" ,\t oauth_nonce=\"a%20b%2Bc\",,oauth_version=1.0 ",
        "OAuth realm=\"\"\r\n oauth_nonce=\"a%20b%2bc\" oauth_version=\"1.0\"",
    ] {
        assert_eq!(parse_authorization_header(h).unwrap(), expected, "{h}");
    }
    assert_eq!(parse_authorization_header("OAuth").unwrap(), vec![]);
    assert_eq!(parse_authorization_header("OAuth   ").unwrap(), vec![]);
}

#[test]
fn parse_header_rejects_malformed() {
    for h in [
        "",
        "Bearer abc",
        "OAuthrealm=\"\"",
        "Basic dXNlcjpwYXNz",
        "OAuth =\"x\"",
        "OAuth oauth_nonce",
        "OAuth oauth_nonce=\"abc",
        "OAuth oauth_nonce=\"a\"b\"",
        "OAuth oauth_nonce=\"%zz\"",
        "OAuth oauth_nonce=\"%4\"",
        "OAuth oauth_nonce=\"%FF%FE\"",
        "OAuth oauth_nonce=a\"b",
    ] {
        assert!(
            matches!(parse_authorization_header(h), Err(OAuthError::MalformedHeader(_))),
            "should reject {h:?}"
        );
    }
}

// ---- Verifier ------------------------------------------------------------------------

fn signed_fixture() -> (Url, Vec<u8>, Vec<(String, String)>) {
    let u = url("https://lms.example.com/api/lti/v1/tools/1/grade_passback?x=1&a=b%20c");
    let body = VECTOR5_BODY.as_bytes().to_vec();
    let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
    let signed = signer
        .sign_request("POST", &u, &body, "nonce123", 1_700_000_000)
        .unwrap();
    (
        u,
        body,
        parse_authorization_header(&signed.authorization).unwrap(),
    )
}

fn secret_lookup(key: &str) -> Option<String> {
    (key == "key").then(|| "secret".to_owned())
}

fn with_param(params: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<_> = params.iter().filter(|(k, _)| k != name).cloned().collect();
    if let Some(v) = value {
        out.push((name.to_owned(), v.to_owned()));
    }
    out
}

#[test]
fn verify_accepts_valid_request() {
    let (u, body, params) = signed_fixture();
    let v = verify_request("POST", &u, &params, &body, secret_lookup).unwrap();
    assert_eq!(
        v,
        VerifiedRequest {
            consumer_key: "key".into(),
            nonce: "nonce123".into(),
            timestamp: 1_700_000_000,
            signature_method: SignatureMethod::HmacSha1,
            body_hash: Some("T4+NuWGBvKwDMzCJE00B3/XnWYk=".into()),
        }
    );
    // Method case does not matter; URL with the explicit default port is equivalent.
    verify_request("post", &u, &params, &body, secret_lookup).unwrap();
    verify_request_raw(
        "POST",
        "https://LMS.example.com:443/api/lti/v1/tools/1/grade_passback?a=b+c&x=1",
        &params,
        &body,
        secret_lookup,
    )
    .unwrap();
}

#[test]
fn verify_reports_each_failure_kind() {
    let (u, body, params) = signed_fixture();
    let run = |p: &[(String, String)], b: &[u8]| verify_request("POST", &u, p, b, secret_lookup);
    for name in [
        "oauth_consumer_key",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_nonce",
        "oauth_signature",
        "oauth_body_hash",
    ] {
        assert_eq!(
            run(&with_param(&params, name, None), &body),
            Err(VerifyError::MissingParameter(name.to_owned()))
        );
    }
    let mut dup = params.clone();
    dup.push(("oauth_nonce".into(), "other".into()));
    assert_eq!(
        run(&dup, &body),
        Err(VerifyError::DuplicateParameter("oauth_nonce".into()))
    );
    assert_eq!(
        run(&with_param(&params, "oauth_version", Some("2.0")), &body),
        Err(VerifyError::BadVersion("2.0".into()))
    );
    assert_eq!(
        run(
            &with_param(&params, "oauth_signature_method", Some("PLAINTEXT")),
            &body
        ),
        Err(VerifyError::UnsupportedSignatureMethod("PLAINTEXT".into()))
    );
    assert!(matches!(
        run(&with_param(&params, "oauth_timestamp", Some("-5")), &body),
        Err(VerifyError::MalformedParameter { .. })
    ));
    assert!(matches!(
        run(
            &with_param(&params, "oauth_timestamp", Some("99999999999999999999999")),
            &body
        ),
        Err(VerifyError::MalformedParameter { .. })
    ));
    assert_eq!(
        run(&with_param(&params, "oauth_consumer_key", Some("nobody")), &body),
        Err(VerifyError::UnknownConsumer("nobody".into()))
    );
    let mut tampered = body.clone();
    tampered[300] ^= 1;
    assert_eq!(run(&params, &tampered), Err(VerifyError::BodyHashMismatch));
    assert_eq!(
        run(
            &with_param(&params, "oauth_signature", Some("not base64!")),
            &body
        ),
        Err(VerifyError::SignatureMismatch)
    );
    assert_eq!(
        verify_request("POST", &u, &params, &body, |_| Some("wrong".into())),
        Err(VerifyError::SignatureMismatch)
    );
    assert_eq!(
        verify_request("PUT", &u, &params, &body, secret_lookup),
        Err(VerifyError::SignatureMismatch)
    );
    // Dropping a signed oauth_version changes the base string.
    assert_eq!(
        run(&with_param(&params, "oauth_version", None), &body),
        Err(VerifyError::SignatureMismatch)
    );
    assert!(matches!(
        verify_request("POST", &url("ftp://h/x"), &params, &body, secret_lookup),
        Err(VerifyError::BadRequestUrl(_))
    ));
}

#[test]
fn verify_accepts_request_without_version_or_realm() {
    let u = url("https://lms.example.com/o");
    let body = b"<x/>";
    let mut params = owned(&[
        ("oauth_body_hash", &body_hash(SignatureMethod::HmacSha1, body)),
        ("oauth_consumer_key", "key"),
        ("oauth_nonce", "n"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "10"),
    ]);
    let base = base_string("POST", &base_uri(&u).unwrap(), &params);
    params.push((
        "oauth_signature".into(),
        sign(SignatureMethod::HmacSha1, "secret", "", &base),
    ));
    verify_request("POST", &u, &params, body, secret_lookup).unwrap();
}

#[test]
fn verify_form_request_vector3() {
    // Vector 3 again, this time through the verifier: the form body is signed.
    let u = url("http://www.imsglobal.org/developers/LTI/test/v1p1/tool.php?foo=123&foo=bar");
    let form = "resource_link_id=rsc1&oauth_callback=about%3Ablank&lis_outcome_service_url=http%3A%2F%2Fwww.imsglobal.org%2Fdevelopers%2FLTI%2Ftest%2Fv1p1%2Fcommon%2Ftool_consumer_outcome.php%3Fb64%3DMTIzNDU6OjpzZWNyZXQ%3D&lis_result_sourcedid=feb-123-456-2929%3A%3A28883&launch_presentation_return_url=http%3A%2F%2Fwww.imsglobal.org%2Fdevelopers%2FLTI%2Ftest%2Fv1p1%2Flms_return.php&lti_version=LTI-1p0&lti_message_type=basic-lti-launch-request";
    let header = "OAuth oauth_version=\"1.0\",oauth_nonce=\"7ee33f6dc94117e792ff529898ce3953\",oauth_timestamp=\"1397708483\",oauth_consumer_key=\"12345\",oauth_signature_method=\"HMAC-SHA1\",oauth_signature=\"dHORwwJqwh5hQQAlvaA9csSIOhc%3D\"";
    let params = parse_authorization_header(header).unwrap();
    let lookup = |k: &str| (k == "12345").then(|| "secret".to_owned());
    let v = verify_form_request("POST", &u, &params, form.as_bytes(), lookup).unwrap();
    assert_eq!(v.body_hash, None);
    // Without the form parameters (opaque body) the signature cannot match.
    assert_eq!(
        verify_request("POST", &u, &params, form.as_bytes(), lookup),
        Err(VerifyError::MissingParameter("oauth_body_hash".into()))
    );
    let tampered = form.replace("rsc1", "rsc2");
    assert_eq!(
        verify_form_request("POST", &u, &params, tampered.as_bytes(), lookup),
        Err(VerifyError::SignatureMismatch)
    );
}

// ---- Nonce cache ---------------------------------------------------------------------

#[test]
fn nonce_cache_window_and_replay() {
    let mut cache = NonceCache::default();
    assert_eq!(cache.window(), Duration::from_secs(5400));
    let now = 1_700_000_000;
    cache.check_and_insert("key", "n1", now, now).unwrap();
    assert_eq!(
        cache.check_and_insert("key", "n1", now, now + 10),
        Err(VerifyError::NonceReplayed)
    );
    // Same nonce for a different consumer is fine.
    cache.check_and_insert("other", "n1", now, now).unwrap();
    // Window edges are inclusive.
    cache.check_and_insert("key", "n2", now - 5400, now).unwrap();
    cache.check_and_insert("key", "n3", now + 5400, now).unwrap();
    assert_eq!(
        cache.check_and_insert("key", "n4", now - 5401, now),
        Err(VerifyError::TimestampOutOfWindow {
            skew_secs: -5401,
            window_secs: 5400
        })
    );
    assert_eq!(
        cache.check_and_insert("key", "n5", now + 7200, now),
        Err(VerifyError::TimestampOutOfWindow {
            skew_secs: 7200,
            window_secs: 5400
        })
    );
    assert_eq!(cache.len(), 4);
    // Once the original timestamp leaves the window, the replay is a window error and
    // the entry is purged.
    let later = now + 5401;
    assert!(matches!(
        cache.check_and_insert("key", "n1", now, later),
        Err(VerifyError::TimestampOutOfWindow { .. })
    ));
    cache.check_and_insert("key", "fresh", later, later).unwrap();
    assert_eq!(cache.len(), 2, "expired entries purged");
    assert!(!cache.is_empty());
}

#[test]
fn nonce_cache_extreme_values_do_not_overflow() {
    let mut cache = NonceCache::new(Duration::from_secs(60));
    assert!(matches!(
        cache.check_and_insert("k", "n", u64::MAX, 0),
        Err(VerifyError::TimestampOutOfWindow {
            skew_secs: i64::MAX,
            ..
        })
    ));
    assert!(matches!(
        cache.check_and_insert("k", "n", 0, u64::MAX),
        Err(VerifyError::TimestampOutOfWindow {
            skew_secs: i64::MIN,
            ..
        })
    ));
    cache.check_and_insert("k", "n", u64::MAX, u64::MAX).unwrap();
    assert_eq!(
        cache.check_and_insert("k", "n", u64::MAX, u64::MAX),
        Err(VerifyError::NonceReplayed)
    );
}

#[test]
fn verify_error_messages_are_human_readable() {
    assert_eq!(
        VerifyError::TimestampOutOfWindow {
            skew_secs: -6000,
            window_secs: 5400
        }
        .to_string(),
        "oauth_timestamp is 6000 seconds behind the server clock (allowed: 5400 seconds either way)"
    );
    assert_eq!(
        VerifyError::TimestampOutOfWindow {
            skew_secs: 6000,
            window_secs: 5400
        }
        .to_string(),
        "oauth_timestamp is 6000 seconds ahead of the server clock (allowed: 5400 seconds either way)"
    );
    assert_eq!(
        VerifyError::MissingParameter("oauth_nonce".into()).to_string(),
        "missing OAuth parameter oauth_nonce"
    );
    assert_eq!(
        VerifyError::SignatureMismatch.to_string(),
        "OAuth signature does not match"
    );
    assert_eq!(
        VerifyError::BodyHashMismatch.to_string(),
        "oauth_body_hash does not match the request body"
    );
    assert_eq!(
        VerifyError::UnknownConsumer("k".into()).to_string(),
        "unknown oauth_consumer_key \"k\""
    );
}

// ---- Property tests ------------------------------------------------------------------

/// A URL built from random parts, kept alongside its decoded query so it can be mutated.
#[derive(Debug, Clone)]
struct UrlParts {
    https: bool,
    host_labels: Vec<String>,
    port: Option<u16>,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    space_as_plus: bool,
}

impl UrlParts {
    fn render(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path: String = self.segments.iter().map(|s| format!("/{s}")).collect();
        let mut s = format!("{scheme}://{}{port}{path}", self.host_labels.join("."));
        if !self.query.is_empty() {
            let enc = |x: &str| {
                if self.space_as_plus {
                    form_urlencoded::byte_serialize(x.as_bytes()).collect::<String>()
                } else {
                    percent_encode(x)
                }
            };
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect();
            s.push('?');
            s.push_str(&q.join("&"));
        }
        s
    }

    fn url(&self) -> Url {
        Url::parse(&self.render()).expect("generated URL parses")
    }
}

fn meaning(u: &Url) -> (String, Vec<(String, String)>) {
    let mut q = query_params(u);
    q.sort();
    (base_uri(u).expect("http(s) URL"), q)
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{0,6}",
        "[ -~]{0,8}",
        proptest::collection::vec(
            prop_oneof![
                Just('é'),
                Just('日'),
                Just('🎓'),
                Just(' '),
                Just('&'),
                Just('='),
                Just('+'),
                Just('%')
            ],
            0..4
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn segment_strategy() -> impl Strategy<Value = String> {
    // Path segments: letters, digits, unicode, spaces and reserved characters that the
    // url crate keeps or percent-encodes. '/', '?', '#', '\\' and '%' are left out so
    // that a segment is one segment; "." and ".." are avoided (they are dot-normalized).
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range('a', 'z'),
            1 => proptest::char::range('A', 'Z'),
            1 => prop_oneof![
                Just('é'), Just('ü'), Just('日'), Just('🎓'), Just(' '), Just(';'), Just('='), Just('@'),
                Just('~'), Just('!'), Just('$'), Just('\''), Just('('), Just('*'), Just('+'), Just(',')
            ],
        ],
        1..6,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn url_strategy() -> impl Strategy<Value = UrlParts> {
    let key = prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("x y".to_owned()),
        text_strategy()
    ];
    (
        any::<bool>(),
        // Labels start with a letter (no all-numeric IPv4-like label, no "xn--" punycode).
        proptest::collection::vec("[a-zA-Z][a-zA-Z0-9]{0,6}(-[a-zA-Z0-9]{1,3})?", 1..4),
        prop_oneof![
            Just(None),
            Just(Some(80u16)),
            Just(Some(443u16)),
            (1u16..=65535).prop_map(Some)
        ],
        proptest::collection::vec(segment_strategy(), 0..4),
        proptest::collection::vec((key, text_strategy()), 0..5),
        any::<bool>(),
    )
        .prop_map(
            |(https, host_labels, port, segments, query, space_as_plus)| UrlParts {
                https,
                host_labels,
                port,
                segments,
                query,
                space_as_plus,
            },
        )
}

fn check(parts: &UrlParts, body: &[u8], params: &[(String, String)]) -> Result<VerifiedRequest, VerifyError> {
    let lookup = |k: &str| (k == "prop-key").then(|| "prop secret &+".to_owned());
    verify_request("POST", &parts.url(), params, body, lookup)
}

fn sign_parts(parts: &UrlParts, body: &[u8], nonce: &str, ts: u64, sha256: bool) -> SignedRequest {
    let method = if sha256 {
        SignatureMethod::HmacSha256
    } else {
        SignatureMethod::HmacSha1
    };
    OAuthSigner::new("prop-key", "prop secret &+", method)
        .sign_request("POST", &parts.url(), body, nonce, ts)
        .expect("signable URL")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The hand-written encoder agrees with the `percent-encoding` crate's RFC 3986 set.
    #[test]
    fn fast_percent_encoder_matches_the_crate(s in "\\PC{0,40}") {
        const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        prop_assert_eq!(percent_encode(&s), percent_encoding::utf8_percent_encode(&s, SET).to_string());
    }

    #[test]
    fn signed_requests_verify(
        parts in url_strategy(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        nonce in "[A-Za-z0-9 +/=&%é]{1,24}",
        ts in any::<u64>(),
        sha256 in any::<bool>(),
    ) {
        let signed = sign_parts(&parts, &body, &nonce, ts, sha256);
        let params = parse_authorization_header(&signed.authorization).unwrap();
        let verified = check(&parts, &body, &params).unwrap();
        prop_assert_eq!(&verified.nonce, &nonce);
        prop_assert_eq!(verified.timestamp, ts);
        // The serialized URL (what goes on the wire) verifies through both entry points.
        let wire = parts.url();
        let reparsed = Url::parse(wire.as_str()).unwrap();
        let lookup = |k: &str| (k == "prop-key").then(|| "prop secret &+".to_owned());
        verify_request("POST", &reparsed, &params, &body, lookup).unwrap();
        verify_request_raw("POST", wire.as_str(), &params, &body, lookup).unwrap();
        // Host case and an explicit default port do not change the meaning.
        let mut equivalent = parts.clone();
        equivalent.host_labels = parts.host_labels.iter().map(|l| l.to_ascii_uppercase()).collect();
        if equivalent.port.is_none() {
            equivalent.port = Some(if parts.https { 443 } else { 80 });
        }
        check(&equivalent, &body, &params).unwrap();
    }

    #[test]
    fn any_body_byte_flip_fails(
        parts in url_strategy(),
        body in proptest::collection::vec(any::<u8>(), 1..256),
        index in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let signed = sign_parts(&parts, &body, "n", 1_700_000_000, false);
        let params = parse_authorization_header(&signed.authorization).unwrap();
        let mut tampered = body.clone();
        tampered[index.index(body.len())] ^= flip;
        prop_assert_eq!(check(&parts, &tampered, &params), Err(VerifyError::BodyHashMismatch));
    }

    #[test]
    fn any_url_change_fails(
        parts in url_strategy(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        which in 0usize..4,
        index in any::<proptest::sample::Index>(),
        ch in prop_oneof![proptest::char::range('a', 'z'), Just('é'), Just(' '), Just('&')],
    ) {
        let signed = sign_parts(&parts, &body, "n", 1_700_000_000, false);
        let params = parse_authorization_header(&signed.authorization).unwrap();
        let mut mutated = parts.clone();
        match which {
            // Change (or insert) one character of a path segment.
            0 => {
                if mutated.segments.is_empty() {
                    mutated.segments.push(ch.to_string());
                } else {
                    let i = index.index(mutated.segments.len());
                    let mut chars: Vec<char> = mutated.segments[i].chars().collect();
                    let j = index.index(chars.len());
                    chars[j] = ch;
                    mutated.segments[i] = chars.into_iter().collect();
                }
            }
            // Change one character of a query value, or add a parameter.
            1 => {
                if mutated.query.is_empty() {
                    mutated.query.push(("q".into(), ch.to_string()));
                } else {
                    let i = index.index(mutated.query.len());
                    let mut chars: Vec<char> = mutated.query[i].1.chars().collect();
                    if chars.is_empty() {
                        chars.push(ch);
                    } else {
                        let j = index.index(chars.len());
                        chars[j] = ch;
                    }
                    mutated.query[i].1 = chars.into_iter().collect();
                }
            }
            // Change one character of a query key.
            2 => {
                if mutated.query.is_empty() {
                    mutated.query.push((ch.to_string(), String::new()));
                } else {
                    let i = index.index(mutated.query.len());
                    mutated.query[i].0.push(ch);
                }
            }
            // Change the scheme or the port.
            _ => {
                if index.index(2) == 0 {
                    mutated.https = !mutated.https;
                } else {
                    mutated.port = Some(match mutated.port { Some(8081) => 8082, _ => 8081 });
                }
            }
        }
        prop_assume!(meaning(&mutated.url()) != meaning(&parts.url()));
        prop_assert_eq!(check(&mutated, &body, &params), Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn any_param_change_fails(
        parts in url_strategy(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        index in any::<proptest::sample::Index>(),
        suffix in "[a-z0-9]{1,3}",
    ) {
        let signed = sign_parts(&parts, &body, "n", 1_700_000_000, false);
        let params = parse_authorization_header(&signed.authorization).unwrap();
        let oauth: Vec<usize> = (0..params.len()).filter(|&i| params[i].0 != "realm").collect();
        let target = oauth[index.index(oauth.len())];
        let mut mutated = params.clone();
        mutated[target].1.push_str(&suffix);
        prop_assert!(check(&parts, &body, &mutated).is_err(), "changing {} was accepted", params[target].0);
    }

    #[test]
    fn percent_encode_round_trips(s in "\\PC{0,32}") {
        let enc = percent_encode(&s);
        prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        prop_assert_eq!(percent_decode_strict(&enc, "test").unwrap(), s);
    }
}

#[test]
fn a_query_parameter_named_oauth_signature_is_never_signed() {
    // An outcome URL that carries `oauth_signature` in its query: RFC 5849 leaves it
    // out of the base string, and so must the signer, or the verifier (which leaves
    // it out) rejects every request to that URL.
    let u = url("https://lms.example.com/outcomes?a=1&oauth_signature=planted");
    let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
    let signed = signer
        .sign_request("POST", &u, b"<x/>", "n1", 1_700_000_000)
        .unwrap();
    assert!(!signed.base_string.contains("planted"), "{}", signed.base_string);
    assert!(
        signed.base_string.contains("a%3D1"),
        "the other query parameters are signed"
    );
    // The base string is the RFC's: every parameter but `oauth_signature`.
    let mut all = signed.params.clone();
    all.extend(owned(&[("a", "1"), ("oauth_signature", "planted")]));
    assert_eq!(
        signed.base_string,
        base_string("POST", &base_uri(&u).unwrap(), &all)
    );
}

#[test]
fn an_oauth_parameter_in_the_header_and_again_in_the_query_or_form_is_refused() {
    let signer = OAuthSigner::new("key", "secret", SignatureMethod::HmacSha1);
    let secret = |k: &str| (k == "key").then(|| "secret".to_string());
    // In the query: signed both times, so the signature alone would not catch it.
    let u = url("https://lms.example.com/outcomes?oauth_nonce=other");
    let signed = signer
        .sign_request("POST", &u, b"<x/>", "n1", 1_700_000_000)
        .unwrap();
    assert_eq!(
        verify_request("POST", &u, &signed.params, b"<x/>", secret),
        Err(VerifyError::DuplicateParameter("oauth_nonce".into()))
    );
    // In a form body (a launch).
    let u = url("https://tool.example.com/launch");
    let form = b"oauth_consumer_key=other&user_id=1";
    let mut params = owned(&[
        ("oauth_consumer_key", "key"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1700000000"),
        ("oauth_nonce", "n2"),
        ("oauth_version", "1.0"),
    ]);
    let mut all = params.clone();
    all.extend(form_params(form));
    let base = base_string("POST", &base_uri(&u).unwrap(), &all);
    params.push((
        "oauth_signature".into(),
        sign(SignatureMethod::HmacSha1, "secret", "", &base),
    ));
    assert_eq!(
        verify_form_request("POST", &u, &params, form, secret),
        Err(VerifyError::DuplicateParameter("oauth_consumer_key".into()))
    );
}
