//! A fixed-size log-linear histogram of microsecond values (about 1.6% resolution above 1 ms), cheap to record
//! into and to merge.

/// Values below this are counted exactly.
const LINEAR: u64 = 1024;
/// Sub-buckets per power of two above `LINEAR` (2^6).
const SUB_BITS: u32 = 6;
const SUBS: usize = 1 << SUB_BITS;
/// Powers of two from 2^10 to 2^40 µs (≈ 12 days).
const OCTAVES: usize = 31;

/// Counts of microsecond values.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; LINEAR as usize + OCTAVES * SUBS],
            total: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // ≥ 10
    let octave = (exp - LINEAR.trailing_zeros()) as usize;
    let sub = ((v >> (exp - SUB_BITS)) as usize) & (SUBS - 1);
    (LINEAR as usize + octave * SUBS + sub).min(LINEAR as usize + OCTAVES * SUBS - 1)
}

/// The smallest value that falls in bucket `i`.
fn lower_bound(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let octave = ((i - LINEAR as usize) / SUBS) as u32;
    let sub = ((i - LINEAR as usize) % SUBS) as u64;
    let exp = octave + LINEAR.trailing_zeros();
    (1u64 << exp) + (sub << (exp - SUB_BITS))
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), as the lower bound of its bucket; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return lower_bound(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..5_000_000u64).step_by(7) {
            let i = index(v);
            assert!(i >= last);
            last = i;
            let lb = lower_bound(i);
            assert!(lb <= v, "{v} {lb}");
            assert!((v - lb) as f64 <= v as f64 / 60.0 + 1.0, "{v} {lb}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        let mut other = Histogram::default();
        other.record(50_000);
        h.merge(&other);
        assert_eq!(h.count(), 1001);
        assert_eq!(h.quantile(0.5), 501);
        assert_eq!(h.quantile(0.99), 991);
        assert_eq!(h.quantile(1.0), 49_664);
        assert_eq!(h.max(), 50_000);
    }
}
