//! The random inspection draw (双随机): from the licensed after-the-fact cases, a share per
//! credit tier (more for worse tiers), and for each an inspector of the linked division, both
//! at random — reproducibly: the same seed over the same pool draws the same cases.

use std::collections::BTreeMap;

use rand::{seq::{IndexedRandom, SliceRandom}, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A case that may be drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub case_id: String,
    pub tier: String,
    /// The inspectors of the division the case's item is linked to.
    pub inspectors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pick {
    pub case_id: String,
    pub tier: String,
    /// None when the linked division has no inspector on file (the division admin assigns).
    pub inspector: Option<String>,
}

/// Share of each tier to inspect (`A` … `D`, 0.0–1.0); a tier not named is not drawn.
pub type Ratios = BTreeMap<String, f64>;

/// How the draw samples: the share per tier, and how long an enterprise inspected for an item
/// is left out of the draws for that item (查重对碰, seed 002 item 95).
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub ratios: Ratios,
    pub no_repeat_days: i64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { ratios: default_ratios(), no_repeat_days: 180 }
    }
}

pub fn default_ratios() -> Ratios {
    [("A", 0.05), ("B", 0.2), ("C", 0.6), ("D", 1.0)].into_iter().map(|(t, r)| (t.to_string(), r)).collect()
}

/// How many of `n` a ratio draws: at least one when the ratio is positive and the tier has
/// any case, never more than `n`.
pub fn quota(n: usize, ratio: f64) -> usize {
    if n == 0 || ratio <= 0.0 {
        return 0;
    }
    ((n as f64 * ratio).ceil() as usize).clamp(1, n)
}

/// Draws from `pool`. The pool is put in case-id order first, so the result depends only on
/// the pool's contents, the ratios and the seed.
pub fn draw(pool: &[Candidate], ratios: &Ratios, seed: u64) -> Vec<Pick> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picks = Vec::new();
    for (tier, ratio) in ratios {
        let mut candidates: Vec<&Candidate> = pool.iter().filter(|c| &c.tier == tier).collect();
        candidates.sort_by(|a, b| a.case_id.cmp(&b.case_id));
        let k = quota(candidates.len(), *ratio);
        candidates.shuffle(&mut rng);
        for c in candidates.into_iter().take(k) {
            let inspector = c.inspectors.choose(&mut rng).cloned();
            picks.push(Pick { case_id: c.case_id.clone(), tier: tier.clone(), inspector });
        }
    }
    picks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Vec<Candidate> {
        let mut pool = Vec::new();
        for (tier, n) in [("A", 40), ("B", 20), ("C", 10), ("D", 3)] {
            for i in 0..n {
                pool.push(Candidate { case_id: format!("{tier}-{i:03}"), tier: tier.into(), inspectors: vec!["i1".into(), "i2".into(), "i3".into()] });
            }
        }
        pool
    }

    #[test]
    fn each_tier_gets_its_share_and_the_same_seed_draws_the_same_cases() {
        let picks = draw(&pool(), &default_ratios(), 20261123);
        let count = |t: &str| picks.iter().filter(|p| p.tier == t).count();
        // 5% of 40, 20% of 20, 60% of 10, all 3.
        assert_eq!((count("A"), count("B"), count("C"), count("D")), (2, 4, 6, 3));
        let mut shuffled = pool();
        shuffled.reverse();
        assert_eq!(draw(&shuffled, &default_ratios(), 20261123), picks, "the pool's order does not matter");
        assert_ne!(draw(&pool(), &default_ratios(), 1), picks, "another seed draws differently");
        assert!(picks.iter().all(|p| p.inspector.is_some()));
    }

    #[test]
    fn quotas_round_up_and_stay_within_the_tier() {
        assert_eq!(quota(0, 0.5), 0);
        assert_eq!(quota(7, 0.0), 0);
        assert_eq!(quota(7, 0.01), 1);
        assert_eq!(quota(7, 1.0), 7);
        assert_eq!(quota(7, 3.0), 7);
    }
}
