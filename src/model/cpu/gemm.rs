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
    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// c (m × n, row-major) = a · b + beta · c.
pub fn gemm(a: View, b: View, c: &mut [f32], beta: f32) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert!(a.fits() && b.fits() && c.len() >= m * n, "matrix views exceed their buffers");
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
}
