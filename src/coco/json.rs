//! JSON reading with errors that say *which record* is wrong, not only a byte position:
//! users fix files by record (`annotations[1234].keypoints`), not by column number.

use anyhow::{anyhow, Context, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads and parses a whole JSON file; any error names the file and the JSON path of the record.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    parse_json(&bytes).map_err(|msg| anyhow!("{}: {msg}", path.display()))
}

/// Parses JSON bytes; the error string locates the failure as a JSON path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| describe_error(bytes, &e))
}

fn describe_error(bytes: &[u8], e: &serde_json::Error) -> String {
    let offset = byte_offset(bytes, e.line(), e.column());
    let path = json_path_at(bytes, offset);
    let at = if path.is_empty() {
        String::from("at the top level")
    } else {
        format!("in record {path}")
    };
    if e.is_eof() {
        return format!("file ends early {at} (truncated JSON?): {e}");
    }
    let rest = &bytes[offset.saturating_sub(1).min(bytes.len())..];
    let rest = &rest[..rest.len().min(12)];
    let hint = if [&b"NaN"[..], b"Infinity", b"-Infinity"]
        .iter()
        .any(|tok| rest.windows(tok.len()).any(|w| w == *tok))
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
        let err = parse_json::<Vec<R>>(b"[{\"score\": 1.0}, {\"sco").unwrap_err();
        assert!(err.contains("truncated") && err.contains("[1]"), "{err}");
    }
}
