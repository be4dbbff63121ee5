//! NumPy `.npy` files (format 1.0: little-endian, C order), how `dypose export --reference`
//! hands a runtime its inputs and what dypose computes from them.

/// The values of one array.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// The bytes of an `.npy` file holding `values` in `shape`.
pub fn npy_bytes(shape: &[usize], values: &Values) -> Vec<u8> {
    let (descr, n) = match values {
        Values::F32(v) => ("<f4", v.len()),
        Values::I64(v) => ("<i8", v.len()),
    };
    assert_eq!(shape.iter().product::<usize>(), n, "the values do not fill {shape:?}");
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64,
    // ending in a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    match values {
        Values::F32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Values::I64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_data_as_the_format_describes() {
        let b = npy_bytes(&[2], &Values::I64(vec![1, -2]));
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + len) % 64, 0, "the data starts at a multiple of 64");
        let header = std::str::from_utf8(&b[10..10 + len]).unwrap();
        assert_eq!(header.trim_end(), "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }");
        assert!(header.ends_with('\n'));
        assert_eq!(&b[10 + len..], &[1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let b = npy_bytes(&[1, 2], &Values::F32(vec![1.0, 0.5]));
        let len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert!(std::str::from_utf8(&b[10..10 + len]).unwrap().contains("'shape': (1, 2)"));
        assert_eq!(&b[10 + len..], &[0, 0, 0x80, 0x3f, 0, 0, 0, 0x3f]);
    }
}
