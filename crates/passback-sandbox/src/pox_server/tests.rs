//! Tests of the LMS side of POX: reading what the tool's builders produce, and
//! answering in each LMS's shape (checked with the tool's response parser).

use super::*;
use passback::lti11::pox::{
    CodeMajor, MAX_BODY_BYTES, PoxError, PoxResponse, ReadScore, ReplaceResult, ResultData, delete_result,
    is_xml_char, new_message_identifier, parse_response, read_result, replace_result,
};
use proptest::prelude::*;

#[test]
fn special_characters_are_escaped_and_round_trip() {
    let nasty = "<&>\"' ]]> \r\n\t é 🎓";
    let req = ReplaceResult {
        message_identifier: "id<&>".into(),
        sourcedid: nasty.into(),
        score: Some(0.25),
        result_data: Some(ResultData::Text(nasty.into())),
        ..ReplaceResult::default()
    };
    let xml = replace_result(&req).unwrap();
    assert!(
        xml.contains("<sourcedId>&lt;&amp;&gt;&quot;&apos; ]]&gt; &#13;\n\t é 🎓</sourcedId>"),
        "{xml}"
    );
    assert!(xml.contains("<imsx_messageIdentifier>id&lt;&amp;&gt;</imsx_messageIdentifier>"));
    let parsed = parse_request(xml.as_bytes()).unwrap();
    assert_eq!(parsed.sourcedid.as_deref(), Some(nasty));
    assert_eq!(parsed.message_identifier.as_deref(), Some("id<&>"));
    assert_eq!(parsed.result_data, Some(ResultData::Text(nasty.into())));
}

// ---- Request parser ----------------------------------------------------------------

#[test]
fn parse_request_round_trip_all_fields() {
    let req = ReplaceResult {
        message_identifier: new_message_identifier(),
        sourcedid: "abc-123".into(),
        score: Some(0.75),
        result_data: Some(ResultData::LtiLaunchUrl("https://tool/launch?id=42".into())),
        result_total_score: Some(12.5),
        submitted_at: Some("2024-05-01T12:00:00Z".into()),
        prioritize_non_tool_grade: true,
        needs_additional_review: false,
    };
    let parsed = parse_request(replace_result(&req).unwrap().as_bytes()).unwrap();
    assert_eq!(
        parsed,
        PoxRequest {
            message_identifier: Some(req.message_identifier.clone()),
            operation: Operation::ReplaceResult,
            sourcedid: Some("abc-123".into()),
            score_text: Some("0.75".into()),
            language: Some("en".into()),
            result_data: req.result_data.clone(),
            result_total_score_text: Some("12.5".into()),
            submitted_at: Some("2024-05-01T12:00:00Z".into()),
            prioritize_non_tool_grade: true,
            needs_additional_review: false,
        }
    );
    let read = parse_request(read_result("r", "s").unwrap().as_bytes()).unwrap();
    assert_eq!(read.operation, Operation::ReadResult);
    assert_eq!(read.sourcedid.as_deref(), Some("s"));
    assert_eq!(read.score_text, None);
    let delete = parse_request(delete_result("d", "s2").unwrap().as_bytes()).unwrap();
    assert_eq!(delete.operation, Operation::DeleteResult);
    assert_eq!(delete.operation.request_element(), "deleteResultRequest");
}

#[test]
fn parse_request_canvas_documentation_style() {
    // Pretty-printed, spaces in the declaration, comments, prioritizeNonToolGrade and
    // both text and url result data (Canvas takes text).
    let xml = r#"<?xml version = "1.0" encoding = "UTF-8"?>
<imsx_POXEnvelopeRequest xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">
  <imsx_POXHeader>
    <imsx_POXRequestHeaderInfo>
      <imsx_version>V1.0</imsx_version>
      <imsx_messageIdentifier>999999123</imsx_messageIdentifier>
    </imsx_POXRequestHeaderInfo>
  </imsx_POXHeader>
  <imsx_POXBody>
    <replaceResultRequest>
      <!-- Added element -->
      <submissionDetails>
        <submittedAt>
          2017-04-16T18:54:36.736+00:00
        </submittedAt>
        <prioritizeNonToolGrade/>
      </submissionDetails>
      <resultRecord>
        <sourcedGUID>
          <sourcedId>3124567</sourcedId>
        </sourcedGUID>
        <result>
          <resultScore>
            <language>en</language>
            <textString> 0.92 </textString>
          </resultScore>
          <resultData>
            <url>https://www.example.com/cool_lti_link_submission</url>
            <text><![CDATA[text <b>data</b>]]> &amp; more</text>
          </resultData>
        </result>
      </resultRecord>
    </replaceResultRequest>
  </imsx_POXBody>
</imsx_POXEnvelopeRequest>
"#;
    let parsed = parse_request(xml.as_bytes()).unwrap();
    assert_eq!(parsed.operation, Operation::ReplaceResult);
    assert_eq!(parsed.message_identifier.as_deref(), Some("999999123"));
    assert_eq!(parsed.sourcedid.as_deref(), Some("3124567"));
    assert_eq!(parsed.score_text.as_deref(), Some(" 0.92 "), "raw, not trimmed");
    assert_eq!(
        parsed.result_data,
        Some(ResultData::Text("text <b>data</b> & more".into()))
    );
    assert_eq!(
        parsed.submitted_at.as_deref().map(str::trim),
        Some("2017-04-16T18:54:36.736+00:00")
    );
    assert!(parsed.prioritize_non_tool_grade);
    assert!(!parsed.needs_additional_review);
}

#[test]
fn parse_request_prefixed_and_unknown_operations() {
    let prefixed = r#"<ims:imsx_POXEnvelopeRequest xmlns:ims="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"><ims:imsx_POXHeader><ims:imsx_POXRequestHeaderInfo><ims:imsx_messageIdentifier>7</ims:imsx_messageIdentifier></ims:imsx_POXRequestHeaderInfo></ims:imsx_POXHeader><ims:imsx_POXBody><ims:readResultRequest><ims:resultRecord><ims:sourcedGUID><ims:sourcedId>x</ims:sourcedId></ims:sourcedGUID></ims:resultRecord></ims:readResultRequest></ims:imsx_POXBody></ims:imsx_POXEnvelopeRequest>"#;
    let parsed = parse_request(prefixed.as_bytes()).unwrap();
    assert_eq!(parsed.operation, Operation::ReadResult);
    assert_eq!(parsed.sourcedid.as_deref(), Some("x"));
    assert_eq!(parsed.message_identifier.as_deref(), Some("7"));

    let other = r#"<imsx_POXEnvelopeRequest><imsx_POXBody><replaceLineItemRequest/></imsx_POXBody></imsx_POXEnvelopeRequest>"#;
    let parsed = parse_request(other.as_bytes()).unwrap();
    assert_eq!(
        parsed.operation,
        Operation::Other("replaceLineItemRequest".into())
    );
    assert_eq!(parsed.message_identifier, None);
    assert_eq!(parsed.sourcedid, None);

    for empty in [
        "<imsx_POXEnvelopeRequest><imsx_POXBody/></imsx_POXEnvelopeRequest>",
        "<imsx_POXEnvelopeRequest><imsx_POXBody> </imsx_POXBody></imsx_POXEnvelopeRequest>",
        "<imsx_POXEnvelopeRequest/>",
    ] {
        assert_eq!(
            parse_request(empty.as_bytes()),
            Err(PoxError::MissingOperation),
            "{empty}"
        );
    }
}

#[test]
fn requests_with_a_doctype_or_too_large_are_refused() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>
<imsx_POXEnvelopeRequest><imsx_POXBody><readResultRequest>&lol1;</readResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"#;
    assert_eq!(parse_request(laughs.as_bytes()), Err(PoxError::Doctype));
    // Refused even when the content is garbage: the size check comes first.
    let garbage = vec![0xFFu8; MAX_BODY_BYTES + 1];
    assert!(matches!(parse_request(&garbage), Err(PoxError::TooLarge { .. })));
}

#[test]
fn xxe_is_refused() {
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><imsx_POXEnvelopeRequest><imsx_POXBody><readResultRequest><resultRecord><sourcedGUID><sourcedId>&xxe;</sourcedId></sourcedGUID></resultRecord></readResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"#;
    assert_eq!(parse_request(xxe.as_bytes()), Err(PoxError::Doctype));
    // Without the DOCTYPE the reference is simply undeclared.
    let undeclared = r#"<imsx_POXEnvelopeRequest><imsx_POXBody><readResultRequest><resultRecord><sourcedGUID><sourcedId>&xxe;</sourcedId></sourcedGUID></resultRecord></readResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"#;
    assert_eq!(
        parse_request(undeclared.as_bytes()),
        Err(PoxError::UnknownEntity("xxe".into()))
    );
}

// ---- Response builder --------------------------------------------------------------

#[test]
fn response_builder_canvas_shape() {
    let spec = ResponseSpec {
        message_identifier: String::new(),
        code_major: CodeMajor::Failure,
        severity: Some("status".into()),
        description: Some("Score is not between 0 and 1".into()),
        message_ref_identifier: Some("999999123".into()),
        operation_ref_identifier: Some("replaceResult".into()),
        code_minor: vec![],
        ext_canvas_error_code: Some("bad_score".into()),
        body_element: "replaceResultResponse".into(),
        read_score_text: None,
    };
    assert_eq!(
        response(&spec),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><imsx_POXEnvelopeResponse xmlns=\"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\">\
             <imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier></imsx_messageIdentifier>\
             <imsx_statusInfo><imsx_codeMajor>failure</imsx_codeMajor><imsx_severity>status</imsx_severity>\
             <imsx_description>Score is not between 0 and 1</imsx_description><imsx_messageRefIdentifier>999999123</imsx_messageRefIdentifier>\
             <imsx_operationRefIdentifier>replaceResult</imsx_operationRefIdentifier><ext_canvas_error_code>bad_score</ext_canvas_error_code>\
             </imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody><replaceResultResponse/></imsx_POXBody>\
             </imsx_POXEnvelopeResponse>"
    );
    let parsed = parse_response(response(&spec).as_bytes()).unwrap();
    assert_eq!(parsed.code_major, CodeMajor::Failure);
    assert_eq!(parsed.ext_canvas_error_code.as_deref(), Some("bad_score"));
    assert_eq!(
        parsed.description.as_deref(),
        Some("Score is not between 0 and 1")
    );
}

#[test]
fn response_builder_read_result_and_round_trip() {
    let base = ResponseSpec {
        message_identifier: "77".into(),
        description: Some("Result read".into()),
        message_ref_identifier: Some("req-1".into()),
        operation_ref_identifier: Some("readResultRequest".into()),
        code_minor: vec![("TargetEndSystem".into(), "fullsuccess".into())],
        body_element: "readResultResponse".into(),
        read_score_text: Some(None),
        ..ResponseSpec::default()
    };
    let xml = response(&base);
    assert!(xml.contains(
        "<imsx_POXBody><readResultResponse><result><resultScore><language>en</language>\
             <textString></textString></resultScore></result></readResultResponse></imsx_POXBody>"
    ));
    let parsed = parse_response(xml.as_bytes()).unwrap();
    assert_eq!(
        parsed,
        PoxResponse {
            code_major: CodeMajor::Success,
            severity: Some("status".into()),
            description: Some("Result read".into()),
            message_identifier: Some("77".into()),
            message_ref_identifier: Some("req-1".into()),
            operation_ref_identifier: Some("readResultRequest".into()),
            code_minor: vec![("TargetEndSystem".into(), "fullsuccess".into())],
            ext_canvas_error_code: None,
            operation: Some("readResultResponse".into()),
            read_score: ReadScore::Empty,
        }
    );
    let scored = ResponseSpec {
        read_score_text: Some(Some("0.8333333333333334".into())),
        ..base.clone()
    };
    assert_eq!(
        parse_response(response(&scored).as_bytes()).unwrap().read_score,
        ReadScore::Score(0.833_333_333_333_333_4)
    );
    let garbage = ResponseSpec {
        read_score_text: Some(Some("<b>".into())),
        ..base
    };
    assert_eq!(
        parse_response(response(&garbage).as_bytes()).unwrap().read_score,
        ReadScore::Invalid("<b>".into())
    );
}

#[test]
fn response_builder_sanitizes_untrusted_values() {
    let spec = ResponseSpec {
        message_ref_identifier: Some("a\u{0}b<c>&\r".into()),
        severity: None,
        body_element: "bad name<".into(),
        ..ResponseSpec::default()
    };
    let xml = response(&spec);
    assert!(
        xml.contains("<imsx_messageRefIdentifier>a\u{fffd}b&lt;c&gt;&amp;&#13;</imsx_messageRefIdentifier>")
    );
    assert!(xml.contains("<imsx_POXBody/>"));
    assert!(!xml.contains("imsx_severity"));
    let parsed = parse_response(xml.as_bytes()).unwrap();
    assert_eq!(parsed.message_ref_identifier.as_deref(), Some("a\u{fffd}b<c>&"));
    assert_eq!(parsed.operation, None);
    for name in ["", "1abc", "a:b", "a b", "-x"] {
        let xml = response(&ResponseSpec {
            body_element: name.into(),
            ..ResponseSpec::default()
        });
        assert!(xml.contains("<imsx_POXBody/>"), "{name:?}");
    }
}

// ---- Property tests ----------------------------------------------------------------

/// Text that XML 1.0 can carry, with the characters that need escaping over-represented.
fn xml_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
            prop_oneof![
                3 => proptest::char::any().prop_filter("XML char", |&c| is_xml_char(c)),
                1 => prop_oneof![Just('<'), Just('>'), Just('&'), Just('"'), Just('\''), Just('\r'), Just('\n'), Just(' ')],
            ],
            1..24,
        )
        .prop_map(|v| v.into_iter().collect())
}

fn result_data() -> impl Strategy<Value = Option<ResultData>> {
    prop_oneof![
        Just(None),
        xml_text().prop_map(|t| Some(ResultData::Text(t))),
        xml_text().prop_map(|t| Some(ResultData::Url(t))),
        xml_text().prop_map(|t| Some(ResultData::LtiLaunchUrl(t))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replace_result_round_trips_through_parse_request(
        id in xml_text(),
        sourcedid in xml_text(),
        score in proptest::option::of(0.0f64..=1.0),
        total in proptest::option::of(0.0f64..1e6),
        data in result_data(),
        submitted_at in proptest::option::of(xml_text()),
        prioritize in any::<bool>(),
        review in any::<bool>(),
    ) {
        let req = ReplaceResult {
            message_identifier: id.clone(),
            sourcedid: sourcedid.clone(),
            score,
            result_data: data.clone(),
            result_total_score: total,
            submitted_at: submitted_at.clone(),
            prioritize_non_tool_grade: prioritize,
            needs_additional_review: review,
        };
        let xml = match replace_result(&req) {
            Ok(xml) => xml,
            Err(PoxError::NothingToReplace) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
        };
        prop_assert!(!xml.contains('\r'), "a carriage return is always sent as &#13;");
        let parsed = parse_request(xml.as_bytes()).unwrap();
        prop_assert_eq!(parsed.operation, Operation::ReplaceResult);
        prop_assert_eq!(parsed.message_identifier, Some(id));
        prop_assert_eq!(parsed.sourcedid, Some(sourcedid));
        prop_assert_eq!(parsed.score_text.map(|t| t.parse::<f64>().unwrap()), score);
        prop_assert_eq!(parsed.result_total_score_text.map(|t| t.parse::<f64>().unwrap()), total);
        prop_assert_eq!(parsed.result_data, data);
        prop_assert_eq!(parsed.submitted_at, submitted_at);
        prop_assert_eq!(parsed.prioritize_non_tool_grade, prioritize);
        prop_assert_eq!(parsed.needs_additional_review, review);
    }

    #[test]
    fn the_request_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_request(&bytes);
    }

    #[test]
    fn the_request_parser_never_panics_on_mutated_envelopes(
        index in any::<proptest::sample::Index>(),
        byte in any::<u8>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = replace_result(&ReplaceResult {
            message_identifier: "m".into(),
            sourcedid: "s".into(),
            score: Some(0.5),
            result_data: Some(ResultData::Text("t".into())),
            ..ReplaceResult::default()
        })
        .unwrap()
        .into_bytes();
        let i = index.index(bytes.len());
        if truncate { bytes.truncate(i) } else { bytes[i] = byte }
        let _ = parse_request(&bytes);
    }
}
