//! Captured LTI 1.1 launches: one form-encoded body per line (optionally after a
//! capture time: `2026-11-20T10:00:00Z user_id=…&…`), or JSON maps (one, an array,
//! or one per line). A `launch_url` key (or `--launch-url`) names the URL the
//! signature covers; a `captured_at` key (or the line's time) the capture time.
//! Proxy-tool requests share the reading; see [`param_records`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::Ctx;
use super::json::JsonRecords;
use super::launch;
use super::text::Input;
use crate::error::Result;

/// One map of parameters read from a capture file.
pub struct ParamRecord {
    pub line: u64,
    pub params: BTreeMap<String, String>,
    /// From a time before the form body on its line.
    pub line_time: Option<String>,
}

/// A record that could not be read.
pub type ParamIssue = super::json::JsonIssue;

/// Read parameter maps: form-encoded lines or JSON maps, whichever the file holds.
pub fn param_records(
    input: Input,
) -> Box<dyn Iterator<Item = std::result::Result<ParamRecord, ParamIssue>> + Send> {
    let mut reader = input.into_reader();
    let first = {
        use std::io::BufRead;
        match reader.fill_buf() {
            Ok(b) => b.iter().copied().find(|c| !c.is_ascii_whitespace()),
            Err(_) => None,
        }
    };
    if matches!(first, Some(b'{') | Some(b'[')) {
        Box::new(JsonRecords::new(reader).map(|r| match r {
            Err(e) => Err(ParamIssue {
                line: e.line,
                reason: e.reason,
                fatal: e.fatal,
            }),
            Ok((line, Value::Object(m))) => {
                let params = m
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s,
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            _ => return None,
                        };
                        Some((k, v))
                    })
                    .collect();
                Ok(ParamRecord {
                    line,
                    params,
                    line_time: None,
                })
            }
            Ok((line, _)) => Err(ParamIssue {
                line,
                reason: "expected a JSON object of parameters".into(),
                fatal: false,
            }),
        }))
    } else {
        let mut lines = super::text::Input::from_reader(reader).lines();
        Box::new(std::iter::from_fn(move || {
            loop {
                let (line, bytes) = match lines.next_bytes() {
                    Ok(Some(l)) => l,
                    Ok(None) => return None,
                    Err(e) => {
                        return Some(Err(ParamIssue {
                            line: lines.line() + 1,
                            reason: format!("the file could not be read ({})", e.kind()),
                            fatal: true,
                        }));
                    }
                };
                let Ok(text) = std::str::from_utf8(bytes) else {
                    return Some(Err(ParamIssue {
                        line,
                        reason: "the line is not UTF-8 text".into(),
                        fatal: false,
                    }));
                };
                let text = text.trim();
                if text.is_empty() || text.starts_with('#') {
                    continue;
                }
                let (line_time, body) = match text.split_once(' ') {
                    Some((t, body)) if !t.contains('=') => (super::text::normalize_time(t), body.trim()),
                    _ => (None, text),
                };
                if !body.contains('=') {
                    return Some(Err(ParamIssue {
                        line,
                        reason: "not a form-encoded request (expected name=value&…)".into(),
                        fatal: false,
                    }));
                }
                let params = url::form_urlencoded::parse(body.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                return Some(Ok(ParamRecord {
                    line,
                    params,
                    line_time,
                }));
            }
        }))
    }
}

/// Import a file of captured launches.
pub async fn run(ctx: &mut Ctx<'_>, input: Input) -> Result<()> {
    let mut seen = launch::Seen::default();
    let default_url = ctx.options().launch_url.clone();
    let mut records = param_records(input);
    while let Some(rec) = ctx.next_of(&mut *records).await? {
        let url = rec
            .params
            .get("launch_url")
            .cloned()
            .or_else(|| default_url.clone());
        let captured = rec
            .params
            .get("captured_at")
            .or_else(|| rec.params.get("received_at"))
            .cloned()
            .or(rec.line_time.clone());
        let outcome = launch::facts(
            ctx,
            rec.line,
            &rec.params,
            url.as_deref(),
            captured.as_deref(),
            &mut seen,
        )
        .await?;
        if !launch::apply(ctx, rec.line, outcome).await? {
            break;
        }
    }
    Ok(())
}
