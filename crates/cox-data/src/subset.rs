//! Deterministic selection: seeded subsampling, `--limit`, and `--shard I/N`.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};

/// One of `count` deterministic, contiguous, near-equal parts of a sample list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// Part `index` (0-based) of `count`.
    ///
    /// # Errors
    /// [`DataError::InvalidShard`] when `count == 0` or `index >= count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(DataError::InvalidShard {
                spec: format!("{index}/{count}"),
                msg: "need 0 <= I < N".into(),
            });
        }
        Ok(Self { index, count })
    }

    /// The 0-based index `I`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The number of shards `N`.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The rows of a `len`-sample list this shard takes: `[I·len/N, (I+1)·len/N)`. The shards
    /// `0..N` tile `0..len` in order, so concatenating their outputs restores the unsharded order.
    ///
    /// ```
    /// use cox_data::Shard;
    /// let parts: Vec<_> = (0..3).map(|i| Shard::new(i, 3).unwrap().range(10)).collect();
    /// assert_eq!(parts, vec![0..3, 3..6, 6..10]);
    /// ```
    pub fn range(&self, len: usize) -> Range<usize> {
        let at = |i: usize| ((i as u128 * len as u128) / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

impl FromStr for Shard {
    type Err = DataError;

    /// Parses `I/N` (0-based `I`).
    fn from_str(s: &str) -> Result<Self> {
        let invalid = |msg: &str| DataError::InvalidShard {
            spec: s.to_string(),
            msg: msg.to_string(),
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| invalid("expected I/N, e.g. 0/8"))?;
        let i = i.trim().parse().map_err(|_| invalid("I is not a number"))?;
        let n = n.trim().parse().map_err(|_| invalid("N is not a number"))?;
        Shard::new(i, n).map_err(|_| invalid("need 0 <= I < N"))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A seeded uniform subsample of `n` samples (without replacement, file order kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subsample {
    /// How many samples to keep (all when there are fewer).
    pub n: usize,
    /// The seed of the draw.
    pub seed: u64,
}

/// Which samples of a loaded dataset to process. Applied in this order: `subsample`, `limit`,
/// `shard` — so every shard of one run sees the same global selection, and the shards partition it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Subset {
    /// A seeded subsample, drawn first.
    pub subsample: Option<Subsample>,
    /// Keep the first `limit` samples of what is left.
    pub limit: Option<usize>,
    /// Keep one shard of what is left.
    pub shard: Option<Shard>,
}

impl Subset {
    /// Refuses a subset that selects nothing whatever the dataset (a limit or subsample of 0):
    /// a run needs at least one sample, and an empty store would look complete.
    ///
    /// ```
    /// use cox_data::Subset;
    /// assert!(Subset { limit: Some(0), ..Default::default() }.check().is_err());
    /// assert!(Subset { limit: Some(1), ..Default::default() }.check().is_ok());
    /// ```
    ///
    /// # Errors
    /// [`DataError::EmptySubset`] naming the setting.
    pub fn check(&self) -> Result<()> {
        if self.limit == Some(0) {
            return Err(DataError::EmptySubset {
                what: "a limit of 0 samples",
            });
        }
        if self.subsample.is_some_and(|s| s.n == 0) {
            return Err(DataError::EmptySubset {
                what: "a subsample of 0 samples",
            });
        }
        Ok(())
    }

    /// The selected indices into a `len`-sample list, increasing.
    ///
    /// ```
    /// use cox_data::{Shard, Subsample, Subset};
    /// let s = Subset { subsample: Some(Subsample { n: 6, seed: 1 }), limit: Some(4), shard: None };
    /// let idx = s.indices(100);
    /// assert_eq!(idx.len(), 4);
    /// assert!(idx.windows(2).all(|w| w[0] < w[1]));
    /// assert_eq!(idx, s.indices(100)); // the same seed draws the same samples
    /// ```
    pub fn indices(&self, len: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = match self.subsample {
            Some(Subsample { n, seed }) if n < len => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut v = rand::seq::index::sample(&mut rng, len, n).into_vec();
                v.sort_unstable();
                v
            }
            _ => (0..len).collect(),
        };
        if let Some(limit) = self.limit {
            idx.truncate(limit);
        }
        if let Some(shard) = self.shard {
            let r = shard.range(idx.len());
            idx = idx[r].to_vec();
        }
        idx
    }

    /// Keeps the selected items of `items`, in order.
    pub fn apply<T>(&self, items: Vec<T>) -> Vec<T> {
        let idx = self.indices(items.len());
        let mut keep = vec![false; items.len()];
        for i in idx {
            keep[i] = true;
        }
        items
            .into_iter()
            .zip(keep)
            .filter_map(|(item, k)| k.then_some(item))
            .collect()
    }
}
