//! The one matrix product of the fast CPU path.
//!
//! Chosen by measurement on these machines (one thread, f32, conv-shaped products such as
//! 64×576·576×3072 and 256×2304·2304×192): `matrixmultiply` 0.3 ran at 56–82 GFLOP/s,
//! the `gemm` crate (0.17, and 0.15 inside dfdx) at 55–65 GFLOP/s.

/// A row-major or transposed view of a matrix: element (i, j) is at `i·rs + j·cs`.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View { data, rows, cols, rs: cols, cs: 1 }
    }
    pub fn t(self) -> Self {
        View { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    /// Whether the last element lies inside the buffer (checked arithmetic: a view whose offset
    /// overflows does not fit).
    fn fits(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1).checked_mul(self.rs).zip((self.cols - 1).checked_mul(self.cs));
        last.and_then(|(r, c)| r.checked_add(c)).is_some_and(|i| i < self.data.len())
    }
}

/// c (m × n, row-major) = a · b + beta · c.
pub fn gemm(a: View, b: View, c: &mut [f32], beta: f32) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    let c_fits = m.checked_mul(n).is_some_and(|mn| c.len() >= mn);
    assert!(a.fits() && b.fits() && c_fits, "matrix views exceed their buffers");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: every element the product reads (a, b) or writes (c) lies inside its slice, as
    // checked above; the slices do not overlap (c is a unique borrow).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_and_transposes_by_hand() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3×2
        let mut c = [0.0; 4];
        gemm(View::new(&a, 2, 3), View::new(&b, 3, 2), &mut c, 0.0);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        // aᵀ·a' with a' = a viewed 2×3: (3×2)·(2×3).
        let mut d = [1.0; 9];
        gemm(View::new(&a, 2, 3).t(), View::new(&a, 2, 3), &mut d, 1.0);
        assert_eq!(d, [18.0, 23.0, 28.0, 23.0, 30.0, 37.0, 28.0, 37.0, 46.0]);
    }

    #[test]
    fn views_whose_offsets_overflow_do_not_fit() {
        let a = [1.0f32; 4];
        // (rows − 1)·rs wraps around usize to a small number with unchecked arithmetic.
        let huge = View { data: &a, rows: 3, cols: 1, rs: usize::MAX / 2 + 1, cs: 1 };
        assert!(!huge.fits());
        assert!(View::new(&a, 2, 2).fits() && !View::new(&a, 2, 3).fits());
        let r = std::panic::catch_unwind(|| gemm(View::new(&a, 2, 2), View::new(&a, 2, 2), &mut [0.0; 3], 0.0));
        assert!(r.is_err(), "c too small for 2 × 2");
    }
}
