//! The LMS side of LTI 1.1 Basic Outcomes POX: reading a tool's request and answering
//! in a particular LMS's shape. Test and demo infrastructure; the tool side (builders
//! and the response parser) is `passback::lti11::pox`, whose hardened document model
//! this module reads with.

use passback::lti11::pox::{
    CodeMajor, NAMESPACE, PoxError, ResultData, SCORE_LANGUAGE, XML_DECLARATION, escape_lossy,
    parse_document, push_element,
};

/// The operation of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `replaceResultRequest`.
    ReplaceResult,
    /// `readResultRequest`.
    ReadResult,
    /// `deleteResultRequest`.
    DeleteResult,
    /// Any other element name found in `imsx_POXBody`.
    Other(String),
}

impl Operation {
    /// The request element name, e.g. `replaceResultRequest`.
    pub fn request_element(&self) -> &str {
        match self {
            Operation::ReplaceResult => "replaceResultRequest",
            Operation::ReadResult => "readResultRequest",
            Operation::DeleteResult => "deleteResultRequest",
            Operation::Other(name) => name,
        }
    }
}

/// A parsed `imsx_POXEnvelopeRequest`, as an LMS sees it.
///
/// Text fields are the raw element text (entities decoded, line ends normalized, *not*
/// trimmed), so a sandbox can apply a specific LMS's validation rules to exactly what was
/// sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PoxRequest {
    /// `imsx_POXHeader//imsx_messageIdentifier`.
    pub message_identifier: Option<String>,
    /// The first child of `imsx_POXBody`.
    pub operation: Operation,
    /// `sourcedGUID/sourcedId` inside the operation.
    pub sourcedid: Option<String>,
    /// `resultRecord/result/resultScore/textString`, raw.
    pub score_text: Option<String>,
    /// `resultRecord/result/resultScore/language`, raw.
    pub language: Option<String>,
    /// `resultRecord/result/resultData`: when several kinds are present, Canvas's
    /// precedence applies (`text`, then `url`, then `ltiLaunchUrl`).
    pub result_data: Option<ResultData>,
    /// `resultRecord/result/resultTotalScore/textString`, raw.
    pub result_total_score_text: Option<String>,
    /// `submissionDetails/submittedAt`, raw.
    pub submitted_at: Option<String>,
    /// Whether `submissionDetails/prioritizeNonToolGrade` is present.
    pub prioritize_non_tool_grade: bool,
    /// Whether `submissionDetails/needsAdditionalReview` is present.
    pub needs_additional_review: bool,
}

/// Parses an outcomes request, with the same safety rules as [`parse_response`].
pub fn parse_request(bytes: &[u8]) -> Result<PoxRequest, PoxError> {
    let doc = parse_document(bytes)?;
    let op = doc.operation().ok_or(PoxError::MissingOperation)?;
    let operation = match doc.name(op) {
        "replaceResultRequest" => Operation::ReplaceResult,
        "readResultRequest" => Operation::ReadResult,
        "deleteResultRequest" => Operation::DeleteResult,
        other => Operation::Other(other.to_owned()),
    };
    let raw = |idx: Option<usize>| idx.map(|i| doc.text(i).to_owned());
    let header_id = doc
        .find("imsx_POXHeader")
        .and_then(|h| doc.descendant(h, "imsx_messageIdentifier"));
    let sourcedid = doc
        .descendant(op, "sourcedGUID")
        .and_then(|guid| doc.child(guid, "sourcedId"));
    let result = doc.path(op, &["resultRecord", "result"]);
    let under_result = |names: &[&str]| result.and_then(|r| doc.path(r, names));
    let result_data = result.and_then(|r| doc.child(r, "resultData")).and_then(|data| {
        let get = |name: &str| doc.child(data, name).map(|i| doc.text(i).to_owned());
        get("text")
            .map(ResultData::Text)
            .or_else(|| get("url").map(ResultData::Url))
            .or_else(|| get("ltiLaunchUrl").map(ResultData::LtiLaunchUrl))
    });
    let details = doc.child(op, "submissionDetails");
    let has_detail = |name: &str| details.and_then(|d| doc.child(d, name)).is_some();

    Ok(PoxRequest {
        message_identifier: raw(header_id),
        operation,
        sourcedid: raw(sourcedid),
        score_text: raw(under_result(&["resultScore", "textString"])),
        language: raw(under_result(&["resultScore", "language"])),
        result_data,
        result_total_score_text: raw(under_result(&["resultTotalScore", "textString"])),
        submitted_at: raw(details.and_then(|d| doc.child(d, "submittedAt"))),
        prioritize_non_tool_grade: has_detail("prioritizeNonToolGrade"),
        needs_additional_review: has_detail("needsAdditionalReview"),
    })
}

/// What a sandbox LMS puts in a response, so it can imitate a particular LMS's dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseSpec {
    /// The response's own `imsx_messageIdentifier` (Canvas sends it empty).
    pub message_identifier: String,
    /// `imsx_codeMajor`.
    pub code_major: CodeMajor,
    /// `imsx_severity`; omitted when `None`.
    pub severity: Option<String>,
    /// `imsx_description`; omitted when `None`.
    pub description: Option<String>,
    /// `imsx_messageRefIdentifier`; omitted when `None`.
    pub message_ref_identifier: Option<String>,
    /// `imsx_operationRefIdentifier`; omitted when `None`.
    pub operation_ref_identifier: Option<String>,
    /// `imsx_codeMinor` fields (name, value); omitted when empty.
    pub code_minor: Vec<(String, String)>,
    /// Canvas `ext_canvas_error_code`; omitted when `None`.
    pub ext_canvas_error_code: Option<String>,
    /// The element inside `imsx_POXBody`, e.g. `replaceResultResponse`. An empty or
    /// invalid name gives an empty `<imsx_POXBody/>`.
    pub body_element: String,
    /// `Some(text)` adds `result/resultScore/{language, textString}` inside the body
    /// element, as in a `readResultResponse`; `Some(None)` sends an empty `textString`
    /// (no grade).
    pub read_score_text: Option<Option<String>>,
}

impl Default for ResponseSpec {
    fn default() -> Self {
        ResponseSpec {
            message_identifier: String::new(),
            code_major: CodeMajor::Success,
            severity: Some("status".to_owned()),
            description: None,
            message_ref_identifier: None,
            operation_ref_identifier: None,
            code_minor: Vec::new(),
            ext_canvas_error_code: None,
            body_element: String::new(),
            read_score_text: None,
        }
    }
}

/// Whether `name` is a plain XML element name (ASCII, no prefix) that is safe to emit.
fn is_plain_element_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Builds an `imsx_POXEnvelopeResponse` (one line, starting with the XML declaration),
/// shaped like the Canvas response: header status fields in the order `codeMajor`,
/// `severity`, `description`, `messageRefIdentifier`, `operationRefIdentifier`,
/// `codeMinor`, `ext_canvas_error_code`, then the body.
///
/// Infallible: a sandbox echoes values taken from untrusted requests, so characters that
/// XML cannot carry are replaced by U+FFFD rather than failing or producing broken XML.
pub fn response(spec: &ResponseSpec) -> String {
    let mut out = String::with_capacity(768);
    out.push_str(XML_DECLARATION);
    out.push_str("<imsx_POXEnvelopeResponse xmlns=\"");
    out.push_str(NAMESPACE);
    out.push_str("\"><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version>");
    push_element(
        &mut out,
        "imsx_messageIdentifier",
        &escape_lossy(&spec.message_identifier),
    );
    out.push_str("<imsx_statusInfo>");
    push_element(
        &mut out,
        "imsx_codeMajor",
        &escape_lossy(spec.code_major.as_str()),
    );
    let optional = [
        ("imsx_severity", &spec.severity),
        ("imsx_description", &spec.description),
        ("imsx_messageRefIdentifier", &spec.message_ref_identifier),
        ("imsx_operationRefIdentifier", &spec.operation_ref_identifier),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            push_element(&mut out, name, &escape_lossy(value));
        }
    }
    if !spec.code_minor.is_empty() {
        out.push_str("<imsx_codeMinor>");
        for (name, value) in &spec.code_minor {
            out.push_str("<imsx_codeMinorField>");
            push_element(&mut out, "imsx_codeMinorFieldName", &escape_lossy(name));
            push_element(&mut out, "imsx_codeMinorFieldValue", &escape_lossy(value));
            out.push_str("</imsx_codeMinorField>");
        }
        out.push_str("</imsx_codeMinor>");
    }
    if let Some(code) = &spec.ext_canvas_error_code {
        push_element(&mut out, "ext_canvas_error_code", &escape_lossy(code));
    }
    out.push_str("</imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader>");
    let body = spec.body_element.as_str();
    match (&spec.read_score_text, is_plain_element_name(body)) {
        (_, false) => out.push_str("<imsx_POXBody/>"),
        (None, true) => {
            out.push_str("<imsx_POXBody><");
            out.push_str(body);
            out.push_str("/></imsx_POXBody>");
        }
        (Some(score), true) => {
            out.push_str("<imsx_POXBody><");
            out.push_str(body);
            out.push_str("><result><resultScore>");
            push_element(&mut out, "language", SCORE_LANGUAGE);
            push_element(
                &mut out,
                "textString",
                &score.as_deref().map(escape_lossy).unwrap_or_default(),
            );
            out.push_str("</resultScore></result></");
            out.push_str(body);
            out.push_str("></imsx_POXBody>");
        }
    }
    out.push_str("</imsx_POXEnvelopeResponse>");
    out
}

#[cfg(test)]
mod tests;
