//! The one-euro filter (Casiez, Roussel and Vogel, CHI 2012): a low-pass filter whose cutoff
//! rises with the signal's speed, so slow jitter is smoothed and fast motion lags little.

/// The filter's three settings (the paper's names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneEuro {
    /// Cutoff at rest, Hz: lower smooths more.
    pub min_cutoff: f64,
    /// How much the cutoff rises with speed: higher lags less.
    pub beta: f64,
    /// Cutoff of the speed estimate, Hz.
    pub d_cutoff: f64,
}

impl Default for OneEuro {
    fn default() -> Self {
        OneEuro { min_cutoff: 1.0, beta: 0.05, d_cutoff: 1.0 }
    }
}

/// The smoothing factor of a first-order low-pass filter with `cutoff` Hz, sampled every `dt` s.
fn alpha(cutoff: f64, dt: f64) -> f64 {
    let tau = 1.0 / (2.0 * std::f64::consts::PI * cutoff);
    1.0 / (1.0 + tau / dt)
}

/// One filtered value: its last output and speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Filtered {
    value: f64,
    speed: f64,
}

impl OneEuro {
    /// The first sample passes as it is.
    pub fn start(&self, x: f64) -> Filtered {
        Filtered { value: x, speed: 0.0 }
    }

    /// The next sample `x`, `dt` seconds after the last; returns the new state (its `value` is
    /// the output).
    pub fn next(&self, last: Filtered, x: f64, dt: f64) -> Filtered {
        let raw_speed = (x - last.value) / dt;
        let a_d = alpha(self.d_cutoff, dt);
        let speed = a_d * raw_speed + (1.0 - a_d) * last.speed;
        let a = alpha(self.min_cutoff + self.beta * speed.abs(), dt);
        Filtered { value: a * x + (1.0 - a) * last.value, speed }
    }
}

impl Filtered {
    pub fn value(self) -> f64 {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With β = 0 the filter is an exponential average with α = 1 / (1 + 1/(2π·f·dt)): by hand,
    /// f = 1 Hz at 30 frames/s gives α = 1 / (1 + 30/(2π)) = 0.173171…
    #[test]
    fn without_beta_it_is_an_exponential_average() {
        let f = OneEuro { min_cutoff: 1.0, beta: 0.0, d_cutoff: 1.0 };
        let a = 1.0 / (1.0 + 30.0 / (2.0 * std::f64::consts::PI));
        assert!((a - 0.173_171).abs() < 1e-6);
        let mut s = f.start(0.0);
        let mut want = 0.0;
        for _ in 0..5 {
            s = f.next(s, 10.0, 1.0 / 30.0);
            want = a * 10.0 + (1.0 - a) * want;
            assert!((s.value() - want).abs() < 1e-12);
        }
    }

    /// A still signal stays put; a jump is followed, faster with a larger β.
    #[test]
    fn still_stays_and_speed_shortens_the_lag() {
        let f = OneEuro::default();
        let mut s = f.start(5.0);
        for _ in 0..10 {
            s = f.next(s, 5.0, 1.0 / 30.0);
        }
        assert_eq!(s.value(), 5.0);
        let after = |beta: f64| {
            let f = OneEuro { beta, ..OneEuro::default() };
            let mut s = f.start(0.0);
            for _ in 0..3 {
                s = f.next(s, 100.0, 1.0 / 30.0);
            }
            s.value()
        };
        assert!(after(0.0) < after(0.05) && after(0.05) < after(1.0) && after(1.0) <= 100.0);
    }
}
