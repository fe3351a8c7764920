//! Reading an import file as UTF-8 text whatever it was saved as (UTF-8 with or
//! without a BOM, UTF-16 with a BOM, as Excel's "Unicode text" is), with line
//! numbers, and the small parsers every format needs: numbers with a decimal
//! comma, CSV separators, and timestamps.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
            reader: BufReader::with_capacity(256 * 1024, Box::new(Filling { inner: decoded })),
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

/// Reads until the buffer is full or the input ends: the decoder hands out the first
/// bytes of a file in small pieces while it looks for a BOM, and what peeks at the
/// buffered input (the CSV separator of the first line, the first character of a
/// JSON file) must see more than those.
struct Filling<R> {
    inner: R,
}

impl<R: Read> Read for Filling<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // What was read is kept; the error comes again on the next read.
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
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

/// Where [`Scan`] is in the CSV grammar the `csv` crate reads: RFC 4180 quotes
/// (a quote opens a quoted value only at the start of a field; `""` inside one is a
/// quote), and `\r`, `\n` or `\r\n` ending a record, empty lines skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted value: its end, or the first of `""`.
    QuoteInQuoted,
}

/// What [`Scan`] has seen, for [`CsvRecords`].
#[derive(Debug, Default)]
struct Scanned {
    /// The line each record starts on, in order, until its record is read.
    starts: VecDeque<u64>,
    /// The input has ended.
    ended: bool,
    /// It ended inside a quoted value, which opened on this line.
    unclosed_quote: Option<u64>,
}

/// Watches the bytes the CSV reader reads: the physical line each record starts on
/// (`csv` positions count `\n` only, before the empty lines and the `\n` of a
/// `\r\n` it skips, so they are off by one in every Excel file), and a quoted
/// value still open when the input ends (`csv` takes the rest of the file into it
/// without a word).
struct Scan<R> {
    inner: R,
    delimiter: u8,
    state: ScanState,
    /// The line of the next byte: `\n`, `\r\n` and a lone `\r` end a line.
    line: u64,
    after_cr: bool,
    quote_line: u64,
    scanned: Arc<Mutex<Scanned>>,
}

impl<R: Read> Read for Scan<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use ScanState::*;
        let n = self.inner.read(buf)?;
        let mut scanned = self.scanned.lock().unwrap_or_else(|e| e.into_inner());
        if n == 0 {
            scanned.ended = true;
            if self.state == InQuoted {
                scanned.unclosed_quote = Some(self.quote_line);
            }
            return Ok(0);
        }
        for &b in &buf[..n] {
            let line = self.line;
            let end = b == b'\r' || b == b'\n';
            match b {
                b'\r' => self.line += 1,
                b'\n' if !self.after_cr => self.line += 1,
                _ => {}
            }
            self.after_cr = b == b'\r';
            if self.state == StartRecord {
                if end {
                    continue;
                }
                scanned.starts.push_back(line);
                self.state = StartField;
            }
            self.state = match (self.state, b) {
                (InQuoted, b'"') => QuoteInQuoted,
                (InQuoted, _) => InQuoted,
                (StartField, b'"') => {
                    self.quote_line = line;
                    InQuoted
                }
                (QuoteInQuoted, b'"') => InQuoted,
                (_, _) if end => StartRecord,
                (_, d) if d == self.delimiter => StartField,
                _ => InField,
            };
        }
        Ok(n)
    }
}

/// A CSV record that cannot be read: its line and why (never its content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvIssue {
    pub line: u64,
    /// Why, without the words "unreadable row" (the header is a row too).
    pub reason: String,
}

/// A CSV file's records, the header first, each with the line it starts on. A
/// record with more or fewer fields than the header (cut off, or a separator inside
/// an unquoted value shifting the columns), and one a quote never closed swallowed
/// the rest of the file into, cannot be read.
pub struct CsvRecords {
    records: csv::StringRecordsIntoIter<Scan<BufReader<Box<dyn Read + Send>>>>,
    scanned: Arc<Mutex<Scanned>>,
    header_len: Option<usize>,
}

impl Iterator for CsvRecords {
    type Item = Result<(u64, csv::StringRecord), CsvIssue>;

    fn next(&mut self) -> Option<Self::Item> {
        let read = self.records.next()?;
        let (start, last, unclosed) = {
            let mut s = self.scanned.lock().unwrap_or_else(|e| e.into_inner());
            let start = s.starts.pop_front();
            (start, s.ended && s.starts.is_empty(), s.unclosed_quote)
        };
        let csv_line = |p: Option<&csv::Position>| p.map(|p| p.line()).unwrap_or(0);
        let rec = match read {
            Ok(rec) => rec,
            Err(e) => {
                return Some(Err(CsvIssue {
                    line: start.unwrap_or_else(|| csv_line(e.position())),
                    reason: csv_reason(&e),
                }));
            }
        };
        let line = start.unwrap_or_else(|| csv_line(rec.position()));
        if let Some(quote) = unclosed.filter(|q| last && *q >= line) {
            return Some(Err(CsvIssue {
                line: quote,
                reason: "a quoted value that opens on this line is never closed, so the rest of the file was read \
                         into it"
                    .into(),
            }));
        }
        match self.header_len {
            None => self.header_len = Some(rec.len()),
            Some(n) if rec.len() != n && !rec.iter().all(|c| c.trim().is_empty()) => {
                return Some(Err(CsvIssue {
                    line,
                    reason: format!(
                        "{} field{} where the header has {n}: the row is cut off, or a value holds an unquoted \
                         separator",
                        rec.len(),
                        if rec.len() == 1 { "" } else { "s" }
                    ),
                }));
            }
            Some(_) => {}
        }
        Some(Ok((line, rec)))
    }
}

/// Read decoded input as CSV: `,`, `;` or tab, whichever the first line uses.
pub fn csv_records(mut reader: BufReader<Box<dyn Read + Send>>) -> std::io::Result<CsvRecords> {
    let head = reader.fill_buf()?;
    let delimiter = sniff_delimiter(&String::from_utf8_lossy(
        head.split(|b| *b == b'\n').next().unwrap_or_default(),
    ));
    let scanned = Arc::new(Mutex::new(Scanned::default()));
    let scan = Scan {
        inner: reader,
        delimiter,
        state: ScanState::StartRecord,
        line: 1,
        after_cr: false,
        quote_line: 0,
        scanned: scanned.clone(),
    };
    Ok(CsvRecords {
        records: csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(false)
            .from_reader(scan)
            .into_records(),
        scanned,
        header_len: None,
    })
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

    /// Each record's line, or `Err(line: reason)`.
    fn csv(bytes: &[u8]) -> Vec<Result<(u64, Vec<String>), String>> {
        let input = Input::from_reader(std::io::Cursor::new(bytes.to_vec()));
        csv_records(input.into_reader())
            .unwrap()
            .map(|r| match r {
                Ok((line, rec)) => Ok((line, rec.iter().map(str::to_string).collect())),
                Err(e) => Err(format!("{}: {}", e.line, e.reason)),
            })
            .collect()
    }

    fn lines(bytes: &[u8]) -> Vec<u64> {
        csv(bytes)
            .into_iter()
            .map(|r| r.map(|(line, _)| line).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    #[test]
    fn csv_records_carry_the_line_they_start_on_whatever_ends_the_lines() {
        assert_eq!(lines(b"a,b\n1,2\n3,4\n"), [1, 2, 3]);
        assert_eq!(lines(b"a,b\r\n1,2\r\n3,4"), [1, 2, 3], "CRLF");
        assert_eq!(lines(b"a,b\r1,2\r3,4\r"), [1, 2, 3], "a lone CR ends a line");
        assert_eq!(
            lines(b"a,b\r\n1,2\r3,4\n\n\n5,6\n"),
            [1, 2, 3, 6],
            "mixed, with empty lines"
        );
        assert_eq!(
            lines(b"\n\na,b\n\"x\ny\",2\n3,4\n"),
            [3, 4, 6],
            "a quoted line break"
        );
        assert_eq!(
            lines(b"a,b\n\"say \"\"hi\"\"\",2\n3,4\n"),
            [1, 2, 3],
            "doubled quotes"
        );
        let utf16: Vec<u8> = "\u{feff}a\tb\r\n\r\n1\t2\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(lines(&utf16), [1, 3], "UTF-16 with a BOM");
    }

    #[test]
    fn a_row_with_another_number_of_fields_than_the_header_is_unreadable() {
        let got = csv(b"a,b,c\n1,2,3\n1,2\n1,2,3,4\n,,\n  \n");
        assert_eq!(got[1], Ok((2, vec!["1".into(), "2".into(), "3".into()])));
        assert_eq!(
            got[2],
            Err("3: 2 fields where the header has 3: the row is cut off, or a value holds an unquoted separator".into())
        );
        assert!(got[3].as_ref().unwrap_err().starts_with("4: 4 fields"));
        assert!(
            got[4].is_ok() && got[5].is_ok(),
            "blank rows are left to the format"
        );
    }

    #[test]
    fn a_quote_that_never_closes_is_reported_where_it_opens() {
        let got = csv(b"a,b,c\n1,2,3\n4,5,\"six\n7,8,9\n");
        assert_eq!(got.len(), 3);
        assert!(got[1].is_ok());
        assert_eq!(
            got[2],
            Err("3: a quoted value that opens on this line is never closed, so the rest of the file was read into it"
                .into())
        );
        // A quote inside an unquoted value is a character, not an opening.
        assert_eq!(lines(b"a,b\n5\" tall,2\n3,4\n"), [1, 2, 3]);
    }

    #[test]
    fn the_separator_is_told_from_the_whole_first_line_without_a_bom() {
        // The decoder hands out the first bytes alone while it looks for a BOM.
        let got = csv(b"context_id;user_id;score\nc1;u1;0,5\n");
        assert_eq!(got[1], Ok((2, vec!["c1".into(), "u1".into(), "0,5".into()])));
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
