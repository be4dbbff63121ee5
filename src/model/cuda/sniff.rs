//! Reading a buffer's address and length out of dfdx 0.13's `Debug` text of a CUDA tensor
//! (`Tensor { id: …, data: CachableCudaSlice { data: CudaSlice { cu_device_ptr: P, len: L, …`),
//! with formatting cut short once both are seen. Plain Rust, tested on any build; the CUDA path
//! (`ptr`) uses it and checks it against a real buffer once per process.

use std::fmt::Write;

/// Collects `Debug` text until the address and length are both read, then stops it.
#[derive(Default)]
struct Sniffer {
    text: String,
    found: Option<(u64, usize)>,
}

/// The number after `key` in `text`, if a non-digit follows it (the number is complete).
fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits: String = text[start..].chars().take_while(|c| c.is_ascii_digit()).collect();
    let complete = text[start + digits.len()..].chars().next().is_some();
    (complete && !digits.is_empty()).then(|| digits.parse().ok()).flatten()
}

impl Write for Sniffer {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.text.push_str(s);
        if let (Some(ptr), Some(len)) = (number_after(&self.text, "cu_device_ptr: "), number_after(&self.text, "len: "))
        {
            self.found = Some((ptr, len as usize));
            return Err(std::fmt::Error); // enough: the rest (the device, the cache) is long
        }
        if self.text.len() > 4096 {
            return Err(std::fmt::Error); // not the layout this module knows
        }
        Ok(())
    }
}

/// The address and length a value's `Debug` text gives first, if it has dfdx 0.13's layout.
pub fn sniff(value: &impl std::fmt::Debug) -> Option<(u64, usize)> {
    let mut s = Sniffer::default();
    let _ = write!(s, "{value:?}");
    s.found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_and_length_come_from_the_first_slice_in_the_text() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct CudaSlice {
            cu_device_ptr: u64,
            len: usize,
            device: String,
        }
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Tensor {
            id: usize,
            data: CudaSlice,
            shape: (usize, usize),
        }
        let t = Tensor {
            id: 3,
            data: CudaSlice { cu_device_ptr: 140_234_567_168, len: 12, device: "x".repeat(10_000) },
            shape: (3, 4),
        };
        assert_eq!(sniff(&t), Some((140_234_567_168, 12)));
        assert!(sniff(&"no such fields").is_none());
        assert!(sniff(&"x".repeat(10_000)).is_none(), "gives up on long text without the fields");
        assert_eq!(number_after("len: 12", "len: "), None, "a number at the end may go on");
        assert_eq!(number_after("len: 12,", "len: "), Some(12));
    }
}
