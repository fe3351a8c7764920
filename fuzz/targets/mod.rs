//! The bodies of Passback's fuzz targets, in one place for two users:
//!
//! * the cargo-fuzz binaries (`fuzz/fuzz_targets/<name>.rs`, one `fuzz_target!` each), which
//!   libFuzzer drives with coverage-guided inputs;
//! * the corpus replay test (`tests/integration/fuzz_replay.rs`), which runs every file of
//!   every corpus (`fuzz/corpus/<name>/`) through the same functions on every test run.
//!
//! Each target takes arbitrary bytes and panics only on a finding: a panic of the code under
//! test, or a broken invariant asserted here (a verifier accepting what was not signed for
//! it, a parse that does not round-trip, an import report that miscounts or names a secret,
//! a dry run that changed the ledger). Nothing here touches the network or the OS keyring:
//! the importers run against an in-memory ledger with an in-memory secret store.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

use passback::Passback;
use passback::error::ErrorKind;
use passback::import::proxy::{self, MacCheck};
use passback::import::{Format, ImportOptions, ImportReport, MacDigest};
use passback::lti11::oauth::{self, NonceCache, OAuthSigner, SignatureMethod, VerifyError};
use passback::lti11::pox;
use passback::model::{AttemptOutcome, NewLti11Platform, NewLtiaasPlatform};
use serde_json::Value;
use url::Url;

/// A target: arbitrary bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its binary and of its corpus folder).
pub const TARGETS: &[(&str, Target)] = &[
    ("import_tool_csv", import_tool_csv),
    ("import_edx_log", import_edx_log),
    ("import_edx_dump", import_edx_dump),
    ("import_caliper", import_caliper),
    ("import_launches", import_launches),
    ("import_proxy", import_proxy),
    ("import_idtoken", import_idtoken),
    ("import_gradebook", import_gradebook),
    ("import_detect", import_detect),
    ("text_json", text_json),
    ("pox_response", pox_response),
    ("oauth_header", oauth_header),
    ("oauth_verify", oauth_verify),
    ("proxy_mac", proxy_mac),
    ("ltiaas_classify", ltiaas_classify),
];

// ---------------------------------------------------------------------------------------
// Structured inputs
// ---------------------------------------------------------------------------------------

/// Takes typed values off the front of a fuzz input (zeros once it runs out), so one
/// byte string can stand for a whole request.
struct Take<'a> {
    data: &'a [u8],
}

impl<'a> Take<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |n, _| (n << 8) | u64::from(self.byte()))
    }

    /// Bytes up to the next `\n` (or the end).
    fn line(&mut self) -> &'a [u8] {
        let end = self
            .data
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(self.data.len());
        let (line, rest) = self.data.split_at(end);
        self.data = rest.get(1..).unwrap_or_default();
        line
    }

    /// A line as text (invalid UTF-8 replaced).
    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.line()).into_owned()
    }

    fn rest(self) -> &'a [u8] {
        self.data
    }
}

// ---------------------------------------------------------------------------------------
// The importers, whole, against an in-memory ledger
// ---------------------------------------------------------------------------------------

const LTI11_PLATFORM: &str = "canvas";
const CONSUMER_KEY: &str = "canvas-key";
/// The fixtures' secrets (test values), so their signatures and MACs verify.
const CONSUMER_SECRET: &str = "canvas-secret";
const LTIAAS_PLATFORM: &str = "ltiaas";
const LTIAAS_API_KEY: &str = "fuzz-ltiaas-api-key";
const PROXY_SECRET: &str = "proxy-shared-secret";
const LAUNCH_URL: &str = "https://tool.example.org/lti/launch";
const COURSE: &str = "bio-101";

/// The secrets an import report must never show (unless the file itself carried them).
const SECRETS: [&str; 3] = [CONSUMER_SECRET, LTIAAS_API_KEY, PROXY_SECRET];

/// Files imported (for real) into the ledger the fuzzed dry runs read: learners, activities
/// with Canvas ids and titles, Open edX records, so the joins of every format have
/// something to find.
const LEDGER_SEED: &[(&str, &[u8], Option<&str>)] = &[
    (
        "tool-grades.csv",
        include_bytes!("../../tests/fixtures/import/tool-grades.csv"),
        Some(LTI11_PLATFORM),
    ),
    (
        "launches.txt",
        include_bytes!("../../tests/fixtures/import/launches.txt"),
        None,
    ),
    (
        "caliper-events.json",
        include_bytes!("../../tests/fixtures/import/caliper-events.json"),
        None,
    ),
    (
        "edx-lti-provider.json",
        include_bytes!("../../tests/fixtures/import/edx-lti-provider.json"),
        None,
    ),
];

/// A ledger with an LTI 1.1 and an LTIAAS platform and the seed files imported, the
/// runtime that drives it, and the folder inputs are written to (one file at a time).
struct Env {
    rt: tokio::runtime::Runtime,
    pb: Passback,
    dir: PathBuf,
    /// Imports run one at a time (two tests of the replay binary may reach it at once).
    lock: Mutex<()>,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = std::env::temp_dir().join(format!("passback-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for inputs");
        let file = dir.join("input");
        let pb = rt.block_on(async {
            let pb = Passback::open_in_memory().await.expect("an in-memory ledger");
            pb.add_lti11_platform(
                NewLti11Platform {
                    name: LTI11_PLATFORM.into(),
                    consumer_key: CONSUMER_KEY.into(),
                    allowed_hosts: vec!["canvas.example.edu".into()],
                    allow_http: false,
                },
                CONSUMER_SECRET,
            )
            .await
            .expect("the LTI 1.1 platform");
            pb.add_ltiaas_platform(
                NewLtiaasPlatform {
                    name: LTIAAS_PLATFORM.into(),
                    base_url: "https://example.ltiaas.com".into(),
                },
                LTIAAS_API_KEY,
            )
            .await
            .expect("the LTIAAS platform");
            for (name, bytes, platform) in LEDGER_SEED {
                std::fs::write(&file, bytes).expect("write a seed file");
                let opts = ImportOptions {
                    platform: platform.map(str::to_string),
                    launch_url: Some(LAUNCH_URL.into()),
                    ..ImportOptions::default()
                };
                pb.import_file(&file, &opts, &mut passback::progress::Silent)
                    .await
                    .unwrap_or_else(|e| panic!("seeding the ledger with {name}: {e}"));
            }
            pb
        });
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_dir(&dir);
        Env {
            rt,
            pb,
            dir,
            lock: Mutex::new(()),
        }
    })
}

/// How each format is imported: the options a user would give it.
fn options(format: Option<Format>, detected: Option<Format>) -> ImportOptions {
    let base = ImportOptions {
        format,
        dry_run: true,
        ..ImportOptions::default()
    };
    match format.or(detected) {
        Some(Format::ToolCsv | Format::EdxLog) => ImportOptions {
            platform: Some(LTI11_PLATFORM.into()),
            ..base
        },
        Some(Format::Launches | Format::Caliper) => ImportOptions {
            launch_url: Some(LAUNCH_URL.into()),
            ..base
        },
        Some(Format::Proxy) => ImportOptions {
            platform: Some(LTI11_PLATFORM.into()),
            proxy_secret: Some(PROXY_SECRET.into()),
            ..base
        },
        Some(Format::LtiaasIdtoken) => ImportOptions {
            platform: Some(LTIAAS_PLATFORM.into()),
            ..base
        },
        Some(Format::CanvasGradebook | Format::MoodleGradebook) => ImportOptions {
            platform: Some(LTI11_PLATFORM.into()),
            context: Some(COURSE.into()),
            exported_at: Some("2026-11-21T09:00:00Z".into()),
            ..base
        },
        Some(Format::EdxDump) | None => base,
    }
}

/// What a dry run must leave as it was: (grades, import batches), two cheap counts.
async fn ledger_fingerprint(pb: &Passback) -> (i64, usize) {
    let grades = pb.store().grade_count().await.expect("the grade count");
    let batches = pb.store().list_batches().await.expect("the import batches");
    (grades, batches.len())
}

/// Dry-run an import of `data` (as `format`, or detected when `None`) and check the report.
fn import(format: Option<Format>, data: &[u8]) {
    import_named(format, data, None);
}

/// A file name made of the input's first line (what a name can hold of it).
fn file_name_of(data: &[u8]) -> String {
    let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut name = String::new();
    for c in String::from_utf8_lossy(first).chars() {
        if !matches!(c, '/' | '\0') && name.len() + c.len_utf8() <= 200 {
            name.push(c);
        }
    }
    match name.as_str() {
        "" | "." | ".." => "export.csv".into(),
        _ => name,
    }
}

/// [`import`], with the file named `name` (and, for a gradebook, no `--exported-at`, so
/// the export time comes from the name or the file).
fn import_named(format: Option<Format>, data: &[u8], name: Option<String>) {
    let env = env();
    let _one_at_a_time = env.lock.lock().unwrap_or_else(PoisonError::into_inner);
    std::fs::create_dir_all(&env.dir).expect("a folder for inputs");
    let file = env.dir.join(name.as_deref().unwrap_or("input"));
    std::fs::write(&file, data).expect("write the input");
    let detected = match format {
        Some(_) => None,
        None => passback::import::detect::detect(&file).expect("detect"),
    };
    let mut opts = options(format, detected);
    if name.is_some() {
        opts.exported_at = None;
    }
    let (before, result, after) = env.rt.block_on(async {
        let before = ledger_fingerprint(&env.pb).await;
        let result = env
            .pb
            .import_file(&file, &opts, &mut passback::progress::Silent)
            .await;
        (before, result, ledger_fingerprint(&env.pb).await)
    });
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir(&env.dir);
    assert_eq!(before, after, "a dry run changed the ledger");
    match result {
        Ok(report) => check_report(data, format.or(detected), &report),
        // A whole file may be refused (not this format, no course to join, …), naming the
        // file. A bad row is quarantined by line, never an error that ends the import; and
        // the ledger, the keyring or an internal error failing is a finding.
        Err(e) => {
            assert!(
                matches!(e.kind, ErrorKind::Invalid | ErrorKind::NotFound),
                "the import failed with {:?}: {}",
                e.kind,
                e.message
            );
            let file = file.display().to_string();
            assert!(
                e.message.starts_with(&file),
                "the import failed without naming the file (a row's problem?): {}",
                e.message
            );
        }
    }
}

/// An upper bound of the line ends in `data`, whatever its encoding and line-end style.
fn line_ends(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn check_report(data: &[u8], format: Option<Format>, r: &ImportReport) {
    if let Some(f) = format {
        assert_eq!(r.format, f, "the report names another format");
    }
    assert!(r.dry_run && r.batch_id.is_none(), "a dry run made a batch");
    assert_eq!(r.status, "dry_run");
    let c = r.counts;
    assert_eq!(
        c.read,
        c.imported + c.unchanged + c.quarantined + c.skipped,
        "every record read is imported, unchanged, quarantined or skipped exactly once: {c:?}"
    );
    assert!(c.older <= c.imported + c.unchanged, "{c:?}");
    assert!(c.not_learners <= c.read, "{c:?}");
    // A line number names a line of the file: at most one per line end (`\n`, `\r\n`, or
    // a lone `\r`, which the CSV reader counts too), plus one. UTF-16 has such a byte
    // for each of its line ends as well.
    let lines = line_ends(data) + 1;
    for issue in &r.issues {
        assert!(
            (1..=lines).contains(&issue.line),
            "issue at line {} of a {lines}-line file: {issue:?}",
            issue.line
        );
        assert!(!issue.reason.trim().is_empty(), "an issue without a reason");
    }
    let json = serde_json::to_string(r).expect("the report as JSON");
    for secret in SECRETS {
        if !contains(data, secret.as_bytes()) {
            assert!(!json.contains(secret), "the report shows a secret");
        }
    }
}

pub fn import_tool_csv(data: &[u8]) {
    import(Some(Format::ToolCsv), data);
}

pub fn import_edx_log(data: &[u8]) {
    import(Some(Format::EdxLog), data);
}

pub fn import_edx_dump(data: &[u8]) {
    import(Some(Format::EdxDump), data);
}

pub fn import_caliper(data: &[u8]) {
    import(Some(Format::Caliper), data);
}

pub fn import_launches(data: &[u8]) {
    import(Some(Format::Launches), data);
}

pub fn import_proxy(data: &[u8]) {
    import(Some(Format::Proxy), data);
}

pub fn import_idtoken(data: &[u8]) {
    import(Some(Format::LtiaasIdtoken), data);
}

/// The Canvas and the Moodle gradebook importers, both on every input; Canvas once more
/// with the file named by the input's first line, which then tells the export's time.
pub fn import_gradebook(data: &[u8]) {
    import(Some(Format::CanvasGradebook), data);
    import(Some(Format::MoodleGradebook), data);
    import_named(Some(Format::CanvasGradebook), data, Some(file_name_of(data)));
}

/// Detection, then the importer it chose (what `passback import FILE` does).
pub fn import_detect(data: &[u8]) {
    if let Ok(head) = std::str::from_utf8(&data[..data.len().min(64 * 1024)]) {
        let _ = passback::import::detect::detect_text(head);
    }
    import(None, data);
}

// ---------------------------------------------------------------------------------------
// The text and JSON readers every importer shares
// ---------------------------------------------------------------------------------------

fn json_records(data: &[u8]) -> Vec<Result<(u64, Value), passback::import::json::JsonIssue>> {
    passback::import::json::JsonRecords::new(std::io::BufReader::new(data)).collect()
}

pub fn text_json(data: &[u8]) {
    // The streaming JSON reader: bounded, line-numbered, and the same records as a
    // whole-document parse where the document is an array of records.
    let lines = line_ends(data) + 1;
    let records = json_records(data);
    let mut last = 0;
    for (i, r) in records.iter().enumerate() {
        let line = match r {
            Ok((line, _)) => *line,
            Err(e) => {
                assert!(!e.reason.is_empty());
                if e.fatal {
                    assert_eq!(i + 1, records.len(), "records after a fatal issue");
                }
                e.line
            }
        };
        assert!((1..=lines).contains(&line), "record at line {line} of {lines}");
        assert!(line >= last, "records out of line order");
        last = line;
    }
    // Valid JSON read record by record: one record per element, each the element itself
    // (or refused on its own, as an object naming a key twice is), none lost or merged.
    let same_records =
        |records: &[Result<(u64, Value), passback::import::json::JsonIssue>], want: &[Value], what: &str| {
            assert_eq!(records.len(), want.len(), "the records of {what}");
            for (got, want) in records.iter().zip(want) {
                match got {
                    Ok((_, v)) => assert_eq!(v, want, "a record of {what}"),
                    Err(e) => assert!(!e.fatal, "{what} read as broken: {e:?}"),
                }
            }
        };
    if let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(data)
        && items.iter().all(|v| v.is_object() || v.is_array())
    {
        same_records(&records, &items, "a JSON array");
    }
    if !contains(data, b"\"data\"")
        && let Ok(text) = std::str::from_utf8(data)
    {
        let objects: Option<Vec<Value>> = text
            .lines()
            // Blank by JSON's whitespace (not Unicode's: a vertical tab is no separator).
            .filter(|l| !l.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')))
            .map(|l| serde_json::from_str::<Value>(l).ok().filter(Value::is_object))
            .collect();
        if let Some(objects) = objects {
            same_records(&records, &objects, "NDJSON");
        }
    }

    // Decoding and line splitting: UTF-8 text without a BOM reads back as itself.
    let mut lines_read = Vec::new();
    let mut reader = passback::import::text::Input::from_reader(std::io::Cursor::new(data.to_vec())).lines();
    while let Some((n, line)) = reader.next_bytes().expect("in-memory input reads") {
        assert_eq!(n, lines_read.len() as u64 + 1);
        lines_read.push(line.to_vec());
    }
    if std::str::from_utf8(data).is_ok() && !data.starts_with(b"\xEF\xBB\xBF") {
        let mut want: Vec<Vec<u8>> = data
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect();
        if data.ends_with(b"\n") || data.is_empty() {
            want.pop();
        }
        assert_eq!(lines_read, want, "UTF-8 lines");
    }

    // The small parsers.
    if let Ok(text) = std::str::from_utf8(data) {
        use passback::import::text::{normalize_time, parse_number, sniff_delimiter, unix_seconds};
        if text.len() <= 64 {
            if let Some(t) = normalize_time(text) {
                assert_eq!(
                    normalize_time(&t).as_deref(),
                    Some(t.as_str()),
                    "normalized twice"
                );
                assert!(unix_seconds(&t).is_some(), "a normalized time is RFC 3339");
            }
            if let Some(n) = parse_number(text) {
                assert!(n.is_finite());
            }
        }
        assert!(matches!(sniff_delimiter(text), b',' | b';' | b'\t'));
    }
}

// ---------------------------------------------------------------------------------------
// LTI 1.1 outcomes: the POX response parser, the request builders, the classifier
// ---------------------------------------------------------------------------------------

/// An LMS's answer in the shape an outcome exchange reads it, classified for a
/// `replaceResult` and for a `readResult`.
fn classify_pox(body: &[u8], parsed: &Result<pox::PoxResponse, pox::PoxError>) {
    use passback::lti11::classify::{Observed, classify};
    for status in [200u16, 401, 403, 404, 422, 429, 500] {
        for op in ["replaceResultResponse", "readResultResponse"] {
            let mut obs = Observed {
                http_status: Some(status),
                expected_message_identifier: Some("fuzz-request-1".into()),
                expected_operation: Some(op.into()),
                says_rate_limited: passback::http::says_rate_limit_exceeded(body),
                ..Observed::default()
            };
            match parsed {
                Ok(p) => obs.record_pox(p),
                Err(e) => {
                    obs.body_malformed = matches!(e, pox::PoxError::Malformed(_));
                    obs.body_problem = Some(e.to_string());
                }
            }
            let v = classify(&obs);
            assert!(!v.description.is_empty());
            if v.outcome == AttemptOutcome::Success {
                let p = parsed.as_ref().expect("a success needs a parsed answer");
                assert!((200..300).contains(&status), "success with HTTP {status}");
                assert!(p.is_success(), "success without codeMajor success");
                assert!(v.error_class.is_none());
                if let Some(r) = &p.message_ref_identifier {
                    assert!(r.trim().is_empty() || r.trim().eq_ignore_ascii_case("fuzz-request-1"));
                }
                if op == "readResultResponse" {
                    assert_eq!(
                        p.operation.as_deref(),
                        Some(op),
                        "a read confirmed by no read answer"
                    );
                }
            } else {
                assert!(
                    v.error_class.is_some() || v.outcome == AttemptOutcome::Processing,
                    "{v:?}"
                );
            }
        }
    }
}

/// A response envelope as an LMS writes one (the fields escaped as the LMS-side builder
/// escapes them), parsed back: every field must come back as written (trimmed).
fn pox_response_round_trip(data: &[u8]) {
    let mut t = Take::new(data);
    let major = [
        "success",
        "failure",
        "processing",
        "unsupported",
        "Success",
        " failure ",
    ][usize::from(t.byte()) % 6];
    let description = t.text();
    let message_ref = t.text();
    let read = t.byte() & 1 == 1;
    let score = t.text();
    let esc = pox::escape_lossy;
    let mut xml = String::from(pox::XML_DECLARATION);
    xml.push_str("<imsx_POXEnvelopeResponse xmlns=\"");
    xml.push_str(pox::NAMESPACE);
    xml.push_str("\"><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version>");
    pox::push_element(&mut xml, "imsx_messageIdentifier", "lms-1");
    xml.push_str("<imsx_statusInfo>");
    pox::push_element(&mut xml, "imsx_codeMajor", major);
    pox::push_element(&mut xml, "imsx_severity", "status");
    pox::push_element(&mut xml, "imsx_description", &esc(&description));
    pox::push_element(&mut xml, "imsx_messageRefIdentifier", &esc(&message_ref));
    xml.push_str("</imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody>");
    if read {
        xml.push_str("<readResultResponse><result><resultScore><language>en</language>");
        pox::push_element(&mut xml, "textString", &esc(&score));
        xml.push_str("</resultScore></result></readResultResponse>");
    } else {
        xml.push_str("<replaceResultResponse/>");
    }
    xml.push_str("</imsx_POXBody></imsx_POXEnvelopeResponse>");
    let p = pox::parse_response(xml.as_bytes()).expect("an envelope the builder wrote parses");
    assert_eq!(p.code_major, pox::CodeMajor::parse(major));
    // What XML can carry of a value: characters it cannot become U+FFFD; a CR is kept
    // (escaped), and the parser trims.
    let carried = |s: &str| -> Option<String> {
        let kept: String = s
            .chars()
            .map(|c| if pox::is_xml_char(c) { c } else { '\u{FFFD}' })
            .collect();
        let kept = kept.trim();
        (!kept.is_empty()).then(|| kept.to_string())
    };
    assert_eq!(p.description, carried(&description), "imsx_description");
    assert_eq!(
        p.message_ref_identifier,
        carried(&message_ref),
        "imsx_messageRefIdentifier"
    );
    assert_eq!(p.message_identifier.as_deref(), Some("lms-1"));
    if read {
        assert_eq!(p.operation.as_deref(), Some("readResultResponse"));
        let want = match carried(&score) {
            None => pox::ReadScore::Empty,
            Some(s) => match s.parse::<f64>() {
                Ok(v) if v.is_finite() => pox::ReadScore::Score(v),
                _ => pox::ReadScore::Invalid(s),
            },
        };
        assert_eq!(p.read_score, want, "the read score");
    } else {
        assert_eq!(p.operation.as_deref(), Some("replaceResultResponse"));
        assert_eq!(p.read_score, pox::ReadScore::NotARead);
    }
}

/// A request built from fuzzed values parses back (the document model) to those values.
fn pox_request_round_trip(data: &[u8]) {
    let mut t = Take::new(data);
    let message_identifier = t.text();
    let sourcedid = t.text();
    let score = f64::from(t.byte()) / 255.0;
    let text = t.text();
    let req = pox::ReplaceResult {
        message_identifier: message_identifier.clone(),
        sourcedid: sourcedid.clone(),
        score: Some(score),
        result_data: (!text.is_empty()).then(|| pox::ResultData::Text(text.clone())),
        ..pox::ReplaceResult::default()
    };
    let Ok(xml) = pox::replace_result(&req) else {
        // Refused: an empty or non-XML value. Nothing was built to check.
        return;
    };
    let doc = pox::parse_document(xml.as_bytes()).expect("a request the builder wrote parses");
    let text_of = |name: &str| doc.find(name).map(|i| doc.text(i).to_string());
    assert_eq!(text_of("imsx_messageIdentifier"), Some(message_identifier));
    assert_eq!(text_of("sourcedId"), Some(sourcedid));
    let sent: f64 = text_of("textString").expect("a score").parse().expect("a number");
    assert_eq!(sent, score, "the score round-trips exactly");
    if !text.is_empty() {
        assert_eq!(text_of("text"), Some(text));
    }
    assert_eq!(doc.operation().map(|i| doc.name(i)), Some("replaceResultRequest"));
}

pub fn pox_response(data: &[u8]) {
    let parsed = pox::parse_response(data);
    if let Ok(p) = &parsed {
        match &p.read_score {
            pox::ReadScore::Score(v) => assert!(v.is_finite()),
            pox::ReadScore::NotARead => {
                assert_ne!(p.operation.as_deref(), Some("readResultResponse"));
            }
            pox::ReadScore::Empty | pox::ReadScore::Invalid(_) => {
                assert_eq!(p.operation.as_deref(), Some("readResultResponse"));
            }
        }
    }
    if let Ok(doc) = pox::parse_document(data) {
        assert!(!doc.is_empty());
        assert!(doc.len() <= data.len(), "more elements than bytes");
    }
    classify_pox(data, &parsed);
    pox_response_round_trip(data);
    pox_request_round_trip(data);
}

// ---------------------------------------------------------------------------------------
// OAuth 1.0a: the Authorization header parser and the verifiers
// ---------------------------------------------------------------------------------------

/// Parameters as an `Authorization` header (every name and value percent-encoded).
fn header_of(params: &[(String, String)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .map(|(n, v)| format!("{}=\"{}\"", oauth::percent_encode(n), oauth::percent_encode(v)))
        .collect();
    format!("OAuth {}", parts.join(", "))
}

pub fn oauth_header(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(params) = oauth::parse_authorization_header(text) {
        assert!(
            params.iter().all(|(n, _)| !n.is_empty()),
            "a parameter without a name"
        );
        let again = oauth::parse_authorization_header(&header_of(&params))
            .expect("a header written from parsed parameters");
        assert_eq!(again, params, "parse → write → parse");
    }
}

const FUZZ_KEY: &str = "fuzz-key";
const FUZZ_SECRET: &str = "fuzz-secret";

fn lookup(key: &str) -> Option<String> {
    (key == FUZZ_KEY).then(|| FUZZ_SECRET.to_string())
}

/// Whatever a verifier accepted, the signature must be the one [`oauth::sign`] gives
/// the secret over the parameters that came with the request.
fn accepted_only_if_signed(
    method: &str,
    base_uri: &str,
    header: &[(String, String)],
    request: &[(String, String)],
    verified: &oauth::VerifiedRequest,
) {
    assert_eq!(verified.consumer_key, FUZZ_KEY);
    if request.iter().any(|(n, _)| n == "realm") {
        // `base_string` leaves out every `realm`; the verifiers only the header's.
        return;
    }
    let signed: Vec<(String, String)> = header
        .iter()
        .filter(|(n, _)| n != "realm")
        .chain(request)
        .cloned()
        .collect();
    let base = oauth::base_string(method, base_uri, &signed);
    let want = oauth::sign(verified.signature_method, FUZZ_SECRET, "", &base);
    let given = header
        .iter()
        .find(|(n, _)| n == "oauth_signature")
        .map(|(_, v)| v.trim())
        .expect("an accepted request has a signature");
    assert_eq!(given, want, "a request was accepted that the secret did not sign");
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Arbitrary requests: method, URL and header lines, then the body.
fn verify_arbitrary(data: &[u8]) {
    let mut t = Take::new(data);
    let method = t.text();
    let raw_url = t.text();
    let header_line = t.text();
    let body = t.rest();
    let Ok(header) = oauth::parse_authorization_header(&header_line) else {
        return;
    };
    if let Ok(v) = oauth::verify_request_raw(&method, &raw_url, &header, body, lookup) {
        let base = oauth::normalize_base_uri(&raw_url).expect("an accepted URL");
        let no_fragment = raw_url.split_once('#').map_or(raw_url.as_str(), |(u, _)| u);
        let query = no_fragment.split_once('?').map_or("", |(_, q)| q);
        accepted_only_if_signed(&method, &base, &header, &form(query.as_bytes()), &v);
        assert_eq!(
            v.body_hash.as_deref(),
            Some(oauth::body_hash(v.signature_method, body).as_str())
        );
    }
    if let Ok(url) = Url::parse(&raw_url) {
        let query = form(url.query().unwrap_or("").as_bytes());
        if let Ok(v) = oauth::verify_request(&method, &url, &header, body, lookup) {
            let base = oauth::base_uri(&url).expect("an accepted URL");
            accepted_only_if_signed(&method, &base, &header, &query, &v);
        }
        if let Ok(v) = oauth::verify_form_request(&method, &url, &header, body, lookup) {
            let base = oauth::base_uri(&url).expect("an accepted URL");
            let mut request = query;
            request.extend(form(body));
            accepted_only_if_signed(&method, &base, &header, &request, &v);
        }
    }
}

/// A request the signer signed verifies; the same request altered in any signed part,
/// or checked with another secret, does not.
fn verify_signed(data: &[u8]) {
    let mut t = Take::new(data);
    let method_byte = t.byte();
    let method = ["POST", "GET", "PUT", "post"][usize::from(method_byte) % 4];
    let signature_method = if method_byte & 0x80 == 0 {
        SignatureMethod::HmacSha1
    } else {
        SignatureMethod::HmacSha256
    };
    let timestamp = t.u64() % 4_000_000_000;
    let nonce = t.text();
    let path_and_query = t.text();
    let skew_minutes = t.byte();
    let body = t.rest().to_vec();
    let Ok(url) = Url::parse(&format!("https://lms.example.edu/{path_and_query}")) else {
        return;
    };
    let query = form(url.query().unwrap_or("").as_bytes());
    if query.iter().any(|(n, _)| n.starts_with("oauth_")) {
        // Protocol parameters in the query are refused by policy (RFC 5849 §3.5: one place).
        return;
    }
    let signer = OAuthSigner::new(FUZZ_KEY, FUZZ_SECRET, signature_method);
    let signed = signer
        .sign_request(method, &url, &body, &nonce, timestamp)
        .expect("an https URL signs");
    let header =
        oauth::parse_authorization_header(&signed.authorization).expect("the signer's header parses");
    let mut want = vec![("realm".to_string(), String::new())];
    want.extend(signed.params.iter().cloned());
    assert_eq!(header, want, "the header carries exactly the signed parameters");

    let v = oauth::verify_request(method, &url, &header, &body, lookup).expect("a signed request verifies");
    assert_eq!((v.nonce.as_str(), v.timestamp), (nonce.as_str(), timestamp));
    assert_eq!(v.signature_method, signature_method);
    let raw = oauth::verify_request_raw(method, url.as_str(), &header, &body, lookup)
        .expect("a signed request verifies from its URL string");
    assert_eq!(raw, v);

    let refused = |what: &str, r: Result<oauth::VerifiedRequest, VerifyError>| {
        assert!(r.is_err(), "accepted with {what}");
    };
    let mut longer = body.clone();
    longer.push(b'x');
    refused(
        "another body",
        oauth::verify_request(method, &url, &header, &longer, lookup),
    );
    refused(
        "another secret",
        oauth::verify_request(method, &url, &header, &body, |k| {
            (k == FUZZ_KEY).then(|| format!("{FUZZ_SECRET}x"))
        }),
    );
    let other_method = if method.eq_ignore_ascii_case("GET") {
        "POST"
    } else {
        "GET"
    };
    refused(
        "another method",
        oauth::verify_request(other_method, &url, &header, &body, lookup),
    );
    let mut moved = url.clone();
    moved.set_path(&format!("{}x", url.path()));
    refused(
        "another path",
        oauth::verify_request(method, &moved, &header, &body, lookup),
    );
    let mut extra = url.clone();
    extra.query_pairs_mut().append_pair("grade", "1");
    refused(
        "another query",
        oauth::verify_request(method, &extra, &header, &body, lookup),
    );
    for i in 1..header.len() {
        let mut altered = header.clone();
        altered[i].1.push('1');
        refused(
            &format!("{} altered", altered[i].0),
            oauth::verify_request(method, &url, &altered, &body, lookup),
        );
    }

    // The nonce cache: once within the window, never twice.
    let mut nonces = NonceCache::default();
    let window = NonceCache::DEFAULT_WINDOW.as_secs();
    let now = timestamp.saturating_add(u64::from(skew_minutes) * 60);
    let first = nonces.check_and_insert(FUZZ_KEY, &nonce, timestamp, now);
    assert_eq!(first.is_ok(), now.abs_diff(timestamp) <= window, "{first:?}");
    if first.is_ok() {
        assert_eq!(
            nonces.check_and_insert(FUZZ_KEY, &nonce, timestamp, now),
            Err(VerifyError::NonceReplayed)
        );
    }
}

/// A launch (form parameters) signed as an LMS signs one verifies as the importer
/// verifies it; altering any form value breaks it.
fn verify_form_signed(data: &[u8]) {
    let mut t = Take::new(data);
    let params_line = t.line().to_vec();
    let nonce = t.text();
    let timestamp = (t.u64() % 4_000_000_000).to_string();
    let url = Url::parse(LAUNCH_URL).expect("the launch URL");
    let params = form(&params_line);
    if params
        .iter()
        .any(|(n, _)| n.starts_with("oauth_") || n == "realm")
    {
        return;
    }
    let auth: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), FUZZ_KEY.into()),
        ("oauth_nonce".into(), nonce),
        ("oauth_signature_method".into(), "HMAC-SHA1".into()),
        ("oauth_timestamp".into(), timestamp),
        ("oauth_version".into(), "1.0".into()),
    ];
    let mut all = auth.clone();
    all.extend(params.iter().cloned());
    let base = oauth::base_string("POST", &oauth::base_uri(&url).expect("a base URI"), &all);
    let mut header = auth;
    header.push((
        "oauth_signature".into(),
        oauth::sign(SignatureMethod::HmacSha1, FUZZ_SECRET, "", &base),
    ));
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &params {
        body.append_pair(k, v);
    }
    let body = body.finish();
    oauth::verify_form_request("POST", &url, &header, body.as_bytes(), lookup)
        .expect("a signed launch verifies");
    for i in 0..params.len() {
        let mut altered = params.clone();
        altered[i].1.push('1');
        let mut b = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &altered {
            b.append_pair(k, v);
        }
        let r = oauth::verify_form_request("POST", &url, &header, b.finish().as_bytes(), lookup);
        assert!(r.is_err(), "a launch with {} altered verified", altered[i].0);
    }
}

pub fn oauth_verify(data: &[u8]) {
    verify_arbitrary(data);
    verify_signed(data);
    verify_form_signed(data);
}

// ---------------------------------------------------------------------------------------
// The Blackboard proxy-tool MAC
// ---------------------------------------------------------------------------------------

/// A secret line, then a form-encoded request; the first byte picks the digest.
pub fn proxy_mac(data: &[u8]) {
    let mut t = Take::new(data);
    let digest = if t.byte() & 1 == 0 {
        MacDigest::Md5
    } else {
        MacDigest::Sha1
    };
    let secret = t.text();
    let params: BTreeMap<String, String> = form(t.rest()).into_iter().collect();
    let normalized = |m: &str| m.trim().replace(['\r', '\n'], "");
    // A MAC in the request verifies exactly when it is the one the secret gives.
    if let Some(given) = params.get("mac") {
        let valid = normalized(given) == proxy::mac(&params, &secret, digest);
        assert_eq!(
            proxy::check_mac(&params, given, &secret, digest) == MacCheck::Valid,
            valid
        );
    }
    let good = proxy::mac(&params, &secret, digest);
    assert_eq!(proxy::check_mac(&params, &good, &secret, digest), MacCheck::Valid);
    assert_eq!(
        proxy::check_mac(&params, &format!("  {good}\r\n"), &secret, digest),
        MacCheck::Valid,
        "line breaks and surrounding space are ignored"
    );
    assert_eq!(
        proxy::check_mac(&params, &good, &secret, digest.other()),
        MacCheck::OtherDigest
    );
    assert_ne!(
        proxy::check_mac(&params, &good, &format!("{secret}x"), digest),
        MacCheck::Valid,
        "another secret"
    );
    // Every signed value is covered: altering one breaks the MAC.
    for key in params.keys() {
        if key == "mac" || passback::import::launch::CAPTURE_KEYS.contains(&key.as_str()) {
            continue;
        }
        let mut altered = params.clone();
        altered.entry(key.clone()).and_modify(|v| v.push('x'));
        assert_ne!(
            proxy::check_mac(&altered, &good, &secret, digest),
            MacCheck::Valid,
            "{key} altered"
        );
    }
}

// ---------------------------------------------------------------------------------------
// LTIAAS: error bodies and the classifier
// ---------------------------------------------------------------------------------------

/// Status (two bytes), a flags byte, the `Retry-After`, `X-Rate-Limit-Remaining` and
/// `Location` header lines, then the body; read as the LTIAAS client reads an answer.
pub fn ltiaas_classify(data: &[u8]) {
    use passback::ltiaas::classify::{AuthScheme, LtiaasError, Observed, classify, lms_words};
    let mut t = Take::new(data);
    let status = (u16::from(t.byte()) << 8 | u16::from(t.byte())) % 600;
    let flags = t.byte();
    let retry_after = t.text();
    let remaining = t.text();
    let location = t.text();
    let body = t.rest();

    let auth = if flags & 1 == 0 {
        AuthScheme::Ltik
    } else {
        AuthScheme::ServiceKey
    };
    let mut obs = Observed::new(auth);
    obs.http_status = Some(status);
    obs.budget.remaining = remaining.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    let now = passback::http::parse_http_date("Fri, 20 Nov 2026 10:00:00 GMT").expect("an HTTP date");
    obs.retry_after = passback::http::parse_retry_after(&retry_after, now);
    if (300..400).contains(&status) {
        obs.redirect_to = Some(location);
    }
    let error = LtiaasError::parse(body);
    assert_eq!(
        error.is_none(),
        String::from_utf8_lossy(body).trim().is_empty(),
        "a body is an error exactly when it says something"
    );
    if let Some(e) = &error {
        let _ = e.summary();
    }
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let _ = lms_words(&v);
    }
    if (200..300).contains(&status) {
        if !body.is_empty() && serde_json::from_slice::<Value>(body).is_err() {
            let text = String::from_utf8_lossy(body);
            let start = text.trim_start();
            obs.body_malformed = start.starts_with('{') || start.starts_with('[');
            obs.body_problem = Some("not JSON".into());
        }
    } else {
        obs.error = error;
        obs.says_rate_limited = status >= 400 && passback::http::says_rate_limit_exceeded(body);
    }
    let v = classify(&obs);
    assert!(!v.description.is_empty());
    let success = (200..300).contains(&status) && obs.body_problem.is_none();
    assert_eq!(v.outcome == AttemptOutcome::Success, success, "{v:?}");
    assert_eq!(v.error_class.is_none(), success, "{v:?}");
    if passback::ltiaas::classify::is_throttled(&obs) && obs.redirect_to.is_none() && !success {
        assert!(v.retry_after.is_some(), "throttled without a wait: {v:?}");
    }
}
