//! Tests of the POX builders and the response parser (the request parser and the
//! response builder are the sandbox LMS's, and are tested there).

use super::*;
use proptest::prelude::*;

/// Reference appendix: the exact 590-byte body of OAuth vector 5.
const APPENDIX_BODY: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><imsx_POXEnvelopeRequest xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">"#,
    "<imsx_POXHeader><imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version>",
    "<imsx_messageIdentifier>999999123</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader>",
    "<imsx_POXBody><replaceResultRequest><resultRecord><sourcedGUID><sourcedId>3124567</sourcedId></sourcedGUID>",
    "<result><resultScore><language>en</language><textString>0.92</textString></resultScore></result>",
    "</resultRecord></replaceResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"
);

const ENVELOPE_START: &str = r#"<?xml version="1.0" encoding="UTF-8"?><imsx_POXEnvelopeRequest xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"><imsx_POXHeader><imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version>"#;

fn score_only(id: &str, sourcedid: &str, score: f64) -> ReplaceResult {
    ReplaceResult {
        message_identifier: id.to_owned(),
        sourcedid: sourcedid.to_owned(),
        score: Some(score),
        ..ReplaceResult::default()
    }
}

// ---- Builders ----------------------------------------------------------------------

#[test]
fn replace_result_matches_appendix_byte_for_byte() {
    assert_eq!(APPENDIX_BODY.len(), 590);
    let xml = replace_result(&score_only("999999123", "3124567", 0.92)).unwrap();
    assert_eq!(xml, APPENDIX_BODY);
}

#[test]
fn replace_result_with_every_canvas_extension() {
    let req = ReplaceResult {
        message_identifier: "m1".into(),
        sourcedid: "s1".into(),
        score: Some(1.0),
        result_data: Some(ResultData::Url("https://tool.example/sub?a=1&b=2".into())),
        result_total_score: Some(50.0),
        submitted_at: Some("2017-04-16T18:54:36.736+00:00".into()),
        prioritize_non_tool_grade: true,
        needs_additional_review: true,
    };
    let expected = format!(
        "{ENVELOPE_START}<imsx_messageIdentifier>m1</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader>\
             <imsx_POXBody><replaceResultRequest><submissionDetails><submittedAt>2017-04-16T18:54:36.736+00:00</submittedAt>\
             <prioritizeNonToolGrade/><needsAdditionalReview/></submissionDetails><resultRecord><sourcedGUID>\
             <sourcedId>s1</sourcedId></sourcedGUID><result><resultScore><language>en</language><textString>1.0</textString>\
             </resultScore><resultTotalScore><language>en</language><textString>50.0</textString></resultTotalScore>\
             <resultData><url>https://tool.example/sub?a=1&amp;b=2</url></resultData></result></resultRecord>\
             </replaceResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"
    );
    assert_eq!(replace_result(&req).unwrap(), expected);
}

#[test]
fn replace_result_without_score_has_no_result_score() {
    let data_only = ReplaceResult {
        message_identifier: "m".into(),
        sourcedid: "s".into(),
        result_data: Some(ResultData::Text("essay".into())),
        ..ReplaceResult::default()
    };
    let xml = replace_result(&data_only).unwrap();
    assert!(!xml.contains("resultScore"));
    assert!(xml.contains("<result><resultData><text>essay</text></resultData></result>"));

    let launch = ReplaceResult {
        result_data: Some(ResultData::LtiLaunchUrl("https://l/x".into())),
        ..data_only
    };
    assert!(
        replace_result(&launch)
            .unwrap()
            .contains("<resultData><ltiLaunchUrl>https://l/x</ltiLaunchUrl>")
    );

    let submitted_only = ReplaceResult {
        message_identifier: "m".into(),
        sourcedid: "s".into(),
        submitted_at: Some("2024-01-01T00:00:00Z".into()),
        ..ReplaceResult::default()
    };
    let xml = replace_result(&submitted_only).unwrap();
    assert!(!xml.contains("<result>"), "{xml}");
    assert!(xml.contains(
            "<replaceResultRequest><submissionDetails><submittedAt>2024-01-01T00:00:00Z</submittedAt>\
             </submissionDetails><resultRecord><sourcedGUID><sourcedId>s</sourcedId></sourcedGUID></resultRecord>"
        ));

    let total_only = ReplaceResult {
        message_identifier: "m".into(),
        sourcedid: "s".into(),
        result_total_score: Some(7.5),
        ..ReplaceResult::default()
    };
    assert!(replace_result(&total_only).unwrap().contains(
            "<result><resultTotalScore><language>en</language><textString>7.5</textString></resultTotalScore></result>"
        ));
}

#[test]
fn replace_result_validation_errors() {
    let ok = score_only("m", "s", 0.5);
    let cases: Vec<(ReplaceResult, PoxError)> = vec![
        (
            ReplaceResult {
                sourcedid: String::new(),
                ..ok.clone()
            },
            PoxError::EmptyField("sourcedId"),
        ),
        (
            ReplaceResult {
                message_identifier: String::new(),
                ..ok.clone()
            },
            PoxError::EmptyField("imsx_messageIdentifier"),
        ),
        (
            ReplaceResult {
                score: Some(-0.01),
                ..ok.clone()
            },
            PoxError::InvalidScore("-0.01".into()),
        ),
        (
            ReplaceResult {
                score: Some(1.000_000_1),
                ..ok.clone()
            },
            PoxError::InvalidScore("1.0000001".into()),
        ),
        (
            ReplaceResult {
                score: Some(f64::NAN),
                ..ok.clone()
            },
            PoxError::InvalidScore("NaN".into()),
        ),
        (
            ReplaceResult {
                score: Some(f64::INFINITY),
                ..ok.clone()
            },
            PoxError::InvalidScore("inf".into()),
        ),
        (
            ReplaceResult {
                result_total_score: Some(-1.0),
                ..ok.clone()
            },
            PoxError::InvalidTotalScore("-1".into()),
        ),
        (
            ReplaceResult {
                result_total_score: Some(f64::NAN),
                ..ok.clone()
            },
            PoxError::InvalidTotalScore("NaN".into()),
        ),
        (
            ReplaceResult {
                score: None,
                ..ok.clone()
            },
            PoxError::NothingToReplace,
        ),
        (
            ReplaceResult {
                sourcedid: "a\u{1}b".into(),
                ..ok.clone()
            },
            PoxError::InvalidXmlChar {
                field: "sourcedId",
                code: 1,
            },
        ),
        (
            ReplaceResult {
                result_data: Some(ResultData::Text(String::new())),
                ..ok.clone()
            },
            PoxError::EmptyField("resultData"),
        ),
        (
            ReplaceResult {
                result_data: Some(ResultData::Text("\u{FFFF}".into())),
                ..ok.clone()
            },
            PoxError::InvalidXmlChar {
                field: "resultData",
                code: 0xFFFF,
            },
        ),
        (
            ReplaceResult {
                submitted_at: Some(String::new()),
                ..ok.clone()
            },
            PoxError::EmptyField("submittedAt"),
        ),
    ];
    for (req, err) in cases {
        assert_eq!(replace_result(&req), Err(err.clone()), "{req:?}");
        assert!(!err.to_string().is_empty());
    }
    // Flags alone are not something to replace.
    let flags_only = ReplaceResult {
        score: None,
        prioritize_non_tool_grade: true,
        ..ok
    };
    assert_eq!(replace_result(&flags_only), Err(PoxError::NothingToReplace));
}

#[test]
fn read_and_delete_result_envelopes() {
    let tail = "<imsx_messageIdentifier>id-1</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader>\
                    <imsx_POXBody>";
    assert_eq!(
        read_result("id-1", "src-9").unwrap(),
        format!(
            "{ENVELOPE_START}{tail}<readResultRequest><resultRecord><sourcedGUID><sourcedId>src-9</sourcedId>\
                 </sourcedGUID></resultRecord></readResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"
        )
    );
    assert_eq!(
        delete_result("id-1", "src-9").unwrap(),
        format!(
            "{ENVELOPE_START}{tail}<deleteResultRequest><resultRecord><sourcedGUID><sourcedId>src-9</sourcedId>\
                 </sourcedGUID></resultRecord></deleteResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"
        )
    );
    assert_eq!(read_result("id", ""), Err(PoxError::EmptyField("sourcedId")));
    assert_eq!(
        delete_result("", "s"),
        Err(PoxError::EmptyField("imsx_messageIdentifier"))
    );
}

#[test]
fn message_identifiers_are_fresh_uuids() {
    let a = new_message_identifier();
    let b = new_message_identifier();
    assert_eq!(a.len(), 32);
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(a, b);
}

#[test]
fn score_formatting_edge_cases() {
    let cases = [
        (0.0, "0.0"),
        (-0.0, "0.0"),
        (1.0, "1.0"),
        (0.92, "0.92"),
        (0.5, "0.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "0.0000001"),
        (0.999_999_999, "0.999999999"),
        (1.0 / 3.0, "0.3333333333333333"),
    ];
    for (score, text) in cases {
        assert_eq!(format_score(score).as_deref(), Ok(text), "{score:e}");
    }
    let tiny = format_score(f64::MIN_POSITIVE / 4.0).unwrap();
    assert!(tiny.starts_with("0.000") && !tiny.contains(['e', 'E']));
    assert_eq!(tiny.parse::<f64>().unwrap(), f64::MIN_POSITIVE / 4.0);
    for bad in [-1e-300, 1.0 + f64::EPSILON, f64::NAN, f64::NEG_INFINITY, 2.0] {
        assert!(
            matches!(format_score(bad), Err(PoxError::InvalidScore(_))),
            "{bad}"
        );
    }
    assert_eq!(format_total_score(50.0).as_deref(), Ok("50.0"));
    assert_eq!(
        format_total_score(1e21).as_deref(),
        Ok("1000000000000000000000.0")
    );
    assert_eq!(format_total_score(0.25).as_deref(), Ok("0.25"));
}

#[test]
fn special_characters_are_escaped() {
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
}

// ---- Response parser: LMS dialects -------------------------------------------------

const CANVAS_SUCCESS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">
  <imsx_POXHeader>
    <imsx_POXResponseHeaderInfo>
      <imsx_version>V1.0</imsx_version>
      <imsx_messageIdentifier/>
      <imsx_statusInfo>
        <imsx_codeMajor>success</imsx_codeMajor>
        <imsx_severity>status</imsx_severity>
        <imsx_description/>
        <imsx_messageRefIdentifier>999999123</imsx_messageRefIdentifier>
        <imsx_operationRefIdentifier>replaceResult</imsx_operationRefIdentifier>
      </imsx_statusInfo>
    </imsx_POXResponseHeaderInfo>
  </imsx_POXHeader>
  <imsx_POXBody><replaceResultResponse/></imsx_POXBody>
</imsx_POXEnvelopeResponse>
"#;

const CANVAS_FAILURE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">
  <imsx_POXHeader>
    <imsx_POXResponseHeaderInfo>
      <imsx_version>V1.0</imsx_version>
      <imsx_messageIdentifier></imsx_messageIdentifier>
      <imsx_statusInfo>
        <imsx_codeMajor>failure</imsx_codeMajor>
        <imsx_severity>status</imsx_severity>
        <imsx_description>Course not available for student
[EID_4f2a]</imsx_description>
        <imsx_messageRefIdentifier>abc</imsx_messageRefIdentifier>
        <imsx_operationRefIdentifier>replaceResult</imsx_operationRefIdentifier>
        <ext_canvas_error_code>course_not_available</ext_canvas_error_code>
      </imsx_statusInfo>
    </imsx_POXResponseHeaderInfo>
  </imsx_POXHeader>
  <imsx_POXBody><replaceResultResponse /></imsx_POXBody>
</imsx_POXEnvelopeResponse>
"#;

const CANVAS_READ: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">
  <imsx_POXHeader>
    <imsx_POXResponseHeaderInfo>
      <imsx_version>V1.0</imsx_version>
      <imsx_messageIdentifier/>
      <imsx_statusInfo>
        <imsx_codeMajor>success</imsx_codeMajor>
        <imsx_severity>status</imsx_severity>
        <imsx_messageRefIdentifier>r1</imsx_messageRefIdentifier>
        <imsx_operationRefIdentifier>readResult</imsx_operationRefIdentifier>
      </imsx_statusInfo>
    </imsx_POXResponseHeaderInfo>
  </imsx_POXHeader>
  <imsx_POXBody><readResultResponse><result><resultScore><language>en</language><textString>SCORE</textString></resultScore></result></readResultResponse></imsx_POXBody>
</imsx_POXEnvelopeResponse>
"#;

const CANVAS_UNSUPPORTED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<imsx_POXEnvelopeResponse xmlns=\"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\"><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier/><imsx_statusInfo><imsx_codeMajor>unsupported</imsx_codeMajor><imsx_severity>status</imsx_severity><imsx_description>Request could not be handled. \u{af}\\_(\u{30c4})_/\u{af}</imsx_description><imsx_messageRefIdentifier/><imsx_operationRefIdentifier/></imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody/></imsx_POXEnvelopeResponse>";

const MOODLE_FAILURE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<imsx_POXEnvelopeResponse xmlns=\"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\"><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier>1739208446</imsx_messageIdentifier><imsx_statusInfo><imsx_codeMajor>failure</imsx_codeMajor><imsx_severity>status</imsx_severity><imsx_description>Message signature not valid</imsx_description><imsx_messageRefIdentifier>999999123</imsx_messageRefIdentifier><imsx_operationRefIdentifier>replaceResultRequest</imsx_operationRefIdentifier></imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody><replaceResultResponse/></imsx_POXBody></imsx_POXEnvelopeResponse>\n";

const MOODLE_READ: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<imsx_POXEnvelopeResponse xmlns=\"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\"><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier>8</imsx_messageIdentifier><imsx_statusInfo><imsx_codeMajor>success</imsx_codeMajor><imsx_severity>status</imsx_severity><imsx_description>Result read</imsx_description><imsx_messageRefIdentifier>r2</imsx_messageRefIdentifier><imsx_operationRefIdentifier>readResultRequest</imsx_operationRefIdentifier></imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody><readResultResponse><result><resultScore><language>en</language><textString>SCORE</textString></resultScore></result></readResultResponse></imsx_POXBody></imsx_POXEnvelopeResponse>\n";

const SAKAI_FAILURE: &str = "<?xml version='1.0' encoding='UTF-8'?>\n<imsx_POXEnvelopeResponse xmlns = \"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\">\n  <imsx_POXHeader>\n    <imsx_POXResponseHeaderInfo>\n      <imsx_version>V1.0</imsx_version>\n      <imsx_messageIdentifier>1700000000123</imsx_messageIdentifier>\n      <imsx_statusInfo>\n        <imsx_codeMajor>failure</imsx_codeMajor>\n        <imsx_severity>error</imsx_severity>\n        <imsx_description>Unable to update grade: Grade out of range</imsx_description>\n        <imsx_messageRefIdentifier>999999123</imsx_messageRefIdentifier>\n        <imsx_operationRefIdentifier>replaceResultRequest</imsx_operationRefIdentifier>\n        <imsx_codeMinor><imsx_codeMinorField><imsx_codeMinorFieldName>TargetEndSystem</imsx_codeMinorFieldName><imsx_codeMinorFieldValue>invaliddata</imsx_codeMinorFieldValue></imsx_codeMinorField><imsx_codeMinorField><imsx_codeMinorFieldValue>incompletedata</imsx_codeMinorFieldValue></imsx_codeMinorField></imsx_codeMinor>\n      </imsx_statusInfo>\n    </imsx_POXResponseHeaderInfo>\n  </imsx_POXHeader>\n  <imsx_POXBody>\n    <replaceResultResponse/>\n  </imsx_POXBody>\n</imsx_POXEnvelopeResponse>";

#[test]
fn parses_canvas_success() {
    let r = parse_response(CANVAS_SUCCESS.as_bytes()).unwrap();
    assert_eq!(
        r,
        PoxResponse {
            code_major: CodeMajor::Success,
            severity: Some("status".into()),
            description: None,
            message_identifier: None,
            message_ref_identifier: Some("999999123".into()),
            operation_ref_identifier: Some("replaceResult".into()),
            code_minor: vec![],
            ext_canvas_error_code: None,
            operation: Some("replaceResultResponse".into()),
            read_score: ReadScore::NotARead,
        }
    );
    assert!(r.is_success());
}

#[test]
fn parses_canvas_failure_with_error_code() {
    let r = parse_response(CANVAS_FAILURE.as_bytes()).unwrap();
    assert_eq!(r.code_major, CodeMajor::Failure);
    assert!(!r.is_success());
    assert_eq!(
        r.description.as_deref(),
        Some("Course not available for student\n[EID_4f2a]")
    );
    assert_eq!(r.ext_canvas_error_code.as_deref(), Some("course_not_available"));
    assert_eq!(r.message_ref_identifier.as_deref(), Some("abc"));
    assert_eq!(r.operation.as_deref(), Some("replaceResultResponse"));
}

#[test]
fn parses_canvas_unsupported_with_empty_body() {
    let r = parse_response(CANVAS_UNSUPPORTED.as_bytes()).unwrap();
    assert_eq!(r.code_major, CodeMajor::Unsupported);
    assert_eq!(
        r.description.as_deref(),
        Some("Request could not be handled. ¯\\_(ツ)_/¯")
    );
    assert_eq!(r.operation, None);
    assert_eq!(r.operation_ref_identifier, None);
    assert_eq!(r.read_score, ReadScore::NotARead);
}

#[test]
fn parses_read_scores_from_canvas_and_moodle() {
    for fixture in [CANVAS_READ, MOODLE_READ] {
        let read = |score: &str| {
            parse_response(fixture.replace("SCORE", score).as_bytes())
                .unwrap()
                .read_score
        };
        assert_eq!(read("0.92"), ReadScore::Score(0.92));
        assert_eq!(
            read("0.8333333333333334"),
            ReadScore::Score(0.833_333_333_333_333_4)
        );
        assert_eq!(read(" 1 "), ReadScore::Score(1.0));
        assert_eq!(read("1.25"), ReadScore::Score(1.25), "not range-checked");
        assert_eq!(read(""), ReadScore::Empty);
        assert_eq!(read("  \n "), ReadScore::Empty);
        assert_eq!(read("NaN"), ReadScore::Invalid("NaN".into()));
        assert_eq!(read("inf"), ReadScore::Invalid("inf".into()));
        assert_eq!(read("92%"), ReadScore::Invalid("92%".into()));
        assert_eq!(read("0,92"), ReadScore::Invalid("0,92".into()));
        let r = parse_response(fixture.replace("SCORE", "0.5").as_bytes()).unwrap();
        assert_eq!(r.operation.as_deref(), Some("readResultResponse"));
    }
    let missing = CANVAS_READ.replace("<textString>SCORE</textString>", "");
    assert_eq!(
        parse_response(missing.as_bytes()).unwrap().read_score,
        ReadScore::Empty
    );
    let no_result = CANVAS_READ.replace(
        "<result><resultScore><language>en</language><textString>SCORE</textString></resultScore></result>",
        "",
    );
    assert_eq!(
        parse_response(no_result.as_bytes()).unwrap().read_score,
        ReadScore::Empty
    );
    let moodle = parse_response(MOODLE_READ.replace("SCORE", "").as_bytes()).unwrap();
    assert_eq!(moodle.description.as_deref(), Some("Result read"));
    assert_eq!(
        moodle.operation_ref_identifier.as_deref(),
        Some("readResultRequest")
    );
}

#[test]
fn parses_moodle_failure() {
    let r = parse_response(MOODLE_FAILURE.as_bytes()).unwrap();
    assert_eq!(r.code_major, CodeMajor::Failure);
    assert_eq!(r.severity.as_deref(), Some("status"));
    assert_eq!(r.description.as_deref(), Some("Message signature not valid"));
    assert_eq!(r.message_identifier.as_deref(), Some("1739208446"));
    assert_eq!(
        r.operation_ref_identifier.as_deref(),
        Some("replaceResultRequest")
    );
    assert_eq!(r.operation.as_deref(), Some("replaceResultResponse"));
}

#[test]
fn parses_sakai_failure_with_code_minor() {
    let r = parse_response(SAKAI_FAILURE.as_bytes()).unwrap();
    assert_eq!(r.code_major, CodeMajor::Failure);
    assert_eq!(r.severity.as_deref(), Some("error"));
    assert_eq!(
        r.description.as_deref(),
        Some("Unable to update grade: Grade out of range")
    );
    assert_eq!(
        r.code_minor,
        vec![
            ("TargetEndSystem".to_owned(), "invaliddata".to_owned()),
            ("TargetEndSystem".to_owned(), "incompletedata".to_owned())
        ]
    );
    assert_eq!(r.operation.as_deref(), Some("replaceResultResponse"));
}

#[test]
fn parses_prefixed_namespaces_bom_and_odd_code_major() {
    let xml = "\u{feff}<?xml version=\"1.0\"?><x:imsx_POXEnvelopeResponse xmlns:x=\"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\"><x:imsx_POXHeader><x:imsx_POXResponseHeaderInfo><x:imsx_statusInfo><x:imsx_codeMajor> Processing </x:imsx_codeMajor></x:imsx_statusInfo></x:imsx_POXResponseHeaderInfo></x:imsx_POXHeader><x:imsx_POXBody><x:replaceResultResponse/></x:imsx_POXBody></x:imsx_POXEnvelopeResponse>";
    let r = parse_response(xml.as_bytes()).unwrap();
    assert_eq!(r.code_major, CodeMajor::Processing);
    assert_eq!(r.operation.as_deref(), Some("replaceResultResponse"));
    assert_eq!(r.severity, None);
    let other = xml.replace(" Processing ", " Weird ");
    assert_eq!(
        parse_response(other.as_bytes()).unwrap().code_major,
        CodeMajor::Other("Weird".into())
    );
    assert_eq!(CodeMajor::parse("SUCCESS"), CodeMajor::Success);
    assert_eq!(CodeMajor::Other("x".into()).as_str(), "x");
}

/// A response envelope whose `imsx_statusInfo` holds `status` and whose body holds `body`.
fn envelope(status: &str, body: &str) -> String {
    format!(
        "<imsx_POXEnvelopeResponse><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_statusInfo>{status}\
         </imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody>{body}</imsx_POXBody>\
         </imsx_POXEnvelopeResponse>"
    )
}

#[test]
fn xml_without_code_major_is_reported() {
    for xml in [
        "<imsx_POXEnvelopeResponse><imsx_POXHeader/></imsx_POXEnvelopeResponse>".to_string(),
        // A codeMajor outside the header's status info decides nothing.
        "<imsx_POXEnvelopeResponse><imsx_codeMajor>success</imsx_codeMajor></imsx_POXEnvelopeResponse>"
            .to_string(),
        envelope(
            "",
            "<readResultResponse><imsx_codeMajor>success</imsx_codeMajor></readResultResponse>",
        ),
    ] {
        assert_eq!(
            parse_response(xml.as_bytes()),
            Err(PoxError::MissingCodeMajor),
            "{xml}"
        );
    }
}

#[test]
fn only_an_outcomes_envelope_is_an_answer() {
    for (xml, root) in [
        (
            "<?xml version=\"1.0\"?><error><message>Internal Server Error</message></error>",
            "error",
        ),
        // Another root that carries a success code where the envelope would.
        (
            "<imsx_POXEnvelopeRequest><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_statusInfo>\
             <imsx_codeMajor>success</imsx_codeMajor></imsx_statusInfo></imsx_POXResponseHeaderInfo>\
             </imsx_POXHeader></imsx_POXEnvelopeRequest>",
            "imsx_POXEnvelopeRequest",
        ),
    ] {
        assert_eq!(
            parse_response(xml.as_bytes()),
            Err(PoxError::NotAnEnvelope(root.into())),
            "{xml}"
        );
    }
    assert!(parse_response(b"<html><body><imsx_codeMajor>success</imsx_codeMajor></body></html>").is_err());
    let ok = parse_response(
        envelope(
            "<imsx_codeMajor>success</imsx_codeMajor>",
            "<replaceResultResponse/>",
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (ok.code_major, ok.operation.as_deref()),
        (CodeMajor::Success, Some("replaceResultResponse"))
    );
}

// ---- Safety ------------------------------------------------------------------------

#[test]
fn doctype_and_billion_laughs_are_refused() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<imsx_POXEnvelopeResponse><imsx_codeMajor>&lol9;</imsx_codeMajor></imsx_POXEnvelopeResponse>"#;
    assert_eq!(parse_response(laughs.as_bytes()), Err(PoxError::Doctype));
    let plain = "<!-- c --><!DOCTYPE imsx_POXEnvelopeResponse><imsx_POXEnvelopeResponse/>";
    assert_eq!(parse_response(plain.as_bytes()), Err(PoxError::Doctype));
}

#[test]
fn predefined_and_numeric_references_are_expanded() {
    let xml = envelope(
        "<imsx_codeMajor>success</imsx_codeMajor><imsx_description>&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#x1F393;</imsx_description>",
        "",
    );
    let r = parse_response(xml.as_bytes()).unwrap();
    assert_eq!(r.description.as_deref(), Some("<>&'\"AB🎓"));
    for bad in [
        "&#0;",
        "&#xD800;",
        "&#x110000;",
        "&#xFFFE;",
        "&#;",
        "&#x;",
        "&#12a;",
    ] {
        let xml = format!("<r><imsx_codeMajor>success{bad}</imsx_codeMajor></r>");
        assert!(
            matches!(parse_response(xml.as_bytes()), Err(PoxError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn oversized_bodies_are_refused_before_parsing() {
    let mut big = b"<imsx_POXEnvelopeResponse><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_statusInfo>\
        <imsx_codeMajor>success</imsx_codeMajor></imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><d>"
        .to_vec();
    let tail = b"</d></imsx_POXEnvelopeResponse>";
    big.resize(MAX_BODY_BYTES - tail.len(), b'a');
    big.extend_from_slice(tail);
    assert_eq!(big.len(), MAX_BODY_BYTES);
    assert!(parse_response(&big).is_ok(), "exactly 1 MiB is accepted");
    big.insert(80, b'a');
    assert_eq!(
        parse_response(&big),
        Err(PoxError::TooLarge {
            len: MAX_BODY_BYTES + 1,
            limit: MAX_BODY_BYTES
        })
    );
    // Refused even when the content is garbage: the size check comes first.
    let garbage = vec![0xFFu8; MAX_BODY_BYTES + 1];
    assert!(matches!(parse_response(&garbage), Err(PoxError::TooLarge { .. })));
}

#[test]
fn html_and_text_bodies_are_not_xml() {
    let html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1><p>The upstream server returned an invalid response while processing the outcome request.</p></body></html>";
    let Err(PoxError::NotXml { first_bytes }) = parse_response(html.as_bytes()) else {
        panic!("expected NotXml");
    };
    assert!(first_bytes.starts_with("<!DOCTYPE html>\\n<html lang=\"en\">\\n<head><title>502 Bad Gateway"));
    assert!(first_bytes.ends_with('…'));
    assert!(first_bytes.chars().count() <= 121 + 10);

    let cases: [(&[u8], &str); 7] = [
        (
            b"<html><body>Error</body></html>",
            "<html><body>Error</body></html>",
        ),
        (b"<HTML>\r\n<BODY>oops", "<HTML>\\r\\n<BODY>oops"),
        (b"  <!doctype HTML><p>x", "  <!doctype HTML><p>x"),
        (b"Internal Server Error", "Internal Server Error"),
        (
            b"{\"errors\":[{\"message\":\"Invalid access token\"}]}",
            "{\"errors\":[{\"message\":\"Invalid access token\"}]}",
        ),
        (b"", ""),
        (b"\x00\x01bin\xff", "\\u{0}\\u{1}bin\u{fffd}"),
    ];
    for (body, quoted) in cases {
        assert_eq!(
            parse_response(body),
            Err(PoxError::NotXml {
                first_bytes: quoted.to_owned()
            }),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // The quote stops at 120 bytes without splitting a character.
    let long = "é".repeat(100);
    let Err(PoxError::NotXml { first_bytes }) = parse_response(long.as_bytes()) else {
        panic!("expected NotXml");
    };
    assert_eq!(first_bytes, format!("{}…", "é".repeat(60)));
    let err = parse_response(b"Bad Gateway").unwrap_err();
    assert_eq!(
        err.to_string(),
        "response is not XML; it starts with: \"Bad Gateway\""
    );
}

#[test]
fn malformed_xml_is_reported() {
    let cases = [
        "<imsx_POXEnvelopeResponse><imsx_codeMajor>success</imsx_codeMajor>",
        "<a><imsx_codeMajor>success</b></a>",
        "<a><imsx_codeMajor>success & more</imsx_codeMajor></a>",
        "<a><imsx_codeMajor>success</imsx_codeMajor></a><b/>",
        "<a><imsx_codeMajor>success</imsx_codeMajor></a>trailing",
    ];
    for xml in cases {
        assert!(
            matches!(parse_response(xml.as_bytes()), Err(PoxError::Malformed(_))),
            "{xml}"
        );
    }
    let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
    assert!(matches!(
        parse_response(deep.as_bytes()),
        Err(PoxError::Malformed(_))
    ));
    let ok_depth = format!(
        "{}<imsx_codeMajor>success</imsx_codeMajor>{}",
        "<a>".repeat(MAX_DEPTH - 1),
        "</a>".repeat(MAX_DEPTH - 1)
    );
    assert!(parse_document(ok_depth.as_bytes()).is_ok());
    let latin1 =
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a><imsx_codeMajor>succ\xe8s</imsx_codeMajor></a>";
    assert!(matches!(parse_response(latin1), Err(PoxError::Malformed(_))));
}

// ---- Leading junk (Moodle debug notices) ------------------------------------------

const MOODLE_SUCCESS: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<imsx_POXEnvelopeResponse xmlns=\"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0\"><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier>1739208447</imsx_messageIdentifier><imsx_statusInfo><imsx_codeMajor>success</imsx_codeMajor><imsx_severity>status</imsx_severity><imsx_description>Grade replace response</imsx_description><imsx_messageRefIdentifier>999999123</imsx_messageRefIdentifier><imsx_operationRefIdentifier>replaceResultRequest</imsx_operationRefIdentifier></imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody><replaceResultResponse/></imsx_POXBody></imsx_POXEnvelopeResponse>\n";

const HTML_NOTICE: &str = "<br />\n<b>Notice</b>:  Undefined index: foo in <b>/var/www/moodle/mod/lti/service.php</b> on line <b>42</b><br />\n";
const TEXT_NOTICE: &str = "PHP Notice:  Undefined variable: bar in /var/www/x.php on line 1\n";

#[test]
fn php_notices_before_the_envelope_are_skipped() {
    for junk in [
        HTML_NOTICE,
        TEXT_NOTICE,
        "\n\nPHP Warning:  Cannot modify header information - headers already sent in /var/www/x.php on line 3\nPHP Notice:  x < y in /a.php on line 2\n",
        "<br />\n<b>Deprecated</b>:  Function create_function() is deprecated in <b>/var/www/lib.php</b> on line <b>7</b><br />\n<br />\n<b>Notice</b>:  Undefined offset: 1 in <b>/var/www/x.php</b> on line <b>9</b><br />\n",
    ] {
        for (body, major, desc) in [
            (MOODLE_SUCCESS, CodeMajor::Success, "Grade replace response"),
            (MOODLE_FAILURE, CodeMajor::Failure, "Message signature not valid"),
        ] {
            let with_junk = format!("{junk}{body}");
            let r = parse_response(with_junk.as_bytes()).unwrap_or_else(|e| panic!("{junk:?}: {e}"));
            assert_eq!(r.code_major, major, "{junk:?}");
            assert_eq!(r.description.as_deref(), Some(desc));
            assert_eq!(r.message_ref_identifier.as_deref(), Some("999999123"));
            assert_eq!(
                r,
                parse_response(body.as_bytes()).unwrap(),
                "the same answer as without notices"
            );
        }
    }
    // Without a declaration, and with a namespace prefix, and after a BOM.
    let bare = MOODLE_SUCCESS.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let prefixed = bare
        .replace("<imsx_", "<ims:imsx_")
        .replace("</imsx_", "</ims:imsx_")
        .replace("<replaceResultResponse/>", "<ims:replaceResultResponse/>")
        .replace("xmlns=", "xmlns:ims=");
    for body in [
        format!("{TEXT_NOTICE}{bare}"),
        format!("{HTML_NOTICE}{prefixed}"),
        format!("\u{feff}{TEXT_NOTICE}{MOODLE_SUCCESS}"),
    ] {
        let r = parse_response(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert!(r.is_success(), "{body}");
        assert_eq!(r.operation.as_deref(), Some("replaceResultResponse"));
    }
}

#[test]
fn notices_do_not_loosen_the_rules() {
    // Only an HTML page: refused exactly as before.
    let page =
        format!("{HTML_NOTICE}<html><body><h1>Error</h1><p>Database connection failed</p></body></html>");
    assert!(
        matches!(parse_response(page.as_bytes()), Err(PoxError::Malformed(_))),
        "as without the skip"
    );
    let text = format!("{TEXT_NOTICE}Fatal error: out of memory");
    let Err(PoxError::NotXml { first_bytes }) = parse_response(text.as_bytes()) else {
        panic!("expected NotXml");
    };
    assert!(
        first_bytes.starts_with("PHP Notice:  Undefined variable"),
        "{first_bytes}"
    );
    // The envelope after the notices is still checked: cut off, DOCTYPE, entities, size.
    let cut_off = format!("{TEXT_NOTICE}{}", &MOODLE_SUCCESS[..200]);
    assert!(matches!(
        parse_response(cut_off.as_bytes()),
        Err(PoxError::Malformed(_))
    ));
    let dtd = format!(
        "{TEXT_NOTICE}<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]><imsx_POXEnvelopeResponse><imsx_codeMajor>&e;</imsx_codeMajor></imsx_POXEnvelopeResponse>"
    );
    assert_eq!(parse_response(dtd.as_bytes()), Err(PoxError::Doctype));
    let dtd_in_junk = format!(
        "{TEXT_NOTICE}<!DOCTYPE x [<!ENTITY e \"boom\">]><imsx_POXEnvelopeResponse><imsx_codeMajor>&e;</imsx_codeMajor></imsx_POXEnvelopeResponse>"
    );
    assert_eq!(
        parse_response(dtd_in_junk.as_bytes()),
        Err(PoxError::UnknownEntity("e".into())),
        "a DTD in the skipped text declares nothing"
    );
    let mut big = TEXT_NOTICE.repeat(MAX_BODY_BYTES / TEXT_NOTICE.len() + 1);
    big.push_str(MOODLE_SUCCESS);
    assert!(matches!(
        parse_response(big.as_bytes()),
        Err(PoxError::TooLarge { .. })
    ));
    // Names that merely start like the envelope are not the envelope.
    let lookalike = format!(
        "{TEXT_NOTICE}<imsx_POXEnvelopeResponseX><imsx_codeMajor>success</imsx_codeMajor></imsx_POXEnvelopeResponseX>"
    );
    assert!(matches!(
        parse_response(lookalike.as_bytes()),
        Err(PoxError::NotXml { .. })
    ));
    // A document that starts as XML is never re-read from a later point.
    let xml_then_more = format!("{MOODLE_SUCCESS}{MOODLE_FAILURE}");
    assert!(matches!(
        parse_response(xml_then_more.as_bytes()),
        Err(PoxError::Malformed(_))
    ));
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn score_text_round_trips(score in 0.0f64..=1.0) {
        let text = format_score(score).unwrap();
        prop_assert!(text.contains('.') && !text.contains(['e', 'E', '-', '+']), "{}", text);
        prop_assert_eq!(text.parse::<f64>().unwrap(), score);
    }

    #[test]
    fn escaped_text_never_carries_a_raw_carriage_return(text in xml_text()) {
        let escaped = escape_checked("x", &text).unwrap();
        prop_assert!(!escaped.contains('\r'));
        prop_assert_eq!(escape_lossy(&text), escaped);
    }

    #[test]
    fn the_response_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_response(&bytes);
    }

    #[test]
    fn the_response_parser_never_panics_on_mutated_envelopes(
        index in any::<proptest::sample::Index>(),
        byte in any::<u8>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = CANVAS_READ.replace("SCORE", "0.5").into_bytes();
        let i = index.index(bytes.len());
        if truncate { bytes.truncate(i) } else { bytes[i] = byte }
        let _ = parse_response(&bytes);
    }
}
