//! What every command group shares: the `--json` flag, tables, JSON, reading a
//! secret without echo, and the per-attempt report lines.

use std::io::{IsTerminal, Read, Write};

use clap::Args;
use passback::model::{AttemptOutcome, ErrorClass, Platform, PlatformKind};
use passback::sync::AttemptReport;
use passback::{Error, Result};

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Read a secret from `--secret-env VAR` or stdin (prompting without echo on a terminal).
pub fn read_secret(secret_env: Option<&str>, what: &str) -> Result<String> {
    if let Some(var) = secret_env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err(Error::invalid(format!("environment variable {var} is empty"))),
            Err(_) => Err(Error::invalid(format!(
                "environment variable {var} is not set; export it or pipe the {what} on stdin"
            ))),
        };
    }
    let stdin = std::io::stdin();
    let raw = if stdin.is_terminal() {
        rpassword::prompt_password(format!("{what}: "))?
    } else {
        let mut s = String::new();
        stdin.lock().read_to_string(&mut s)?;
        s
    };
    // Drop one trailing newline (from `echo` or a file), keep everything else.
    let secret = raw
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&raw);
    if secret.is_empty() {
        return Err(Error::invalid(format!(
            "no {what} given: pipe it on stdin (printf 'secret' | passback ...) or use --secret-env VAR"
        )));
    }
    Ok(secret.to_string())
}

pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::internal(e.to_string()))?;
    println!("{s}");
    Ok(())
}

/// Column widths for a table: the widest cell of each column.
pub fn table_widths(headers: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    widths
}

/// A message on one line (LMS messages may span lines).
pub fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One table row, padded to `widths` (the last column is not padded).
pub fn write_row(out: &mut impl Write, widths: &[usize], cells: Vec<String>) -> std::io::Result<()> {
    let mut s = String::new();
    for (i, c) in cells.iter().enumerate() {
        // One line per row: an LMS message may span lines.
        let c: std::borrow::Cow<str> = if c.contains(['\n', '\r']) {
            one_line(c).into()
        } else {
            c.into()
        };
        if i + 1 == cells.len() {
            s.push_str(&c);
        } else {
            s.push_str(&format!("{:<w$}  ", c, w = widths[i]));
        }
    }
    writeln!(out, "{}", s.trim_end())
}

/// Print rows as aligned columns.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let widths = table_widths(headers, rows);
    let mut out = std::io::stdout().lock();
    let _ = write_row(&mut out, &widths, headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        let _ = write_row(&mut out, &widths, r.clone());
    }
}

pub fn platform_summary(p: &Platform) -> String {
    match p.kind {
        PlatformKind::Lti11 => format!(
            "{} (LTI 1.1, consumer key {}, hosts {})",
            p.name,
            p.consumer_key.as_deref().unwrap_or("?"),
            p.allowed_hosts.join(", ")
        ),
        PlatformKind::Ltiaas => format!("{} (LTIAAS, {})", p.name, p.base_url.as_deref().unwrap_or("?")),
    }
}

/// A score without trailing zeros (`7.5`, `10`).
pub fn fmt_score(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// One line per journaled attempt: successes on stdout, the rest on stderr.
pub fn print_attempts(attempts: &[AttemptReport]) {
    for (i, at) in attempts.iter().enumerate() {
        let waited = if at.waited_before_ms > 0 {
            format!(" after waiting {:.1} s", at.waited_before_ms as f64 / 1000.0)
        } else {
            String::new()
        };
        let status = at
            .http_status
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_else(|| "no answer".into());
        let line = format!(
            "attempt {} (journal #{}){waited}: {status}, {}: {}",
            i + 1,
            at.attempt_id,
            at.outcome.as_str(),
            at.description
        );
        if at.outcome == AttemptOutcome::Success {
            println!("{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

/// `error [class]: description` and `hint: …` on stderr.
pub fn print_failure(class: Option<ErrorClass>, description: &str, hint: Option<&str>) {
    let class = class.map(|c| c.as_str()).unwrap_or("unconfirmed");
    eprintln!("error [{class}]: {description}");
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
}
