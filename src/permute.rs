//! A keyed pseudo-random permutation of `0..n`, computed on the fly.
//!
//! The sweep visits every address×port index exactly once in an order that spreads probes
//! across hosts, without storing the order (memory is O(1) whatever `n` is). masscan uses a
//! Feistel-style "blackrock" cipher and zmap a cyclic multiplicative group for the same goal;
//! this is a balanced Feistel network over the smallest even-bit power-of-two domain
//! `>= n`, with cycle walking: values that land outside `0..n` are encrypted again until they
//! fall inside. A bijection on the domain stays a bijection when restricted that way, and
//! because the domain is less than 4n the expected number of extra rounds is below 3.

/// Number of Feistel rounds. Four rounds of a good mixing function give a pseudo-random
/// permutation (Luby-Rackoff); the sweep needs spreading, not cryptographic strength.
const ROUNDS: u64 = 4;

/// A permutation of `0..n` keyed by a seed.
#[derive(Debug, Clone)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    half_mask: u64,
    keys: [u64; ROUNDS as usize],
}

impl Permutation {
    /// The permutation of `0..n` for `seed`.
    pub fn new(n: u64, seed: u64) -> Self {
        // Smallest even bit count 2h with 2^(2h) >= n (h >= 1).
        let bits = if n <= 1 {
            2
        } else {
            64 - (n - 1).leading_zeros()
        };
        let half_bits = bits.div_ceil(2).max(1);
        let half_mask = if half_bits >= 64 {
            u64::MAX
        } else {
            (1u64 << half_bits) - 1
        };
        let mut keys = [0; ROUNDS as usize];
        let mut s = seed;
        for k in &mut keys {
            s = splitmix64(s);
            *k = s;
        }
        Self {
            n,
            half_bits,
            half_mask,
            keys,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether the domain is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The image of `i` (`i < n`); each `i` maps to a distinct value in `0..n`.
    pub fn apply(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        let mut x = i;
        // Cycle walking terminates: the cycle containing `i` re-enters `0..n` at latest at `i`.
        loop {
            x = self.encrypt(x);
            if x < self.n {
                return x;
            }
        }
    }

    fn encrypt(&self, x: u64) -> u64 {
        let mut l = (x >> self.half_bits) & self.half_mask;
        let mut r = x & self.half_mask;
        for k in self.keys {
            let f = splitmix64(r ^ k) & self.half_mask;
            (l, r) = (r, l ^ f);
        }
        (l << self.half_bits) | r
    }
}

/// SplitMix64's finalizer: a fast, well-mixing 64-bit hash.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_permutation(n: u64, seed: u64) -> bool {
        let p = Permutation::new(n, seed);
        let mut seen = vec![false; n as usize];
        for i in 0..n {
            let v = p.apply(i);
            if v >= n || seen[v as usize] {
                return false;
            }
            seen[v as usize] = true;
        }
        seen.iter().all(|&s| s)
    }

    #[test]
    fn visits_each_index_exactly_once_for_odd_and_edge_sizes() {
        for n in [
            1, 2, 3, 5, 7, 15, 16, 17, 255, 256, 257, 1000, 4099, 65_537, 196_608,
        ] {
            assert!(is_permutation(n, 42), "n={n}");
        }
    }

    #[test]
    fn order_is_scrambled_and_depends_on_seed() {
        let p = Permutation::new(10_000, 1);
        let q = Permutation::new(10_000, 2);
        let a: Vec<u64> = (0..100).map(|i| p.apply(i)).collect();
        let b: Vec<u64> = (0..100).map(|i| q.apply(i)).collect();
        assert_ne!(a, b);
        // Spread: consecutive outputs are rarely adjacent.
        let adjacent = a.windows(2).filter(|w| w[0].abs_diff(w[1]) <= 1).count();
        assert!(adjacent < 5, "{adjacent}");
    }

    #[test]
    fn huge_domains_work_without_memory() {
        let p = Permutation::new(1 << 40, 7);
        for i in [0, 1, (1 << 40) - 1] {
            assert!(p.apply(i) < 1 << 40);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_size_and_seed_is_a_permutation(n in 1u64..5000, seed: u64) {
            prop_assert!(is_permutation(n, seed));
        }
    }
}
