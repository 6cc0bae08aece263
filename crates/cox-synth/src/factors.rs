//! The ground-truth factors of a scene: closed enums with their caption words, and the per-scene record.

use serde::{Deserialize, Serialize};

/// Generates a closed factor enum with `ALL`, `word()` (its caption word) and `Display`.
macro_rules! factor_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $(#[doc = concat!("`", $word, "`")] $variant),+
        }

        impl $name {
            /// Every value, in declaration order (the order sampling indexes into).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lowercase word this value has in captions and in factor labels.
            pub fn word(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.word())
            }
        }
    };
}

factor_enum!(
    /// The object's shape; its word is the noun of the object in captions.
    Shape {
        Circle => "circle",
        Square => "square",
        Triangle => "triangle",
        Star => "star",
        Cross => "cross",
        Diamond => "diamond",
    }
);

factor_enum!(
    /// The object's fill colour.
    Colour {
        Red => "red",
        Green => "green",
        Blue => "blue",
        Yellow => "yellow",
        Purple => "purple",
        Orange => "orange",
        White => "white",
    }
);

factor_enum!(
    /// The object's size class (circumradius 10 % or 15.5 % of the image side).
    Size {
        Small => "small",
        Large => "large",
    }
);

factor_enum!(
    /// The object's column in the 3×3 layout grid; the word captions use for its position.
    Position {
        Left => "left",
        Centre => "centre",
        Right => "right",
    }
);

factor_enum!(
    /// The object's row in the 3×3 layout grid; captions mention it only through relations (`above`, `below`).
    Row {
        Top => "top",
        Middle => "middle",
        Bottom => "bottom",
    }
);

factor_enum!(
    /// The scene's background colour.
    Background {
        Dark => "dark",
        Grass => "grass",
        Sky => "sky",
        Sand => "sand",
    }
);

factor_enum!(
    /// The scene's background texture (a low-contrast modulation of the background colour).
    Texture {
        Plain => "plain",
        Striped => "striped",
        Dotted => "dotted",
    }
);

impl Colour {
    /// The fill colour in sRGB.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 40, 40],
            Colour::Green => [40, 200, 70],
            Colour::Blue => [40, 80, 235],
            Colour::Yellow => [245, 220, 40],
            Colour::Purple => [150, 60, 205],
            Colour::Orange => [245, 140, 30],
            Colour::White => [245, 245, 245],
        }
    }
}

impl Background {
    /// The base background colour in sRGB (textures modulate it by at most ±14 %).
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Background::Dark => [38, 38, 48],
            Background::Grass => [74, 118, 52],
            Background::Sky => [128, 176, 226],
            Background::Sand => [214, 194, 146],
        }
    }
}

impl Size {
    /// The object's circumradius as a fraction of the image side.
    pub fn radius_fraction(self) -> f32 {
        match self {
            Size::Small => 0.1,
            Size::Large => 0.155,
        }
    }
}

impl Position {
    /// The grid column, 0 (left) to 2 (right).
    pub fn column(self) -> usize {
        self as usize
    }

    /// The caption phrase placing an object in this column.
    pub fn phrase(self) -> &'static str {
        match self {
            Position::Left => "on the left",
            Position::Centre => "in the centre",
            Position::Right => "on the right",
        }
    }
}

impl Row {
    /// The grid row, 0 (top) to 2 (bottom).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The ground truth of one object: its categorical factors and its exact placement in pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectFactors {
    /// The shape (the object's noun).
    pub shape: Shape,
    /// The fill colour.
    pub colour: Colour,
    /// The size class.
    pub size: Size,
    /// The grid column (the position word).
    pub position: Position,
    /// The grid row.
    pub row: Row,
    /// The exact centre `[x, y]` in pixels (x to the right, y down, pixel centres at `i + 0.5`).
    pub centre: [f32; 2],
    /// The exact circumradius in pixels.
    pub radius: f32,
}

/// The ground truth of one scene: everything the renderer and the caption grammar use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneFactors {
    /// The image side in pixels that `centre` and `radius` refer to.
    pub image_size: u32,
    /// The background colour.
    pub background: Background,
    /// The background texture.
    pub texture: Texture,
    /// The objects, one to three, in generation order (each in its own grid cell).
    pub objects: Vec<ObjectFactors>,
}

/// A kind of factor, for choosing which factor values a label list carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorKind {
    /// The object's shape (`shape=circle`).
    Shape,
    /// The object's colour (`colour=red`).
    Colour,
    /// The object's size (`size=small`).
    Size,
    /// The object's column (`position=left`).
    Position,
    /// The object's row (`row=top`).
    Row,
    /// The scene's background (`background=grass`).
    Background,
    /// The scene's texture (`texture=striped`).
    Texture,
}

impl FactorKind {
    /// Every kind.
    pub const ALL: &'static [FactorKind] = &[
        FactorKind::Shape,
        FactorKind::Colour,
        FactorKind::Size,
        FactorKind::Position,
        FactorKind::Row,
        FactorKind::Background,
        FactorKind::Texture,
    ];

    /// The kinds that distinguish objects sharing a noun, plus the scene factors: everything except the
    /// shape (constant once the noun is fixed) and the row (never stated in canonical captions).
    pub const DEFAULT: &'static [FactorKind] = &[
        FactorKind::Colour,
        FactorKind::Size,
        FactorKind::Position,
        FactorKind::Background,
        FactorKind::Texture,
    ];

    /// The key in `key=value` labels.
    pub fn key(self) -> &'static str {
        match self {
            FactorKind::Shape => "shape",
            FactorKind::Colour => "colour",
            FactorKind::Size => "size",
            FactorKind::Position => "position",
            FactorKind::Row => "row",
            FactorKind::Background => "background",
            FactorKind::Texture => "texture",
        }
    }
}
