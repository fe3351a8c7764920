//! LTI 1.1 Basic Outcomes POX ("Plain Old XML") envelopes: request builders and a tolerant
//! response parser for the tool side, on a small hardened document model that the sandbox
//! LMS (its own crate) also reads requests with.
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
pub const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// The `language` sent with scores.
pub const SCORE_LANGUAGE: &str = "en";

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
    /// The response's root is not `imsx_POXEnvelopeResponse`.
    #[error("the XML answer is not an outcomes response (its root element is {0})")]
    NotAnEnvelope(String),
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
pub fn is_xml_char(c: char) -> bool {
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

/// Like [`escape_checked`] but infallible: characters XML cannot carry become U+FFFD
/// (for echoing untrusted values, as an LMS-side builder does).
pub fn escape_lossy(value: &str) -> String {
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
pub fn push_element(out: &mut String, name: &str, escaped_text: &str) {
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
pub struct Element {
    name: String,
    text: String,
    end: usize,
}

/// Elements in document order, so the descendants of element `i` are `i + 1 .. end`.
#[derive(Debug)]
pub struct Document {
    elements: Vec<Element>,
}

impl Document {
    /// How many elements the document has.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the document has no element (never true for a parsed document).
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    pub fn name(&self, idx: usize) -> &str {
        &self.elements[idx].name
    }

    pub fn text(&self, idx: usize) -> &str {
        &self.elements[idx].text
    }

    /// Direct children of `idx`, in order.
    pub fn children(&self, idx: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.elements[idx].end;
        // `successors` computes the next index one step ahead, so it must not index past
        // the end of the vector; `take_while` then stops at the parent's end.
        std::iter::successors(Some(idx + 1), move |&i| self.elements.get(i).map(|e| e.end))
            .take_while(move |&i| i < end)
    }

    pub fn child(&self, idx: usize, name: &str) -> Option<usize> {
        self.children(idx).find(|&c| self.name(c) == name)
    }

    /// Follows a chain of child names from `idx`.
    pub fn path(&self, idx: usize, names: &[&str]) -> Option<usize> {
        names.iter().try_fold(idx, |at, name| self.child(at, name))
    }

    /// First descendant of `idx` (document order) named `name`.
    pub fn descendant(&self, idx: usize, name: &str) -> Option<usize> {
        (idx + 1..self.elements[idx].end).find(|&i| self.name(i) == name)
    }

    /// First element in the document named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.elements.iter().position(|e| e.name == name)
    }

    /// The first child element of `imsx_POXBody`, i.e. the operation.
    pub fn operation(&self) -> Option<usize> {
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
pub fn parse_document(bytes: &[u8]) -> Result<Document, PoxError> {
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
pub fn trimmed(doc: &Document, idx: Option<usize>) -> Option<String> {
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

/// The offset where a POX response's XML starts after leading non-XML text, if there is
/// such text: the first `<?xml` or `<imsx_POXEnvelopeResponse` (with or without a
/// namespace prefix) that is not at the start of the body (after a BOM and whitespace).
///
/// Moodle in debug mode prints PHP notices (`<br />\n<b>Notice</b>: …` or
/// `PHP Notice: …`) before the XML of an answer it otherwise gave normally.
fn xml_start_after_junk(bytes: &[u8]) -> Option<usize> {
    const DECL: &[u8] = b"<?xml";
    const ROOT: &[u8] = b"imsx_POXEnvelopeResponse";
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let bom = bytes.len() - body.len();
    let lead = body.iter().position(|&b| !is_xml_whitespace(b))?;
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let ends_name = |i: usize| {
        body.get(i)
            .is_none_or(|&b| is_xml_whitespace(b) || b == b'>' || b == b'/')
    };
    let starts_xml = |i: usize| {
        if body[i..].starts_with(DECL) {
            return ends_name(i + DECL.len());
        }
        // `<imsx_POXEnvelopeResponse` or `<prefix:imsx_POXEnvelopeResponse`.
        let mut name = i + 1;
        let prefix_len = body[name..].iter().take_while(|&&b| is_name_byte(b)).count();
        if prefix_len > 0 && body.get(name + prefix_len) == Some(&b':') {
            name += prefix_len + 1;
        }
        body[name..].starts_with(ROOT) && ends_name(name + ROOT.len())
    };
    if starts_xml(lead) {
        return None;
    }
    (lead + 1..body.len())
        .filter(|&i| body[i] == b'<')
        .find(|&i| starts_xml(i))
        .map(|i| bom + i)
}

/// Parses an outcomes response from an LMS.
///
/// Text values are trimmed and blank ones become `None`. Element lookup is by local name,
/// taking the first occurrence in document order, so namespace prefixes and the small
/// structural differences between LMSs do not matter.
///
/// Leading non-XML text (PHP notices that Moodle prints in debug mode, in HTML or as plain
/// text) is skipped when a POX envelope follows it: the parse starts at the first `<?xml`
/// or `<imsx_POXEnvelopeResponse` (any prefix) and applies every rule of
/// [`parse_document`] (size cap, no DOCTYPE, no entities) to the rest. A body with no POX
/// envelope (an HTML page) fails exactly as before, quoting the body's first bytes.
pub fn parse_response(bytes: &[u8]) -> Result<PoxResponse, PoxError> {
    let doc = match parse_document(bytes) {
        Ok(doc) => doc,
        Err(first @ (PoxError::NotXml { .. } | PoxError::Malformed(_))) => {
            match xml_start_after_junk(bytes) {
                Some(start) => match parse_document(&bytes[start..]) {
                    Ok(doc) => doc,
                    // What follows did not even start as XML: report the body as a whole.
                    Err(PoxError::NotXml { .. }) => return Err(first),
                    Err(e) => return Err(e),
                },
                None => return Err(first),
            }
        }
        Err(e) => return Err(e),
    };
    // The envelope and the header path, as the LTI 1.1 outcomes XSD has them: a code
    // found anywhere else (another root, the body, a description) decides nothing.
    if doc.elements.is_empty() || doc.name(0) != "imsx_POXEnvelopeResponse" {
        let root = if doc.elements.is_empty() {
            "missing".to_owned()
        } else {
            doc.name(0).to_owned()
        };
        return Err(PoxError::NotAnEnvelope(root));
    }
    let info = doc.path(0, &["imsx_POXHeader", "imsx_POXResponseHeaderInfo"]);
    let status = info.and_then(|i| doc.child(i, "imsx_statusInfo"));
    let code_major = status
        .and_then(|s| doc.child(s, "imsx_codeMajor"))
        .ok_or(PoxError::MissingCodeMajor)?;
    let in_status = |name: &str| trimmed(&doc, status.and_then(|s| doc.child(s, name)));

    let code_minor = status
        .and_then(|s| doc.child(s, "imsx_codeMinor"))
        .map_or_else(Vec::new, |m| doc.children(m).collect::<Vec<_>>())
        .into_iter()
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
        severity: in_status("imsx_severity"),
        description: in_status("imsx_description"),
        message_identifier: trimmed(&doc, info.and_then(|i| doc.child(i, "imsx_messageIdentifier"))),
        message_ref_identifier: in_status("imsx_messageRefIdentifier"),
        operation_ref_identifier: in_status("imsx_operationRefIdentifier"),
        code_minor,
        // Canvas puts it beside imsx_codeMajor in the status info; found wherever it is.
        ext_canvas_error_code: trimmed(&doc, doc.find("ext_canvas_error_code")),
        operation: operation.map(|op| doc.name(op).to_owned()),
        read_score,
    })
}

#[cfg(test)]
mod tests;
