//! JSON reading with errors that say *which record* is wrong, not only a byte position:
//! users fix files by record (`annotations[1234].keypoints`), not by column number.

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::Path;

/// Reads and parses a whole JSON file; any error names the file and the JSON path of the record.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    read_with(path, parse_json)
}

/// Reads a file and hands its bytes, without a leading UTF-8 byte-order mark (Windows editors
/// write one; RFC 8259 lets a parser ignore it), to `parse`; errors are prefixed with the file name.
pub fn read_with<T>(path: &Path, parse: impl FnOnce(&[u8]) -> std::result::Result<T, String>) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    parse(without_bom(&bytes)).map_err(|msg| anyhow!("{}: {msg}", path.display()))
}

/// `bytes` without a leading UTF-8 byte-order mark.
pub fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Parses a top-level JSON array with its records spread over threads. Same result and same
/// errors as [`parse_json`]: on any failure the strict whole-text parse runs to locate it.
pub fn parse_array_par<T: DeserializeOwned + Send>(bytes: &[u8]) -> std::result::Result<Vec<T>, String> {
    try_array_par(bytes, 0..bytes.len()).map_or_else(|| parse_json(bytes), Ok)
}

/// The array in `bytes[range]`, each record parsed on its own (rayon); `None` on any failure,
/// for the caller to fall back to the strict parse that locates it.
pub fn try_array_par<T: DeserializeOwned + Send>(bytes: &[u8], range: Range<usize>) -> Option<Vec<T>> {
    let elems = split_array(bytes, range)?;
    elems.par_iter().with_min_len(64).map(|r| serde_json::from_slice(&bytes[r.clone()]).ok()).collect()
}

/// Parses JSON bytes; the error string locates the failure as a JSON path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| describe_error(bytes, &e))
}

fn describe_error(bytes: &[u8], e: &serde_json::Error) -> String {
    let offset = byte_offset(bytes, e.line(), e.column());
    let mut path = json_path_at(bytes, offset);
    if e.to_string().starts_with("missing field") {
        // serde notices at the closing brace; the record is the object, not its last key.
        if let Some(dot) = path.rfind('.').filter(|&d| d > path.rfind(']').unwrap_or(0)) {
            path.truncate(dot);
        }
    }
    let at = if path.is_empty() { String::from("at the top level") } else { format!("in record {path}") };
    if e.is_eof() {
        return format!("file ends early {at} (truncated JSON?): {e}");
    }
    let rest = &bytes[offset.saturating_sub(1).min(bytes.len())..];
    let rest = &rest[..rest.len().min(12)];
    let hint = if [&b"NaN"[..], b"Infinity", b"-Infinity"].iter().any(|tok| rest.windows(tok.len()).any(|w| w == *tok))
    {
        " (NaN and Infinity are not valid JSON numbers)"
    } else {
        ""
    };
    format!("{at}: {e}{hint}")
}

/// serde_json reports 1-based line and column (in bytes); turn that back into an offset.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut line_start = 0;
    if line > 1 {
        let mut seen = 1;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                seen += 1;
                if seen == line {
                    line_start = i + 1;
                    break;
                }
            }
        }
    }
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

fn skip_ws(bytes: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Index just past the string that starts at `bytes[i] == b'"'`, or `None` if unterminated.
fn skip_string(bytes: &[u8], i: usize, end: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', &bytes[j.min(end)..end])?;
        if bytes[j] == b'"' {
            return Some(j + 1);
        }
        j += 2;
    }
}

/// Index just past the object that starts at `bytes[i] == b'{'`. Jumps between braces and
/// quotes only (SIMD memchr): brackets inside are balanced if the JSON is valid, and serde
/// checks each record strictly afterwards.
fn skip_object(bytes: &[u8], i: usize, end: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        j += memchr::memchr3(b'{', b'}', b'"', &bytes[j..end])?;
        match bytes[j] {
            b'{' => {
                depth += 1;
                j += 1;
            }
            b'}' => {
                depth -= 1;
                j += 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => j = skip_string(bytes, j, end)?,
        }
    }
}

/// Index just past the JSON value starting at `i` (structure only; serde validates values).
/// `None` when the structure is broken or nests deeper than serde's own limit.
fn skip_value(bytes: &[u8], i: usize, end: usize, nesting: usize) -> Option<usize> {
    match *bytes.get(i).filter(|_| i < end)? {
        b'{' => skip_object(bytes, i, end),
        b'"' => skip_string(bytes, i, end),
        b'[' => {
            if nesting >= 128 {
                return None;
            }
            let mut j = skip_ws(bytes, i + 1, end);
            if bytes.get(j) == Some(&b']') {
                return Some(j + 1);
            }
            loop {
                j = skip_ws(bytes, skip_value(bytes, j, end, nesting + 1)?, end);
                match bytes.get(j).filter(|_| j < end)? {
                    b',' => j = skip_ws(bytes, j + 1, end),
                    b']' => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        _ => {
            let mut j = i;
            while j < end && !matches!(bytes[j], b',' | b']' | b'}') && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            Some(j)
        }
    }
}

/// The element ranges of the array that fills `bytes[range]`, or `None` if it is not one.
pub fn split_array(bytes: &[u8], range: Range<usize>) -> Option<Vec<Range<usize>>> {
    let end = range.end;
    let mut i = skip_ws(bytes, range.start, end);
    if bytes.get(i) != Some(&b'[') {
        return None;
    }
    let mut elems = Vec::new();
    i = skip_ws(bytes, i + 1, end);
    if bytes.get(i) == Some(&b']') {
        return (skip_ws(bytes, i + 1, end) == end).then_some(elems);
    }
    loop {
        let start = i;
        let stop = skip_value(bytes, i, end, 1)?;
        elems.push(start..stop);
        i = skip_ws(bytes, stop, end);
        match bytes.get(i) {
            Some(b',') if i < end => i = skip_ws(bytes, i + 1, end),
            Some(b']') if i < end => return (skip_ws(bytes, i + 1, end) == end).then_some(elems),
            _ => return None,
        }
    }
}

/// The (key, value range) members of the top-level object, or `None` if it is not one or a
/// key repeats (serde would reject that; the caller falls back to it).
pub fn split_object(bytes: &[u8]) -> Option<Vec<(String, Range<usize>)>> {
    let end = bytes.len();
    let mut i = skip_ws(bytes, 0, end);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    let mut members: Vec<(String, Range<usize>)> = Vec::new();
    i = skip_ws(bytes, i + 1, end);
    if bytes.get(i) == Some(&b'}') {
        return (skip_ws(bytes, i + 1, end) == end).then_some(members);
    }
    loop {
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(bytes, i, end)?;
        let key: String = serde_json::from_slice(&bytes[i..key_end]).ok()?;
        if members.iter().any(|(k, _)| *k == key) {
            return None;
        }
        i = skip_ws(bytes, key_end, end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(bytes, i + 1, end);
        let stop = skip_value(bytes, start, end, 1)?;
        members.push((key, start..stop));
        i = skip_ws(bytes, stop, end);
        match bytes.get(i) {
            Some(b',') => i = skip_ws(bytes, i + 1, end),
            Some(b'}') => return (skip_ws(bytes, i + 1, end) == end).then_some(members),
            _ => return None,
        }
    }
}

enum Frame {
    Object { key: Option<String>, expecting_key: bool },
    Array { index: usize },
}

/// The JSON path (`annotations[12].keypoints[3]`) of the value being read at `offset`,
/// found by a light structural scan (strings and nesting only, no number parsing).
pub fn json_path_at(bytes: &[u8], offset: usize) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    let end = offset.min(bytes.len());
    while i < end {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if let Some(Frame::Object { key, expecting_key }) = stack.last_mut() {
                    if *expecting_key {
                        let stop = i.min(bytes.len());
                        *key = Some(String::from_utf8_lossy(&bytes[start..stop]).into_owned());
                    }
                }
            }
            b'{' => stack.push(Frame::Object { key: None, expecting_key: true }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { expecting_key, .. }) = stack.last_mut() {
                    *expecting_key = false;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { expecting_key, .. }) => *expecting_key = true,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_of_a_nested_value() {
        let text = br#"{"images": [], "annotations": [{"id": 1}, {"id": 2, "keypoints": [1, 2, 3"#;
        assert_eq!(json_path_at(text, text.len()), "annotations[1].keypoints[2]");
        let text = br#"[{"a": "x,[{"}, {"b": 1"#;
        assert_eq!(json_path_at(text, text.len()), "[1].b");
    }

    #[test]
    fn split_finds_the_records() {
        let text = br#" [ {"a": "x,]}\"{"}, [1, [2]] ,3,"s" , {} ] "#;
        let elems = split_array(text, 0..text.len()).unwrap();
        let parts: Vec<&str> = elems.iter().map(|r| std::str::from_utf8(&text[r.clone()]).unwrap()).collect();
        assert_eq!(parts, [r#"{"a": "x,]}\"{"}"#, "[1, [2]]", "3", r#""s""#, "{}"]);
        assert_eq!(split_array(b"[]", 0..2).unwrap().len(), 0);
        for bad in [&b"[1, 2"[..], b"[1, {2]", b"[1] x", b"{}", b"[\"abc]"] {
            assert!(split_array(bad, 0..bad.len()).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        let obj = br#"{"images": [1, 2], "info": {"a": [1, "}]"]}, "n": 5}"#;
        let m = split_object(obj).unwrap();
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["images", "info", "n"]);
        assert_eq!(&obj[m[0].1.clone()], b"[1, 2]");
        assert!(split_object(br#"{"a": 1, "a": 2}"#).is_none(), "repeated keys go to serde");
    }

    #[test]
    fn parallel_parse_equals_the_plain_parse() {
        let values: Vec<Vec<f64>> = (0..500).map(|i| vec![i as f64 * 0.1, -1e-7 * i as f64, 3.0]).collect();
        let text = serde_json::to_vec(&values).unwrap();
        assert_eq!(parse_array_par::<Vec<f64>>(&text).unwrap(), values);
        let mut broken = text.clone();
        let at = broken.len() / 2;
        broken[at] = b'x';
        assert_eq!(
            parse_array_par::<Vec<f64>>(&broken).unwrap_err(),
            parse_json::<Vec<Vec<f64>>>(&broken).unwrap_err()
        );
    }

    #[test]
    fn errors_name_the_record() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct R {
            score: f64,
        }
        let text = b"[{\"score\": 1.0},\n {\"score\": 0.5}, {\"score\": \"high\"}]";
        let err = parse_json::<Vec<R>>(text).unwrap_err();
        assert!(err.contains("record [2].score"), "{err}");
        let err = parse_json::<Vec<R>>(b"[{\"score\": 1.0}, {\"score\": NaN}]").unwrap_err();
        assert!(err.contains("[1].score") && err.contains("NaN and Infinity"), "{err}");
        let err = parse_json::<Vec<R>>(b"[{\"score\": 1.0}, {\"other\": 2}]").unwrap_err();
        assert!(err.contains("record [1]:") && err.contains("missing field `score`"), "{err}");
        let err = parse_json::<Vec<R>>(b"[{\"score\": 1.0}, {\"sco").unwrap_err();
        assert!(err.contains("truncated") && err.contains("[1]"), "{err}");
    }
}
