//! LTI 1.1 Basic Outcomes POX ("Plain Old XML") envelopes: request builders, a tolerant
//! response parser for the tool side, and a request parser plus response builder for a
//! sandbox LMS.
//!
//! Builders produce one line of XML with no whitespace between tags, starting with
//! `<?xml version="1.0" encoding="UTF-8"?>` and without a trailing newline, in the element
//! order of the IMS examples and the Canvas extension documentation. The output is the
//! exact byte string to hash for `oauth_body_hash` and to send.
//!
//! Parsers match elements by *local name* (prefixes and namespaces are ignored) so that the
//! dialects of Canvas, Moodle and Sakai all parse. They are hardened for untrusted input:
//! bodies over [`MAX_BODY_BYTES`] are refused before parsing, any DOCTYPE is refused (so no
//! entity can be declared), only the five predefined entities and numeric character
//! references are expanded, and nesting is capped at [`MAX_DEPTH`]. A body that is not XML
//! at all (an HTML error page, plain text, an empty body) is reported as
//! [`PoxError::NotXml`] with its first bytes quoted, so the user can see what the server
//! actually said.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// The IMS LTI 1.1 outcomes namespace.
pub const NAMESPACE: &str = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0";

/// Largest body the parsers accept (1 MiB). Real POX messages are well under 10 KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Deepest element nesting the parsers accept. Real POX messages nest 8 levels deep.
pub const MAX_DEPTH: usize = 64;

/// How many bytes of a non-XML body [`PoxError::NotXml`] quotes.
const NOT_XML_QUOTE_BYTES: usize = 120;

/// The XML declaration every builder starts with.
const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// The `language` sent with scores.
const SCORE_LANGUAGE: &str = "en";

/// Errors from building or parsing POX messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoxError {
    /// The body is larger than [`MAX_BODY_BYTES`]; it was not parsed.
    #[error("XML body is {len} bytes, larger than the {limit}-byte limit")]
    TooLarge {
        /// Size of the body in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not XML (for example an HTML error page or plain text).
    #[error("response is not XML; it starts with: \"{first_bytes}\"")]
    NotXml {
        /// Up to the first 120 bytes, decoded lossily (never ending on half a character),
        /// with control characters escaped (`\n`, `\u{0}`, ...) and `…` appended when the
        /// body is longer.
        first_bytes: String,
    },
    /// The document has a DOCTYPE declaration, which is never accepted.
    #[error("XML with a DOCTYPE declaration is not accepted")]
    Doctype,
    /// The document references an entity other than the five predefined ones.
    #[error("XML references the undeclared entity &{0};")]
    UnknownEntity(String),
    /// The document is not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The response has no `imsx_codeMajor`, so its outcome is unknown.
    #[error("the XML response has no imsx_codeMajor element")]
    MissingCodeMajor,
    /// The request has no operation element inside `imsx_POXBody`.
    #[error("the XML request has no operation inside imsx_POXBody")]
    MissingOperation,
    /// A score to send is not a finite number in 0.0..=1.0.
    #[error("score must be a finite number between 0.0 and 1.0, got {0}")]
    InvalidScore(String),
    /// A total score to send is not a finite, non-negative number.
    #[error("result total score must be a finite number of points >= 0, got {0}")]
    InvalidTotalScore(String),
    /// A required text field is empty.
    #[error("{0} must not be empty")]
    EmptyField(&'static str),
    /// A text field contains a character that XML 1.0 cannot carry, even escaped.
    #[error("{field} contains the character U+{code:04X}, which XML 1.0 cannot represent")]
    InvalidXmlChar {
        /// Which field.
        field: &'static str,
        /// The offending code point.
        code: u32,
    },
    /// A replaceResult request would carry nothing (no score, total score, result data or
    /// submission time).
    #[error("replaceResult needs a score, a total score, result data or a submittedAt time")]
    NothingToReplace,
}

// ---------------------------------------------------------------------------------------
// Request builders (tool side)
// ---------------------------------------------------------------------------------------

/// Canvas `resultData` extension: exactly one kind of submission data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultData {
    /// `resultData/text`: an `online_text_entry` submission in Canvas.
    Text(String),
    /// `resultData/url`: an `online_url` submission in Canvas.
    Url(String),
    /// `resultData/ltiLaunchUrl`: a `basic_lti_launch` submission in Canvas.
    LtiLaunchUrl(String),
}

impl ResultData {
    /// The child element name inside `resultData`.
    pub fn element_name(&self) -> &'static str {
        match self {
            ResultData::Text(_) => "text",
            ResultData::Url(_) => "url",
            ResultData::LtiLaunchUrl(_) => "ltiLaunchUrl",
        }
    }

    /// The text content.
    pub fn value(&self) -> &str {
        match self {
            ResultData::Text(v) | ResultData::Url(v) | ResultData::LtiLaunchUrl(v) => v,
        }
    }
}

/// Everything a `replaceResultRequest` can carry, including the Canvas extensions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplaceResult {
    /// `imsx_messageIdentifier`; use [`new_message_identifier`] for a fresh one.
    pub message_identifier: String,
    /// `lis_result_sourcedid` from the launch, sent as `sourcedGUID/sourcedId` (opaque).
    pub sourcedid: String,
    /// `resultScore`, 0.0..=1.0. `None` sends no `resultScore` (Canvas accepts a request
    /// with only result data or only `submittedAt`).
    pub score: Option<f64>,
    /// Canvas `resultData`.
    pub result_data: Option<ResultData>,
    /// Canvas `resultTotalScore` in raw points (Canvas ignores `resultScore` when present).
    pub result_total_score: Option<f64>,
    /// Canvas `submissionDetails/submittedAt`, an ISO 8601 timestamp (sent as given).
    pub submitted_at: Option<String>,
    /// Canvas `submissionDetails/prioritizeNonToolGrade`: keep a grade set by a person.
    pub prioritize_non_tool_grade: bool,
    /// Canvas `submissionDetails/needsAdditionalReview`.
    pub needs_additional_review: bool,
}

/// A fresh `imsx_messageIdentifier`: a random (v4) UUID as 32 lower-case hex digits.
pub fn new_message_identifier() -> String {
    // Random bytes from the thread-local CSPRNG (no system call per identifier).
    let bytes: [u8; 16] = rand::random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .simple()
        .to_string()
}

/// Formats a score for `resultScore/textString`.
///
/// The score must be finite and within 0.0..=1.0. The output is the shortest decimal that
/// parses back to the same `f64`, with `.` as the decimal separator, never an exponent, and
/// always at least one digit after the point: `0.92` → `"0.92"`, `1.0` → `"1.0"`,
/// `0.0` and `-0.0` → `"0.0"`, `1e-7` → `"0.0000001"`. (This matches what Python tools such
/// as edX send, and every LMS parser accepts it.)
pub fn format_score(score: f64) -> Result<String, PoxError> {
    if !score.is_finite() || !(0.0..=1.0).contains(&score) {
        return Err(PoxError::InvalidScore(score.to_string()));
    }
    Ok(format_decimal(score))
}

/// Formats raw points for `resultTotalScore/textString`, like [`format_score`] but for any
/// finite, non-negative value.
pub fn format_total_score(points: f64) -> Result<String, PoxError> {
    if !points.is_finite() || points < 0.0 {
        return Err(PoxError::InvalidTotalScore(points.to_string()));
    }
    Ok(format_decimal(points))
}

/// Shortest round-trip decimal without exponent (Rust's `Display` for `f64` never uses
/// one), with `.0` appended to whole numbers and negative zero printed as `0.0`.
fn format_decimal(x: f64) -> String {
    let x = if x == 0.0 { 0.0 } else { x };
    let s = x.to_string();
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Whether XML 1.0 can carry `c` (§2.2 `Char`).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes `value` as element text: `< > & " '` become entities and a carriage return
/// becomes `&#13;` (a literal CR would be turned into LF by every XML parser).
fn escape_checked(field: &'static str, value: &str) -> Result<String, PoxError> {
    if let Some(c) = value.chars().find(|&c| !is_xml_char(c)) {
        return Err(PoxError::InvalidXmlChar {
            field,
            code: u32::from(c),
        });
    }
    Ok(escape_text(value))
}

fn escape_text(value: &str) -> String {
    let escaped = quick_xml::escape::escape(value);
    if escaped.contains('\r') {
        escaped.replace('\r', "&#13;")
    } else {
        escaped.into_owned()
    }
}

/// Like [`escape_checked`] but infallible: characters XML cannot carry become U+FFFD.
fn escape_lossy(value: &str) -> String {
    if value.chars().all(is_xml_char) {
        escape_text(value)
    } else {
        let cleaned: String = value
            .chars()
            .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
            .collect();
        escape_text(&cleaned)
    }
}

/// Appends `<name>escaped text</name>`.
fn push_element(out: &mut String, name: &str, escaped_text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(escaped_text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn non_empty_escaped(field: &'static str, value: &str) -> Result<String, PoxError> {
    if value.is_empty() {
        return Err(PoxError::EmptyField(field));
    }
    escape_checked(field, value)
}

/// Wraps an operation element in the request envelope.
fn request_envelope(message_identifier: &str, operation_xml: &str) -> Result<String, PoxError> {
    let id = non_empty_escaped("imsx_messageIdentifier", message_identifier)?;
    let mut out = String::with_capacity(400 + operation_xml.len());
    out.push_str(XML_DECLARATION);
    out.push_str("<imsx_POXEnvelopeRequest xmlns=\"");
    out.push_str(NAMESPACE);
    out.push_str("\"><imsx_POXHeader><imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version>");
    push_element(&mut out, "imsx_messageIdentifier", &id);
    out.push_str("</imsx_POXRequestHeaderInfo></imsx_POXHeader><imsx_POXBody>");
    out.push_str(operation_xml);
    out.push_str("</imsx_POXBody></imsx_POXEnvelopeRequest>");
    Ok(out)
}

/// `<resultRecord><sourcedGUID><sourcedId>…</sourcedId></sourcedGUID>` (left open).
fn open_result_record(out: &mut String, sourcedid: &str) -> Result<(), PoxError> {
    let sourcedid = non_empty_escaped("sourcedId", sourcedid)?;
    out.push_str("<resultRecord><sourcedGUID>");
    push_element(out, "sourcedId", &sourcedid);
    out.push_str("</sourcedGUID>");
    Ok(())
}

/// Builds a `replaceResultRequest` envelope.
///
/// Layout (optional parts in brackets), following the IMS example and the Canvas
/// extension documentation:
///
/// ```text
/// replaceResultRequest
///   [submissionDetails [submittedAt] [prioritizeNonToolGrade/] [needsAdditionalReview/]]
///   resultRecord
///     sourcedGUID/sourcedId
///     [result
///       [resultScore (language, textString)]
///       [resultTotalScore (language, textString)]
///       [resultData/(text | url | ltiLaunchUrl)]]
/// ```
///
/// `submissionDetails` comes first, as in Canvas's published examples (Canvas selects
/// elements by path, so the order does not matter to it). `result` is omitted when there is
/// no score, total score or result data.
///
/// Errors: empty message identifier or sourcedid, a score outside 0.0..=1.0 or not finite,
/// a negative or non-finite total score, empty result data or `submittedAt`, characters XML
/// cannot carry, or a request that would carry nothing ([`PoxError::NothingToReplace`]).
pub fn replace_result(req: &ReplaceResult) -> Result<String, PoxError> {
    if req.score.is_none()
        && req.result_total_score.is_none()
        && req.result_data.is_none()
        && req.submitted_at.is_none()
    {
        return Err(PoxError::NothingToReplace);
    }
    let score = req.score.map(format_score).transpose()?;
    let total = req.result_total_score.map(format_total_score).transpose()?;

    let mut op = String::with_capacity(512);
    op.push_str("<replaceResultRequest>");
    if req.submitted_at.is_some() || req.prioritize_non_tool_grade || req.needs_additional_review {
        op.push_str("<submissionDetails>");
        if let Some(at) = &req.submitted_at {
            push_element(&mut op, "submittedAt", &non_empty_escaped("submittedAt", at)?);
        }
        if req.prioritize_non_tool_grade {
            op.push_str("<prioritizeNonToolGrade/>");
        }
        if req.needs_additional_review {
            op.push_str("<needsAdditionalReview/>");
        }
        op.push_str("</submissionDetails>");
    }
    open_result_record(&mut op, &req.sourcedid)?;
    if score.is_some() || total.is_some() || req.result_data.is_some() {
        op.push_str("<result>");
        for (element, text) in [("resultScore", &score), ("resultTotalScore", &total)] {
            if let Some(text) = text {
                op.push('<');
                op.push_str(element);
                op.push('>');
                push_element(&mut op, "language", SCORE_LANGUAGE);
                push_element(&mut op, "textString", text);
                op.push_str("</");
                op.push_str(element);
                op.push('>');
            }
        }
        if let Some(data) = &req.result_data {
            op.push_str("<resultData>");
            push_element(
                &mut op,
                data.element_name(),
                &non_empty_escaped("resultData", data.value())?,
            );
            op.push_str("</resultData>");
        }
        op.push_str("</result>");
    }
    op.push_str("</resultRecord></replaceResultRequest>");
    request_envelope(&req.message_identifier, &op)
}

/// Builds a `readResultRequest` envelope for `sourcedid`.
pub fn read_result(message_identifier: &str, sourcedid: &str) -> Result<String, PoxError> {
    simple_request("readResultRequest", message_identifier, sourcedid)
}

/// Builds a `deleteResultRequest` envelope for `sourcedid`.
pub fn delete_result(message_identifier: &str, sourcedid: &str) -> Result<String, PoxError> {
    simple_request("deleteResultRequest", message_identifier, sourcedid)
}

fn simple_request(operation: &str, message_identifier: &str, sourcedid: &str) -> Result<String, PoxError> {
    let mut op = String::with_capacity(128);
    op.push('<');
    op.push_str(operation);
    op.push('>');
    open_result_record(&mut op, sourcedid)?;
    op.push_str("</resultRecord></");
    op.push_str(operation);
    op.push('>');
    request_envelope(message_identifier, &op)
}

// ---------------------------------------------------------------------------------------
// A small, hardened document model
// ---------------------------------------------------------------------------------------

/// One element: its local name, the concatenated text directly inside it (entity-decoded,
/// line ends normalized), and the index one past its last descendant.
#[derive(Debug)]
struct Element {
    name: String,
    text: String,
    end: usize,
}

/// Elements in document order, so the descendants of element `i` are `i + 1 .. end`.
#[derive(Debug)]
struct Document {
    elements: Vec<Element>,
}

impl Document {
    fn name(&self, idx: usize) -> &str {
        &self.elements[idx].name
    }

    fn text(&self, idx: usize) -> &str {
        &self.elements[idx].text
    }

    /// Direct children of `idx`, in order.
    fn children(&self, idx: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.elements[idx].end;
        // `successors` computes the next index one step ahead, so it must not index past
        // the end of the vector; `take_while` then stops at the parent's end.
        std::iter::successors(Some(idx + 1), move |&i| self.elements.get(i).map(|e| e.end))
            .take_while(move |&i| i < end)
    }

    fn child(&self, idx: usize, name: &str) -> Option<usize> {
        self.children(idx).find(|&c| self.name(c) == name)
    }

    /// Follows a chain of child names from `idx`.
    fn path(&self, idx: usize, names: &[&str]) -> Option<usize> {
        names.iter().try_fold(idx, |at, name| self.child(at, name))
    }

    /// First descendant of `idx` (document order) named `name`.
    fn descendant(&self, idx: usize, name: &str) -> Option<usize> {
        (idx + 1..self.elements[idx].end).find(|&i| self.name(i) == name)
    }

    /// First element in the document named `name`.
    fn find(&self, name: &str) -> Option<usize> {
        self.elements.iter().position(|e| e.name == name)
    }

    /// The first child element of `imsx_POXBody`, i.e. the operation.
    fn operation(&self) -> Option<usize> {
        self.find("imsx_POXBody")
            .and_then(|body| self.children(body).next())
    }
}

/// Quotes the first bytes of a non-XML body for [`PoxError::NotXml`].
fn not_xml(bytes: &[u8]) -> PoxError {
    let cut = bytes.len().min(NOT_XML_QUOTE_BYTES);
    let mut prefix = &bytes[..cut];
    // Do not end on half of a multi-byte character.
    if let Err(e) = std::str::from_utf8(prefix)
        && e.error_len().is_none()
        && cut < bytes.len()
    {
        prefix = &prefix[..e.valid_up_to()];
    }
    let mut first_bytes = String::with_capacity(prefix.len() + 8);
    for c in String::from_utf8_lossy(prefix).chars() {
        if c.is_control() {
            first_bytes.extend(c.escape_default());
        } else {
            first_bytes.push(c);
        }
    }
    if cut < bytes.len() {
        first_bytes.push('…');
    }
    PoxError::NotXml { first_bytes }
}

fn is_xml_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Cheap check before parsing: an XML document starts with `<` after an optional BOM and
/// whitespace, and HTML pages (`<!DOCTYPE html`, `<html`) are not XML for our purposes.
fn looks_like_xml(content: &[u8]) -> bool {
    let start = content
        .iter()
        .position(|&b| !is_xml_whitespace(b))
        .unwrap_or(content.len());
    let head = &content[start..];
    let starts_with_ci =
        |prefix: &[u8]| head.len() >= prefix.len() && head[..prefix.len()].eq_ignore_ascii_case(prefix);
    let name_ends_at = |i: usize| {
        head.get(i)
            .is_none_or(|&b| is_xml_whitespace(b) || b == b'>' || b == b'/')
    };
    if !head.starts_with(b"<") {
        return false;
    }
    let html_doctype = starts_with_ci(b"<!doctype") && {
        let rest = &head[9..];
        let word = rest
            .iter()
            .position(|&b| !is_xml_whitespace(b))
            .map_or(&[][..], |p| &rest[p..]);
        word.len() >= 4
            && word[..4].eq_ignore_ascii_case(b"html")
            && word.get(4).is_none_or(|&b| !b.is_ascii_alphanumeric())
    };
    let html_root = starts_with_ci(b"<html") && name_ends_at(5);
    !(html_doctype || html_root)
}

/// Resolves an entity or character reference; only the five predefined entities and
/// numeric references exist because DOCTYPEs are refused.
fn resolve_reference(name: &str) -> Result<char, PoxError> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix('x') {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            None if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => num.parse().ok(),
            _ => None,
        };
        return code
            .and_then(char::from_u32)
            .filter(|&c| is_xml_char(c))
            .ok_or_else(|| PoxError::Malformed(format!("invalid character reference &{name};")));
    }
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(PoxError::UnknownEntity(other.to_owned())),
    }
}

/// Parses untrusted bytes into a [`Document`], applying every safety rule.
fn parse_document(bytes: &[u8]) -> Result<Document, PoxError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(PoxError::TooLarge {
            len: bytes.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let content = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if !looks_like_xml(content) {
        return Err(not_xml(bytes));
    }
    let text = std::str::from_utf8(content)
        .map_err(|e| PoxError::Malformed(format!("body is not valid UTF-8 (at byte {})", e.valid_up_to())))?;

    let mut reader = Reader::from_str(text);
    let mut elements: Vec<Element> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();

    let open = |elements: &mut Vec<Element>, stack: &[usize], name: &str| -> Result<usize, PoxError> {
        let name = name.to_owned();
        if elements.is_empty() && name.eq_ignore_ascii_case("html") {
            return Err(not_xml(bytes));
        }
        if stack.is_empty() && !elements.is_empty() {
            return Err(PoxError::Malformed(format!("second root element <{name}>")));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(PoxError::Malformed(format!(
                "elements nested deeper than {MAX_DEPTH} levels"
            )));
        }
        elements.push(Element {
            name,
            text: String::new(),
            end: 0,
        });
        Ok(elements.len() - 1)
    };
    let append = |elements: &mut Vec<Element>, stack: &[usize], s: &str| -> Result<(), PoxError> {
        match stack.last() {
            Some(&top) => {
                elements[top].text.push_str(s);
                Ok(())
            }
            None if s.bytes().all(is_xml_whitespace) => Ok(()),
            None if elements.is_empty() => Err(not_xml(bytes)),
            None => Err(PoxError::Malformed("text after the root element".to_owned())),
        }
    };

    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            // Not even a first element could be read: this is not an XML document.
            Err(_) if elements.is_empty() => return Err(not_xml(bytes)),
            Err(e) => return Err(PoxError::Malformed(e.to_string())),
        };
        match event {
            Event::Start(e) => {
                let idx = open(&mut elements, &stack, e.local_name().as_ref())?;
                stack.push(idx);
            }
            Event::Empty(e) => {
                let idx = open(&mut elements, &stack, e.local_name().as_ref())?;
                elements[idx].end = idx + 1;
            }
            Event::End(_) => {
                let idx = stack
                    .pop()
                    .ok_or_else(|| PoxError::Malformed("unmatched end tag".to_owned()))?;
                elements[idx].end = elements.len();
            }
            Event::Text(t) => append(&mut elements, &stack, &t.xml10_content())?,
            Event::CData(c) => {
                if stack.is_empty() {
                    return Err(PoxError::Malformed("CDATA outside the root element".to_owned()));
                }
                append(&mut elements, &stack, &c.xml10_content())?;
            }
            Event::GeneralRef(r) => {
                if stack.is_empty() {
                    return Err(PoxError::Malformed(
                        "reference outside the root element".to_owned(),
                    ));
                }
                let c = resolve_reference(&r)?;
                append(&mut elements, &stack, c.encode_utf8(&mut [0u8; 4]))?;
            }
            Event::DocType(_) => return Err(PoxError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(&open_idx) = stack.last() {
        return Err(PoxError::Malformed(format!(
            "document ends inside <{}>",
            elements[open_idx].name
        )));
    }
    if elements.is_empty() {
        return Err(not_xml(bytes));
    }
    Ok(Document { elements })
}

/// Text of an element, trimmed; `None` when the element is missing or blank.
fn trimmed(doc: &Document, idx: Option<usize>) -> Option<String> {
    idx.map(|i| doc.text(i).trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------
// Response parser (tool side)
// ---------------------------------------------------------------------------------------

/// `imsx_codeMajor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeMajor {
    /// `success`.
    Success,
    /// `processing`: accepted but not final; worth a later `readResult`.
    Processing,
    /// `failure`.
    Failure,
    /// `unsupported`.
    Unsupported,
    /// Any other value, trimmed, as sent.
    Other(String),
}

impl CodeMajor {
    /// Parses a code, trimming whitespace and ignoring ASCII case.
    pub fn parse(text: &str) -> Self {
        let t = text.trim();
        match t.to_ascii_lowercase().as_str() {
            "success" => CodeMajor::Success,
            "processing" => CodeMajor::Processing,
            "failure" => CodeMajor::Failure,
            "unsupported" => CodeMajor::Unsupported,
            _ => CodeMajor::Other(t.to_owned()),
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            CodeMajor::Success => "success",
            CodeMajor::Processing => "processing",
            CodeMajor::Failure => "failure",
            CodeMajor::Unsupported => "unsupported",
            CodeMajor::Other(s) => s,
        }
    }
}

/// The score in a `readResultResponse`.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadScore {
    /// The response is not a `readResultResponse`.
    NotARead,
    /// `textString` is missing or blank: the LMS has no grade (Canvas, Moodle and Sakai all
    /// answer this way for an ungraded submission).
    Empty,
    /// A finite number. It is *not* range-checked: Moodle reports `grade / max grade`
    /// unrounded, which can exceed 1.0 for extra credit.
    Score(f64),
    /// A non-blank value that is not a finite number (trimmed, as sent).
    Invalid(String),
}

/// A parsed `imsx_POXEnvelopeResponse`.
#[derive(Debug, Clone, PartialEq)]
pub struct PoxResponse {
    /// `imsx_codeMajor`.
    pub code_major: CodeMajor,
    /// `imsx_severity` (`status`, `warning`, `error`).
    pub severity: Option<String>,
    /// `imsx_description`, trimmed. Store it raw: it is how failures are classified.
    pub description: Option<String>,
    /// The response's own `imsx_messageIdentifier`.
    pub message_identifier: Option<String>,
    /// `imsx_messageRefIdentifier`: the request's identifier, echoed.
    pub message_ref_identifier: Option<String>,
    /// The first `imsx_operationRefIdentifier` (`replaceResult` in Canvas,
    /// `replaceResultRequest` in Moodle and Sakai).
    pub operation_ref_identifier: Option<String>,
    /// `imsx_codeMinor/imsx_codeMinorField` (name, value) pairs; a missing name is the XSD
    /// default `TargetEndSystem`.
    pub code_minor: Vec<(String, String)>,
    /// Canvas `ext_canvas_error_code`, e.g. `user_not_in_course`.
    pub ext_canvas_error_code: Option<String>,
    /// Local name of the first child of `imsx_POXBody`, e.g. `readResultResponse`.
    pub operation: Option<String>,
    /// The score of a `readResultResponse`.
    pub read_score: ReadScore,
}

impl PoxResponse {
    /// Whether `imsx_codeMajor` is `success`. (Decide overall success from this *and* the
    /// HTTP status.)
    pub fn is_success(&self) -> bool {
        self.code_major == CodeMajor::Success
    }
}

/// Parses an outcomes response from an LMS.
///
/// Text values are trimmed and blank ones become `None`. Element lookup is by local name,
/// taking the first occurrence in document order, so namespace prefixes and the small
/// structural differences between LMSs do not matter.
pub fn parse_response(bytes: &[u8]) -> Result<PoxResponse, PoxError> {
    let doc = parse_document(bytes)?;
    let code_major = doc.find("imsx_codeMajor").ok_or(PoxError::MissingCodeMajor)?;
    let field = |name: &str| trimmed(&doc, doc.find(name));

    let code_minor = (0..doc.elements.len())
        .filter(|&i| doc.name(i) == "imsx_codeMinorField")
        .map(|i| {
            let name = trimmed(&doc, doc.child(i, "imsx_codeMinorFieldName"))
                .unwrap_or_else(|| "TargetEndSystem".to_owned());
            let value = trimmed(&doc, doc.child(i, "imsx_codeMinorFieldValue")).unwrap_or_default();
            (name, value)
        })
        .collect();

    let operation = doc.operation();
    let read_score = match operation {
        Some(op) if doc.name(op) == "readResultResponse" => {
            let text = doc
                .path(op, &["result", "resultScore", "textString"])
                .map(|i| doc.text(i).trim());
            match text {
                None | Some("") => ReadScore::Empty,
                Some(t) => match t.parse::<f64>() {
                    Ok(v) if v.is_finite() => ReadScore::Score(v),
                    _ => ReadScore::Invalid(t.to_owned()),
                },
            }
        }
        _ => ReadScore::NotARead,
    };

    Ok(PoxResponse {
        code_major: CodeMajor::parse(doc.text(code_major)),
        severity: field("imsx_severity"),
        description: field("imsx_description"),
        message_identifier: field("imsx_messageIdentifier"),
        message_ref_identifier: field("imsx_messageRefIdentifier"),
        operation_ref_identifier: field("imsx_operationRefIdentifier"),
        code_minor,
        ext_canvas_error_code: field("ext_canvas_error_code"),
        operation: operation.map(|op| doc.name(op).to_owned()),
        read_score,
    })
}

// ---------------------------------------------------------------------------------------
// Request parser and response builder (sandbox LMS side)
// ---------------------------------------------------------------------------------------

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
mod tests {
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

    #[test]
    fn xml_without_code_major_is_reported() {
        for xml in [
            "<imsx_POXEnvelopeResponse><imsx_POXHeader/></imsx_POXEnvelopeResponse>",
            "<?xml version=\"1.0\"?><error><message>Internal Server Error</message></error>",
        ] {
            assert_eq!(
                parse_response(xml.as_bytes()),
                Err(PoxError::MissingCodeMajor),
                "{xml}"
            );
        }
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
        assert_eq!(parse_request(laughs.as_bytes()), Err(PoxError::Doctype));
        let plain = "<!-- c --><!DOCTYPE imsx_POXEnvelopeResponse><imsx_POXEnvelopeResponse/>";
        assert_eq!(parse_response(plain.as_bytes()), Err(PoxError::Doctype));
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

    #[test]
    fn predefined_and_numeric_references_are_expanded() {
        let xml = "<r><imsx_codeMajor>success</imsx_codeMajor><imsx_description>&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#x1F393;</imsx_description></r>";
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
        let mut big = b"<imsx_POXEnvelopeResponse><imsx_codeMajor>success</imsx_codeMajor><d>".to_vec();
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
        assert!(matches!(parse_request(&garbage), Err(PoxError::TooLarge { .. })));
    }

    #[test]
    fn html_and_text_bodies_are_not_xml() {
        let html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1><p>The upstream server returned an invalid response while processing the outcome request.</p></body></html>";
        let Err(PoxError::NotXml { first_bytes }) = parse_response(html.as_bytes()) else {
            panic!("expected NotXml");
        };
        assert!(
            first_bytes.starts_with("<!DOCTYPE html>\\n<html lang=\"en\">\\n<head><title>502 Bad Gateway")
        );
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
        assert!(parse_response(ok_depth.as_bytes()).is_ok());
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a><imsx_codeMajor>succ\xe8s</imsx_codeMajor></a>";
        assert!(matches!(parse_response(latin1), Err(PoxError::Malformed(_))));
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
        assert!(xml.contains(
            "<imsx_messageRefIdentifier>a\u{fffd}b&lt;c&gt;&amp;&#13;</imsx_messageRefIdentifier>"
        ));
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
        fn score_text_round_trips(score in 0.0f64..=1.0) {
            let text = format_score(score).unwrap();
            prop_assert!(text.contains('.') && !text.contains(['e', 'E', '-', '+']), "{}", text);
            prop_assert_eq!(text.parse::<f64>().unwrap(), score);
        }

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
        fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_response(&bytes);
            let _ = parse_request(&bytes);
        }

        #[test]
        fn parsers_never_panic_on_mutated_envelopes(
            index in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = CANVAS_READ.replace("SCORE", "0.5").into_bytes();
            let i = index.index(bytes.len());
            if truncate { bytes.truncate(i) } else { bytes[i] = byte }
            let _ = parse_response(&bytes);
            let _ = parse_request(&bytes);
        }
    }
}
