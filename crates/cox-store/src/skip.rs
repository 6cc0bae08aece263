//! Why a sample of an activation store has no row: the `skip` field of its sample line.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a sample of an activation store contributes no row. A sample line stores it by name
/// (`"skip": "image_unreadable"`, see `docs/formats.md`); a kept sample has no reason.
///
/// The variants are ordered as the extraction meets them, and the order is the one summaries
/// list them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// The ground-truth filter rejected the reference captions, so the model did not run.
    GtFilter,
    /// The image could not be opened or decoded. Why is logged when it happens, not stored: the
    /// operating system's wording differs between machines, and a shard must be a pure function
    /// of its samples.
    ImageUnreadable,
    /// The token was generated, but the selection rule's position has no captured state.
    PositionNotCaptured,
    /// No generated token stands for the token of interest.
    TokenNotGenerated,
}

impl Skip {
    /// Every reason, in order.
    pub const ALL: [Skip; 4] = [
        Skip::GtFilter,
        Skip::ImageUnreadable,
        Skip::PositionNotCaptured,
        Skip::TokenNotGenerated,
    ];

    /// The name a sample line stores.
    pub fn name(self) -> &'static str {
        match self {
            Skip::GtFilter => "gt_filter",
            Skip::ImageUnreadable => "image_unreadable",
            Skip::PositionNotCaptured => "position_not_captured",
            Skip::TokenNotGenerated => "token_not_generated",
        }
    }

    /// What the reason means, for people (summaries and reports).
    pub fn describe(self) -> &'static str {
        match self {
            Skip::GtFilter => "the token is not in the reference caption (ground-truth filter)",
            Skip::ImageUnreadable => "the image could not be read",
            Skip::PositionNotCaptured => "the recorded position has no captured state",
            Skip::TokenNotGenerated => "the generated caption does not contain the token",
        }
    }

    /// The reason a stored name stands for. Stores written before reasons were stored by name
    /// alone hold `image_unreadable: <error>`, which is read as [`Skip::ImageUnreadable`] (the
    /// error text is dropped).
    pub fn from_stored(stored: &str) -> Option<Skip> {
        Skip::ALL
            .into_iter()
            .find(|s| stored == s.name())
            .or_else(|| {
                stored
                    .starts_with("image_unreadable: ")
                    .then_some(Skip::ImageUnreadable)
            })
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Skip {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = String::deserialize(d)?;
        Skip::from_stored(&stored).ok_or_else(|| {
            let names: Vec<&str> = Skip::ALL.iter().map(|s| s.name()).collect();
            serde::de::Error::custom(format!(
                "unknown skip reason {stored:?} (expected one of {})",
                names.join(", ")
            ))
        })
    }
}
