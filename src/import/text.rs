//! Reading an import file as UTF-8 text whatever it was saved as (UTF-8 with or
//! without a BOM, UTF-16 with a BOM, as Excel's "Unicode text" is), with line
//! numbers, and the small parsers every format needs: numbers with a decimal
//! comma, CSV separators, and timestamps.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the bytes read from the file (for progress), before decoding.
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An import file, decoded to UTF-8 (a BOM says which encoding; none means UTF-8),
/// buffered.
pub struct Input {
    reader: BufReader<Box<dyn Read + Send>>,
}

impl Input {
    pub fn open(path: &Path, bytes: Arc<AtomicU64>) -> std::io::Result<Self> {
        let file = File::open(path)?;
        Ok(Self::from_reader(Counting { inner: file, bytes }))
    }

    /// Decode any reader (tests, in-memory data).
    pub fn from_reader(r: impl Read + Send + 'static) -> Self {
        let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .bom_sniffing(true)
            .strip_bom(true)
            .build(r);
        Self {
            reader: BufReader::with_capacity(256 * 1024, Box::new(decoded)),
        }
    }

    /// The decoded text as a buffered reader.
    pub fn into_reader(self) -> BufReader<Box<dyn Read + Send>> {
        self.reader
    }

    /// Read line by line, with 1-based line numbers.
    pub fn lines(self) -> Lines {
        Lines {
            reader: self.reader,
            buf: Vec::with_capacity(1024),
            line: 0,
        }
    }
}

/// A line reader that keeps one buffer and counts lines.
pub struct Lines {
    reader: BufReader<Box<dyn Read + Send>>,
    buf: Vec<u8>,
    line: u64,
}

impl Lines {
    /// The next line without its end (`\n` or `\r\n`), as bytes, with its number.
    pub fn next_bytes(&mut self) -> std::io::Result<Option<(u64, &[u8])>> {
        self.buf.clear();
        if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        self.line += 1;
        let mut end = self.buf.len();
        if end > 0 && self.buf[end - 1] == b'\n' {
            end -= 1;
        }
        if end > 0 && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        Ok(Some((self.line, &self.buf[..end])))
    }

    /// The number of the last line read.
    pub fn line(&self) -> u64 {
        self.line
    }
}

/// Parse a number as spreadsheets write it: `7.5`, `7,5` (decimal comma), ` 7 `,
/// `1.234,5` or `1,234.5` (the last separator is the decimal one). `None` when it
/// is not a finite number.
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let normalized = match (t.rfind(','), t.rfind('.')) {
        (Some(c), Some(d)) if c > d => t.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => t.replace(',', ""),
        (Some(_), None) => t.replace(',', "."),
        _ => t.to_string(),
    };
    normalized.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The field separator of a CSV header line: `,`, `;` or a tab, whichever occurs
/// most outside quotes.
pub fn sniff_delimiter(header: &str) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3)
        .max_by_key(|&i| (counts[i], usize::from(i == 0)))
        .unwrap_or(0);
    [b',', b';', b'\t'][best]
}

/// A CSV file's records (the header first), its delimiter told from its first line.
pub type CsvRecords = csv::StringRecordsIntoIter<BufReader<Box<dyn Read + Send>>>;

/// Read decoded input as CSV: `,`, `;` or tab, whichever the first line uses.
pub fn csv_records(mut reader: BufReader<Box<dyn Read + Send>>) -> std::io::Result<CsvRecords> {
    let head = reader.fill_buf()?;
    let delimiter = sniff_delimiter(&String::from_utf8_lossy(
        head.split(|b| *b == b'\n').next().unwrap_or_default(),
    ));
    Ok(csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(reader)
        .into_records())
}

/// A CSV error without the data it sometimes quotes.
pub fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text: save the file as UTF-8".into(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Io(io) => format!("the file could not be read ({})", io.kind()),
        _ => "malformed CSV".into(),
    }
}

/// Normalize a timestamp to RFC 3339 UTC with milliseconds (the ledger's format).
/// Accepts RFC 3339 / ISO 8601 (`2026-11-20T10:00:00Z`, with an offset, with or
/// without fractions), `2026-11-20 10:00:00[,.]123` (logs, assumed UTC), Unix
/// seconds or milliseconds.
pub fn normalize_time(s: &str) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let out = |dt: time::OffsetDateTime| dt.to_offset(time::UtcOffset::UTC).format(&fmt).ok();
    if let Ok(dt) = time::OffsetDateTime::parse(t, &Rfc3339) {
        return out(dt);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = t.parse().ok()?;
        let dt = if n > 100_000_000_000 {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(n) * 1_000_000).ok()?
        } else {
            time::OffsetDateTime::from_unix_timestamp(n).ok()?
        };
        return out(dt);
    }
    // `2026-11-20 10:00:00,123`, `2026-11-20T10:00:00.5`, `2026-11-20 10:00:00`
    let (date, rest) = t.split_at(t.find([' ', 'T'])?);
    let rest = &rest[1..];
    let (clock, frac) = match rest.find([',', '.']) {
        Some(i) => (&rest[..i], rest[i + 1..].trim_end_matches('Z')),
        None => (rest.trim_end_matches('Z'), ""),
    };
    let d = time::Date::parse(date, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    let c = time::Time::parse(
        clock,
        time::macros::format_description!("[hour]:[minute]:[second]"),
    )
    .ok()?;
    let mut dt = time::PrimitiveDateTime::new(d, c).assume_utc();
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        let nanos: i64 = digits.parse().ok()?;
        dt += time::Duration::nanoseconds(nanos);
    }
    out(dt)
}

/// Seconds since 1970 of a normalized timestamp.
pub fn unix_seconds(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A CSV header cell as a lookup key: trimmed, lower-case, BOM removed.
pub fn header_key(h: &str) -> String {
    h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_decimal_commas_and_thousands() {
        assert_eq!(parse_number("7.5"), Some(7.5));
        assert_eq!(parse_number(" 7,5 "), Some(7.5));
        assert_eq!(parse_number("1.234,5"), Some(1234.5));
        assert_eq!(parse_number("1,234.5"), Some(1234.5));
        assert_eq!(parse_number("10"), Some(10.0));
        for bad in ["", "abc", "NaN", "inf", "7.5.1x", "--1"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn delimiters_are_sniffed_outside_quotes() {
        assert_eq!(sniff_delimiter("a,b,c"), b',');
        assert_eq!(sniff_delimiter("a;b;c"), b';');
        assert_eq!(sniff_delimiter("a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter("\"x;y;z\",b,c"), b',');
        assert_eq!(sniff_delimiter("single"), b',');
    }

    #[test]
    fn times_normalize_to_utc_milliseconds() {
        assert_eq!(
            normalize_time("2026-11-20T10:00:00Z").as_deref(),
            Some("2026-11-20T10:00:00.000Z")
        );
        assert_eq!(
            normalize_time("2026-11-20T11:00:00.5+01:00").as_deref(),
            Some("2026-11-20T10:00:00.500Z")
        );
        assert_eq!(
            normalize_time("2026-11-20 10:00:00,123").as_deref(),
            Some("2026-11-20T10:00:00.123Z")
        );
        assert_eq!(
            normalize_time("1608831491").as_deref(),
            Some("2020-12-24T17:38:11.000Z")
        );
        assert_eq!(
            normalize_time("1608831491592").as_deref(),
            Some("2020-12-24T17:38:11.592Z")
        );
        assert_eq!(normalize_time("yesterday"), None);
        assert_eq!(normalize_time("2026-13-40 10:00:00"), None);
    }

    #[test]
    fn utf16_files_read_as_utf8_text() {
        let text = "context_id,score\nc1,0.5\n";
        let mut bytes = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let mut lines = Input::from_reader(std::io::Cursor::new(bytes)).lines();
        let (n, l) = lines.next_bytes().unwrap().unwrap();
        assert_eq!((n, l), (1, b"context_id,score".as_slice()));
        let (n, l) = lines.next_bytes().unwrap().unwrap();
        assert_eq!((n, l), (2, b"c1,0.5".as_slice()));
        assert!(lines.next_bytes().unwrap().is_none());
        let bom8 = b"\xEF\xBB\xBFa,b\r\n".to_vec();
        let mut lines = Input::from_reader(std::io::Cursor::new(bom8)).lines();
        assert_eq!(
            lines.next_bytes().unwrap().unwrap().1,
            b"a,b",
            "BOM and CRLF removed"
        );
    }
}
