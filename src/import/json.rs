//! Streaming JSON records out of a file of any size: the elements of a top-level
//! array, the elements of an envelope's `data` array (`{"data": [...]}`, as
//! Caliper envelopes are), one top-level object, or many (NDJSON or concatenated).
//! Each record is parsed on its own, with the line it starts on, so memory stays
//! bounded by the largest record and a truncated file is reported by line.

use std::io::{BufRead, BufReader, Read};

use serde_json::Value;

/// A JSON record problem, by line (never quoting the content).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonIssue {
    pub line: u64,
    pub reason: String,
    /// The file cannot be read any further.
    pub fatal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Between top-level values.
    Top,
    /// Inside a top-level array: its elements are records.
    TopArray,
    /// Inside a top-level object: looking for a `data` array among its keys.
    Envelope,
    /// Inside an envelope's `data` array: its elements are records.
    DataArray,
    /// After the `data` array, skipping the rest of the envelope.
    AfterData,
}

/// Records out of a JSON (or NDJSON) text.
pub struct JsonRecords<R: Read> {
    reader: BufReader<R>,
    mode: Mode,
    line: u64,
    /// The record being read, and the line it started on.
    record: Vec<u8>,
    record_line: u64,
    /// Nesting depth inside the record (0 = not in a record).
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The envelope read so far (kept in case it has no `data` array: then it is the record).
    envelope: Vec<u8>,
    envelope_line: u64,
    envelope_depth: usize,
    /// The last key seen at the envelope's top level.
    last_key: Vec<u8>,
    key_buf: Option<Vec<u8>>,
    expect_value_of: Option<Vec<u8>>,
    done: bool,
    /// Accept an object that names a key twice (the last one wins), as detection does.
    lenient: bool,
}

impl<R: Read> JsonRecords<R> {
    pub fn new(reader: BufReader<R>) -> Self {
        Self {
            reader,
            mode: Mode::Top,
            line: 1,
            record: Vec::new(),
            record_line: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            envelope: Vec::new(),
            envelope_line: 0,
            envelope_depth: 0,
            last_key: Vec::new(),
            key_buf: None,
            expect_value_of: None,
            done: false,
            lenient: false,
        }
    }

    /// Records as [`JsonRecords::new`] reads them, but an object that names a key
    /// twice is read (the last one wins) rather than refused: for telling a file's
    /// format, not for importing it.
    pub fn lenient(reader: BufReader<R>) -> Self {
        Self {
            lenient: true,
            ..Self::new(reader)
        }
    }

    fn issue(
        &mut self,
        line: u64,
        reason: impl Into<String>,
        fatal: bool,
    ) -> Option<Result<(u64, Value), JsonIssue>> {
        if fatal {
            self.done = true;
        }
        Some(Err(JsonIssue {
            line,
            reason: reason.into(),
            fatal,
        }))
    }

    fn finish_record(&mut self) -> Option<Result<(u64, Value), JsonIssue>> {
        let bytes = std::mem::take(&mut self.record);
        let line = self.record_line;
        let parsed = if self.lenient {
            serde_json::from_slice::<Value>(&bytes)
        } else {
            no_duplicate_keys(&bytes)
        };
        match parsed {
            Ok(v) => Some(Ok((line, v))),
            Err(e) => Some(Err(JsonIssue {
                line,
                reason: format!("not valid JSON ({})", json_error_kind(&e)),
                fatal: false,
            })),
        }
    }
}

/// A JSON value whose objects name each key once. serde_json keeps the last of two
/// values of a key; a record naming `user_id` (or a score, or a signed launch
/// parameter) twice is ambiguous, and other readers of the same file may take the
/// first.
fn no_duplicate_keys(bytes: &[u8]) -> serde_json::Result<Value> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = OnceEach.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Builds a [`Value`] as serde_json does, refusing an object that names a key twice.
#[derive(Clone, Copy)]
struct OnceEach;

impl<'de> serde::de::DeserializeSeed<'de> for OnceEach {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for OnceEach {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if out.insert(key, value).is_some() {
                return Err(serde::de::Error::custom("an object names the same key twice"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// serde_json's error without the quoted input it sometimes carries.
fn json_error_kind(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    match msg.find('`') {
        Some(i) => msg[..i].trim().to_string(),
        None => msg.to_string(),
    }
}

impl<R: Read> Iterator for JsonRecords<R> {
    type Item = Result<(u64, Value), JsonIssue>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) => {
                    let line = self.line;
                    return self.issue(line, format!("the file could not be read ({})", e.kind()), true);
                }
            };
            if buf.is_empty() {
                // End of input.
                self.done = true;
                if self.depth > 0 || !matches!(self.mode, Mode::Top) {
                    let line = if self.depth > 0 {
                        self.record_line
                    } else {
                        self.line
                    };
                    return Some(Err(JsonIssue {
                        line,
                        reason: "the JSON ends in the middle of a record (is the file truncated?)".into(),
                        fatal: true,
                    }));
                }
                return None;
            }
            let mut consumed = 0;
            let mut out = None;
            for &b in buf {
                consumed += 1;
                if b == b'\n' {
                    self.line += 1;
                }
                // Inside a record: copy it, tracking strings and nesting.
                if self.depth > 0 {
                    self.record.push(b);
                    if self.in_string {
                        if self.escaped {
                            self.escaped = false;
                        } else if b == b'\\' {
                            self.escaped = true;
                        } else if b == b'"' {
                            self.in_string = false;
                        }
                        continue;
                    }
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth -= 1;
                            if self.depth == 0 {
                                out = self.finish_record();
                                break;
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                // Inside an envelope, outside its records.
                if matches!(self.mode, Mode::Envelope | Mode::AfterData) {
                    if self.mode == Mode::Envelope {
                        self.envelope.push(b);
                    }
                    if let Some(k) = &mut self.key_buf {
                        if self.escaped {
                            self.escaped = false;
                            k.push(b);
                        } else if b == b'\\' {
                            self.escaped = true;
                        } else if b == b'"' {
                            self.last_key = self.key_buf.take().unwrap_or_default();
                            self.in_string = false;
                        } else {
                            k.push(b);
                        }
                        continue;
                    }
                    if self.in_string {
                        if self.escaped {
                            self.escaped = false;
                        } else if b == b'\\' {
                            self.escaped = true;
                        } else if b == b'"' {
                            self.in_string = false;
                        }
                        continue;
                    }
                    match b {
                        b'"' if self.envelope_depth == 1 && self.expect_value_of.is_none() => {
                            self.key_buf = Some(Vec::new());
                            self.in_string = true;
                        }
                        b'"' => self.in_string = true,
                        b':' if self.envelope_depth == 1 => {
                            self.expect_value_of = Some(std::mem::take(&mut self.last_key));
                        }
                        b',' if self.envelope_depth == 1 => self.expect_value_of = None,
                        b'[' if self.envelope_depth == 1
                            && self.mode == Mode::Envelope
                            && self.expect_value_of.as_deref() == Some(b"data".as_slice()) =>
                        {
                            self.mode = Mode::DataArray;
                            self.envelope.clear();
                            self.expect_value_of = None;
                        }
                        b'{' | b'[' => self.envelope_depth += 1,
                        b'}' | b']' => {
                            self.envelope_depth -= 1;
                            if self.envelope_depth == 0 {
                                let was = self.mode;
                                self.mode = Mode::Top;
                                if was == Mode::Envelope {
                                    // No data array: the whole object is the record.
                                    self.record = std::mem::take(&mut self.envelope);
                                    self.record_line = self.envelope_line;
                                    out = self.finish_record();
                                    break;
                                }
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                if b.is_ascii_whitespace() {
                    continue;
                }
                match (self.mode, b) {
                    (Mode::Top, b'[') => self.mode = Mode::TopArray,
                    (Mode::Top, b'{') => {
                        self.mode = Mode::Envelope;
                        self.envelope.clear();
                        self.envelope.push(b);
                        self.envelope_line = self.line;
                        self.envelope_depth = 1;
                        self.expect_value_of = None;
                        self.last_key.clear();
                    }
                    (Mode::TopArray | Mode::DataArray, b',') => {}
                    (Mode::TopArray, b']') => self.mode = Mode::Top,
                    (Mode::DataArray, b']') => {
                        self.mode = Mode::AfterData;
                    }
                    (Mode::TopArray | Mode::DataArray, b'{' | b'[') => {
                        self.record.clear();
                        self.record.push(b);
                        self.record_line = self.line;
                        self.depth = 1;
                        self.in_string = false;
                        self.escaped = false;
                    }
                    _ => {
                        let line = self.line;
                        self.reader.consume(consumed);
                        return self.issue(line, "expected a JSON object or array of objects here", true);
                    }
                }
            }
            self.reader.consume(consumed);
            if out.is_some() {
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Vec<Result<(u64, Value), JsonIssue>> {
        JsonRecords::new(BufReader::new(text.as_bytes())).collect()
    }

    fn lines(text: &str) -> Vec<u64> {
        records(text).into_iter().map(|r| r.unwrap().0).collect()
    }

    #[test]
    fn arrays_envelopes_single_objects_and_ndjson() {
        assert_eq!(lines("[\n{\"a\":1},\n{\"a\":2}\n]"), vec![2, 3]);
        assert_eq!(lines("{\"a\": 1}"), vec![1]);
        assert_eq!(lines("{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}\n"), vec![1, 2, 4]);
        let env = "{\"sensor\": \"x\", \"meta\": {\"data\": [9]},\n \"data\": [\n {\"id\": 1},\n {\"id\": \"]}\"}\n],\n \"after\": [1]}";
        let got: Vec<Value> = records(env).into_iter().map(|r| r.unwrap().1).collect();
        assert_eq!(
            got,
            vec![serde_json::json!({"id": 1}), serde_json::json!({"id": "]}"})]
        );
        assert_eq!(lines(env), vec![3, 4], "records keep their lines");
    }

    #[test]
    fn strings_with_brackets_and_escapes_do_not_confuse_the_scanner() {
        let got: Vec<Value> = records(r#"[{"s": "a}\"]{["}, {"t": "\\"}]"#)
            .into_iter()
            .map(|r| r.unwrap().1)
            .collect();
        assert_eq!(got[0]["s"], "a}\"]{[");
        assert_eq!(got[1]["t"], "\\");
    }

    #[test]
    fn truncation_and_bad_records_are_reported_by_line() {
        let r = records("[\n{\"a\": 1},\n{\"a\": 2,\n\"b\":");
        assert_eq!(r[0].as_ref().unwrap().0, 2);
        let e = r[1].as_ref().unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.fatal && e.reason.contains("truncated"), "{e:?}");
        let r = records("{\"a\": 1}\n{\"a\": tru}\n{\"a\": 3}");
        assert!(r[0].is_ok());
        let e = r[1].as_ref().unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            !e.fatal && !e.reason.contains("tru"),
            "no quote of the row: {e:?}"
        );
        assert!(r[2].is_ok(), "the next record still reads");
        let e = records("hello").pop().unwrap().unwrap_err();
        assert!(e.fatal);
    }

    #[test]
    fn an_object_naming_a_key_twice_is_refused_unless_lenient() {
        let text = "[{\"user_id\": \"u-a\", \"n\": {\"k\": 1, \"k\": 2}},\n{\"user_id\": \"u-a\", \"user_id\": \"u-b\"},\n{\"a\": [1, 2.5, null, true]}]";
        let r = records(text);
        let e = r[0].as_ref().unwrap_err();
        assert_eq!(e.line, 1);
        assert!(!e.fatal && e.reason.contains("names the same key twice"), "{e:?}");
        assert!(!e.reason.contains("u-"), "no quote of the record: {e:?}");
        assert_eq!(r[1].as_ref().unwrap_err().line, 2);
        assert_eq!(
            r[2].as_ref().unwrap().1,
            serde_json::json!({"a": [1, 2.5, null, true]})
        );
        let lenient: Vec<_> = JsonRecords::lenient(BufReader::new(text.as_bytes())).collect();
        assert_eq!(lenient[1].as_ref().unwrap().1["user_id"], "u-b");
    }
}
