//! Hot loops compiled for the vector width of the CPU they run on.

/// Defines a function whose body is compiled twice, for baseline x86-64 (the binary's target,
/// whose SSE2 loops are 4 wide) and for AVX2 (8 wide), the second chosen at run time where the
/// CPU has it. Only the vector width changes: Rust never fuses a multiply and an add, so the bits
/// are the same either way.
macro_rules! with_avx2 {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // `unsafe fn`: a safe `#[target_feature]` fn needs Rust 1.86 (rust-version: 1.82).
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $body
                // SAFETY: the CPU was just found to have AVX2.
                return unsafe { avx2($($arg),*) };
            }
            fn plain($($arg: $ty),*) $body
            plain($($arg),*)
        }
    };
}
pub(crate) use with_avx2;
