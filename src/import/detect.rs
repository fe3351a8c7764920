//! Telling a file's format from its content (the extension is only a hint):
//! JSON shapes by their keys, log lines by their messages, CSV files by their
//! header, form-encoded lines by their parameters.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::Format;
use super::text::{Input, header_key, sniff_delimiter};

/// How much of the file detection reads.
const SNIFF_BYTES: u64 = 64 * 1024;

/// The format of the file at `path`, if it can be told.
pub fn detect(path: &Path) -> std::io::Result<Option<Format>> {
    let input = Input::open(path, Default::default())?;
    Ok(detect_input(input)?.or_else(|| by_extension(path)))
}

/// The format of decoded input, if its head tells it. A byte that is not UTF-8
/// does not hide the rest of the head: the importer reports it on its line.
fn detect_input(input: Input) -> std::io::Result<Option<Format>> {
    let mut head = Vec::new();
    input.into_reader().take(SNIFF_BYTES).read_to_end(&mut head)?;
    Ok(detect_text(&String::from_utf8_lossy(&head)))
}

fn by_extension(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "log" => Some(Format::EdxLog),
        _ => None,
    }
}

/// The format of a file that starts with `head`.
pub fn detect_text(head: &str) -> Option<Format> {
    let trimmed = head.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return detect_json(trimmed);
    }
    if head.contains("Outcome Service:") || head.contains("Outcome service response:") {
        return Some(Format::EdxLog);
    }
    // Form-encoded captures may open with `#` comment lines.
    let first = trimmed
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    if looks_form_encoded(first) {
        let keys: Vec<&str> = form_keys(first).collect();
        let has = |k: &str| keys.contains(&k);
        if has("mac") && (has("timestamp") || has("userid") || has("ourguid")) {
            return Some(Format::Proxy);
        }
        if has("oauth_signature") || has("lti_message_type") || has("oauth_consumer_key") {
            return Some(Format::Launches);
        }
    }
    detect_csv(trimmed)
}

fn looks_form_encoded(line: &str) -> bool {
    // A leading capture time (`2026-11-20T10:00:00Z userid=…`) is allowed.
    let body = line.rsplit(' ').next().unwrap_or(line);
    body.contains('=') && body.contains('&') && !body.contains(',') && !body.contains(';')
}

fn form_keys(line: &str) -> impl Iterator<Item = &str> {
    let body = line.rsplit(' ').next().unwrap_or(line);
    body.split('&').filter_map(|kv| kv.split('=').next())
}

fn detect_json(head: &str) -> Option<Format> {
    // The first record, parsed leniently from the head (it may be cut off).
    let first = first_json_object(head)?;
    let obj = first.as_object()?;
    let has = |k: &str| obj.contains_key(k);
    let str_of = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
    if str_of("model").starts_with("lti_provider.") {
        return Some(Format::EdxDump);
    }
    if str_of("type").ends_with("LTIEvent") || str_of("@type").ends_with("LTIEvent") {
        return Some(Format::Caliper);
    }
    if obj.get("services").is_some_and(Value::is_object) && has("launch") || has("services") && has("user") {
        return Some(Format::LtiaasIdtoken);
    }
    if has("mac") && (has("timestamp") || has("userid") || has("ourguid")) {
        return Some(Format::Proxy);
    }
    if has("oauth_signature")
        || has("lti_message_type")
        || has("oauth_consumer_key")
        || has("resource_link_id")
    {
        return Some(Format::Launches);
    }
    None
}

/// The first object of a JSON head: the top-level object, the first element of a
/// top-level array or of an envelope's `data`, or the first NDJSON line.
fn first_json_object(head: &str) -> Option<Value> {
    let mut records = super::json::JsonRecords::lenient(std::io::BufReader::new(head.as_bytes()));
    match records.next()? {
        Ok((_, v)) if v.is_object() => Some(v),
        _ => None,
    }
}

fn detect_csv(head: &str) -> Option<Format> {
    let header = head.lines().next()?;
    let delim = sniff_delimiter(header) as char;
    let cols: Vec<String> = header
        .split(delim)
        .map(|c| header_key(c.trim_matches('"')))
        .collect();
    let has = |k: &str| cols.iter().any(|c| c == k);
    if cols.first().is_some_and(|c| c == "student")
        && has("id")
        && (has("sis user id") || has("sis login id"))
    {
        return Some(Format::CanvasGradebook);
    }
    if has("first name") && has("last name") && (has("email address") || has("id number")) {
        return Some(Format::MoodleGradebook);
    }
    if has("lis_result_sourcedid") && has("course_key") && has("usage_key") {
        return Some(Format::EdxDump);
    }
    if has("consumer_key") && has("consumer_secret")
        || has("lti_user_id") && (has("edx_user") || has("edx_user_id"))
    {
        return Some(Format::EdxDump);
    }
    if has("lis_outcome_service_url") && (has("lti_consumer") || has("lti_consumer_id")) && !has("user_id") {
        return Some(Format::EdxDump);
    }
    if has("user_id") && (has("score") || has("score_given")) {
        return Some(Format::ToolCsv);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_content() {
        let cases = [
            (
                "[{\"model\": \"lti_provider.lticonsumer\", \"pk\": 1, \"fields\": {}}]",
                Format::EdxDump,
            ),
            (
                "{\"type\": \"http://caliper.blackboard.com/caliper/v1/LTIEvent\"}",
                Format::Caliper,
            ),
            (
                "{\"sensor\": \"s\", \"data\": [{\"type\": \"LTIEvent\"}]}",
                Format::Caliper,
            ),
            (
                "{\"user\": {\"id\": \"u\"}, \"launch\": {}, \"services\": {}}",
                Format::LtiaasIdtoken,
            ),
            (
                "[{\"oauth_consumer_key\": \"k\", \"user_id\": \"u\"}]",
                Format::Launches,
            ),
            (
                "lti_message_type=basic-lti-launch-request&oauth_signature=x%3D&user_id=u\n",
                Format::Launches,
            ),
            (
                "userid=_1_1&role=COURSE%3ASTUDENT&timestamp=1&mac=abc\n",
                Format::Proxy,
            ),
            (
                "2026-11-20T10:00:00Z userid=_1_1&timestamp=1&mac=abc\n",
                Format::Proxy,
            ),
            (
                "# captured by the proxy\n\n2026-11-20T10:00:00Z oauth_consumer_key=k&user_id=u\n",
                Format::Launches,
            ),
            (
                "2026-11-20 10:00:00,123 ERROR 42 [edx.lti_provider] tasks.py:80 - Outcome Service: Failed to update score",
                Format::EdxLog,
            ),
            (
                "\u{feff}Student,ID,SIS User ID,SIS Login ID,Section,Quiz (12)\n",
                Format::CanvasGradebook,
            ),
            (
                "\"First name\",\"Last name\",\"ID number\",\"Institution\",\"Department\",\"Email address\"\n",
                Format::MoodleGradebook,
            ),
            (
                "context_id;resource_link_id;user_id;score_given;score_maximum\n",
                Format::ToolCsv,
            ),
            (
                "user,course_key,usage_key,outcome_service,lis_result_sourcedid,version_number\n",
                Format::EdxDump,
            ),
        ];
        for (head, want) in cases {
            assert_eq!(detect_text(head), Some(want), "{head}");
        }
        assert_eq!(detect_text("just some text"), None);
        // A byte that is not UTF-8 (a Latin-1 name on row 2) does not hide the header.
        let latin1 = b"context_id,resource_link_id,user_id,score\nc1,a1,Zo\xeb,0.5\n".to_vec();
        let input = Input::from_reader(std::io::Cursor::new(latin1));
        assert_eq!(detect_input(input).unwrap(), Some(Format::ToolCsv));
        assert_eq!(detect_text("a,b,c\n1,2,3"), None);
    }
}
