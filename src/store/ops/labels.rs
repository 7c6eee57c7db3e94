//! Project labels: create, rename or recolour, delete, and [`ensure_label`]
//! for the issue code (GitLab creates a label the first time it is set on an
//! issue).
//!
//! Invariants:
//! - a label's name is unique in its project compared case-insensitively,
//!   as the ticket label index (`TICKETS_BY_LABEL`) keys on the lower-cased
//!   name: two labels differing only in case would be one label to filters;
//! - a stored name is trimmed, non-empty, at most [`Label::MAX_NAME_CHARS`]
//!   characters, without commas (GitLab's rule: `labels=a,b` is a list) or
//!   control characters ([`Label::normalize_name`]);
//! - a stored colour is `#RRGGBB` ([`Label::normalize_color`]);
//! - tickets refer to labels by name, so a rename or a delete rewrites the
//!   tickets that carry the label in the same transaction.

use redb::ReadableTable;

use super::Txn;
use crate::store::model::*;
use crate::store::tables::*;
use crate::store::{decode, encode, now_millis, StoreError};

/// A change to project labels. Names and colours arrive normalized (see
/// [`Label::normalize_name`], [`Label::normalize_color`]); the op checks again.
#[derive(Debug, Clone)]
pub enum LabelOp {
    Create {
        project_id: u64,
        name: String,
        color: String,
        description: Option<String>,
    },
    /// `None` leaves a field as it is; `description: Some(None)` clears it.
    Update {
        project_id: u64,
        label_id: u64,
        new_name: Option<String>,
        color: Option<String>,
        description: Option<Option<String>>,
    },
    Delete {
        project_id: u64,
        label_id: u64,
    },
}

/// What a [`LabelOp`] produced: the label as stored (or as it was, for a delete).
#[derive(Debug, Clone)]
pub enum LabelOutcome {
    Label(Label),
    Deleted(Label),
}

/// Why a label name is refused, worded as GitLab words its `title` errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelNameError {
    Blank,
    TooLong,
    Invalid,
}

impl LabelNameError {
    /// GitLab's message for the `title` field.
    pub fn reason(self) -> &'static str {
        match self {
            LabelNameError::Blank => "can't be blank",
            LabelNameError::TooLong => "is too long (maximum is 255 characters)",
            LabelNameError::Invalid => "is invalid",
        }
    }
}

impl Label {
    /// GitLab's limit on label titles.
    pub const MAX_NAME_CHARS: usize = 255;
    /// The colour of labels created implicitly (GitLab's `Label::DEFAULT_COLOR`).
    pub const DEFAULT_COLOR: &'static str = "#6699cc";
    /// Returned by the store when a name is taken in the project.
    pub const NAME_TAKEN: &'static str = "Label already exists";

    /// The stored form of a label name: trimmed, and refused when blank, too
    /// long, or holding a comma or a control character.
    pub fn normalize_name(raw: &str) -> Result<String, LabelNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(LabelNameError::Blank);
        }
        if name.chars().count() > Label::MAX_NAME_CHARS {
            return Err(LabelNameError::TooLong);
        }
        if name.contains(',') || name.chars().any(char::is_control) {
            return Err(LabelNameError::Invalid);
        }
        Ok(name.to_string())
    }

    /// The stored form of a colour, `#RRGGBB`, from what GitLab accepts:
    /// `#RRGGBB`, `#RGB`, or a CSS colour name (any case).
    pub fn normalize_color(raw: &str) -> Option<String> {
        let raw = raw.trim();
        if let Some(hex) = raw.strip_prefix('#') {
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            return match hex.len() {
                6 => Some(raw.to_string()),
                3 => Some(hex.chars().fold(String::from("#"), |mut out, c| {
                    out.push(c);
                    out.push(c);
                    out
                })),
                _ => None,
            };
        }
        let name = raw.to_ascii_lowercase();
        CSS_COLORS
            .binary_search_by(|(known, _)| known.cmp(&name.as_str()))
            .ok()
            .map(|index| CSS_COLORS[index].1.to_string())
    }

    /// The text colour GitLab shows on this label's background: dark on
    /// light colours, white otherwise (GitLab's `text_color_for_bg`).
    pub fn text_color(&self) -> &'static str {
        let channel = |range: std::ops::Range<usize>| {
            self.color
                .get(range)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .map_or(0.0, f64::from)
        };
        let (r, g, b) = (channel(1..3), channel(3..5), channel(5..7));
        if r * 0.299 + g * 0.587 + b * 0.114 > 186.0 {
            "#1F1E24"
        } else {
            "#FFFFFF"
        }
    }
}

pub fn apply(txn: &mut Txn, op: &LabelOp) -> Result<LabelOutcome, StoreError> {
    match op {
        LabelOp::Create {
            project_id,
            name,
            color,
            description,
        } => {
            let (name, color) = checked(name, color)?;
            txn.project(*project_id)?
                .ok_or(StoreError::NotFound("Project"))?;
            if find_by_name(txn, *project_id, &name)?.is_some() {
                return Err(StoreError::Conflict(Label::NAME_TAKEN.into()));
            }
            let label = insert(txn, *project_id, name, color, description.clone())?;
            Ok(LabelOutcome::Label(label))
        }
        LabelOp::Update {
            project_id,
            label_id,
            new_name,
            color,
            description,
        } => {
            let mut label =
                get(txn, *project_id, *label_id)?.ok_or(StoreError::NotFound("Label"))?;
            let old_name = label.name.clone();
            if let Some(new_name) = new_name {
                let new_name = Label::normalize_name(new_name)
                    .map_err(|e| StoreError::Conflict(format!("name {}", e.reason())))?;
                if let Some(other) = find_by_name(txn, *project_id, &new_name)? {
                    if other.id != label.id {
                        return Err(StoreError::Conflict(Label::NAME_TAKEN.into()));
                    }
                }
                label.name = new_name;
            }
            if let Some(color) = color {
                label.color = Label::normalize_color(color)
                    .ok_or_else(|| StoreError::Conflict("color is invalid".into()))?;
            }
            if let Some(description) = description {
                label.description = description.clone();
            }
            save(txn, *project_id, &label)?;
            if label.name != old_name {
                relabel_tickets(txn, *project_id, &old_name, Some(&label.name))?;
            }
            Ok(LabelOutcome::Label(label))
        }
        LabelOp::Delete {
            project_id,
            label_id,
        } => {
            let label = get(txn, *project_id, *label_id)?.ok_or(StoreError::NotFound("Label"))?;
            txn.w.open_table(LABELS)?.remove((*project_id, *label_id))?;
            relabel_tickets(txn, *project_id, &label.name, None)?;
            Ok(LabelOutcome::Deleted(label))
        }
    }
}

/// The project's label called `name` (case-insensitively), created with
/// [`Label::DEFAULT_COLOR`] when there is none, as GitLab does when an issue
/// is given an unknown label. Use the returned `name` on the ticket so every
/// ticket spells the label the same way. A name that
/// [`Label::normalize_name`] refuses is a refusal of the whole job.
pub(crate) fn ensure_label(txn: &Txn, project_id: u64, name: &str) -> Result<Label, StoreError> {
    let name = Label::normalize_name(name)
        .map_err(|e| StoreError::Conflict(format!("label name {}", e.reason())))?;
    if let Some(label) = find_by_name(txn, project_id, &name)? {
        return Ok(label);
    }
    txn.project(project_id)?
        .ok_or(StoreError::NotFound("Project"))?;
    insert(txn, project_id, name, Label::DEFAULT_COLOR.into(), None)
}

fn checked(name: &str, color: &str) -> Result<(String, String), StoreError> {
    let name = Label::normalize_name(name)
        .map_err(|e| StoreError::Conflict(format!("name {}", e.reason())))?;
    let color = Label::normalize_color(color)
        .ok_or_else(|| StoreError::Conflict("color is invalid".into()))?;
    Ok((name, color))
}

fn insert(
    txn: &Txn,
    project_id: u64,
    name: String,
    color: String,
    description: Option<String>,
) -> Result<Label, StoreError> {
    let label = Label {
        id: txn.counter("next_label_id")?,
        name,
        color,
        description,
        created_at: now_millis(),
    };
    save(txn, project_id, &label)?;
    Ok(label)
}

fn save(txn: &Txn, project_id: u64, label: &Label) -> Result<(), StoreError> {
    txn.w
        .open_table(LABELS)?
        .insert((project_id, label.id), encode(label)?.as_slice())?;
    Ok(())
}

fn get(txn: &Txn, project_id: u64, label_id: u64) -> Result<Option<Label>, StoreError> {
    let table = txn.w.open_table(LABELS)?;
    let value = table.get((project_id, label_id))?;
    value.map(|v| decode("labels", v.value())).transpose()
}

/// Projects hold tens to hundreds of labels: a scan of the project's range
/// is cheaper than keeping a name index in step.
fn find_by_name(txn: &Txn, project_id: u64, name: &str) -> Result<Option<Label>, StoreError> {
    let wanted = name.to_lowercase();
    let table = txn.w.open_table(LABELS)?;
    for row in table.range((project_id, 0)..=(project_id, u64::MAX))? {
        let (_, v) = row?;
        let label: Label = decode("labels", v.value())?;
        if label.name.to_lowercase() == wanted {
            return Ok(Some(label));
        }
    }
    Ok(None)
}

/// Renames (`Some(new)`) or removes (`None`) the label `old` on every ticket
/// of the project that carries it; `save_ticket` keeps the index in step.
fn relabel_tickets(
    txn: &Txn,
    project_id: u64,
    old: &str,
    new: Option<&str>,
) -> Result<(), StoreError> {
    let key = old.to_lowercase();
    let numbers: Vec<u64> = {
        let index = txn.w.open_table(TICKETS_BY_LABEL)?;
        let range =
            index.range((project_id, key.as_str(), 0)..=(project_id, key.as_str(), u64::MAX))?;
        range
            .map(|row| row.map(|(k, _)| k.value().2))
            .collect::<Result<_, _>>()?
    };
    for number in numbers {
        let Some(mut ticket) = txn.ticket(project_id, number)? else {
            continue;
        };
        let mut labels = Vec::with_capacity(ticket.labels.len());
        for label in ticket.labels.drain(..) {
            let replacement = if label.to_lowercase() == key {
                new.map(str::to_string)
            } else {
                Some(label)
            };
            if let Some(replacement) = replacement {
                if !labels.contains(&replacement) {
                    labels.push(replacement);
                }
            }
        }
        ticket.labels = labels;
        txn.save_ticket(&ticket)?;
    }
    Ok(())
}

/// CSS named colours (CSS Color Module Level 4 §6.1), sorted by name for
/// binary search. GitLab accepts these names for label colours.
#[rustfmt::skip]
const CSS_COLORS: &[(&str, &str)] = &[
    ("aliceblue", "#f0f8ff"), ("antiquewhite", "#faebd7"), ("aqua", "#00ffff"),
    ("aquamarine", "#7fffd4"), ("azure", "#f0ffff"), ("beige", "#f5f5dc"),
    ("bisque", "#ffe4c4"), ("black", "#000000"), ("blanchedalmond", "#ffebcd"),
    ("blue", "#0000ff"), ("blueviolet", "#8a2be2"), ("brown", "#a52a2a"),
    ("burlywood", "#deb887"), ("cadetblue", "#5f9ea0"), ("chartreuse", "#7fff00"),
    ("chocolate", "#d2691e"), ("coral", "#ff7f50"), ("cornflowerblue", "#6495ed"),
    ("cornsilk", "#fff8dc"), ("crimson", "#dc143c"), ("cyan", "#00ffff"),
    ("darkblue", "#00008b"), ("darkcyan", "#008b8b"), ("darkgoldenrod", "#b8860b"),
    ("darkgray", "#a9a9a9"), ("darkgreen", "#006400"), ("darkgrey", "#a9a9a9"),
    ("darkkhaki", "#bdb76b"), ("darkmagenta", "#8b008b"), ("darkolivegreen", "#556b2f"),
    ("darkorange", "#ff8c00"), ("darkorchid", "#9932cc"), ("darkred", "#8b0000"),
    ("darksalmon", "#e9967a"), ("darkseagreen", "#8fbc8f"), ("darkslateblue", "#483d8b"),
    ("darkslategray", "#2f4f4f"), ("darkslategrey", "#2f4f4f"), ("darkturquoise", "#00ced1"),
    ("darkviolet", "#9400d3"), ("deeppink", "#ff1493"), ("deepskyblue", "#00bfff"),
    ("dimgray", "#696969"), ("dimgrey", "#696969"), ("dodgerblue", "#1e90ff"),
    ("firebrick", "#b22222"), ("floralwhite", "#fffaf0"), ("forestgreen", "#228b22"),
    ("fuchsia", "#ff00ff"), ("gainsboro", "#dcdcdc"), ("ghostwhite", "#f8f8ff"),
    ("gold", "#ffd700"), ("goldenrod", "#daa520"), ("gray", "#808080"),
    ("green", "#008000"), ("greenyellow", "#adff2f"), ("grey", "#808080"),
    ("honeydew", "#f0fff0"), ("hotpink", "#ff69b4"), ("indianred", "#cd5c5c"),
    ("indigo", "#4b0082"), ("ivory", "#fffff0"), ("khaki", "#f0e68c"),
    ("lavender", "#e6e6fa"), ("lavenderblush", "#fff0f5"), ("lawngreen", "#7cfc00"),
    ("lemonchiffon", "#fffacd"), ("lightblue", "#add8e6"), ("lightcoral", "#f08080"),
    ("lightcyan", "#e0ffff"), ("lightgoldenrodyellow", "#fafad2"), ("lightgray", "#d3d3d3"),
    ("lightgreen", "#90ee90"), ("lightgrey", "#d3d3d3"), ("lightpink", "#ffb6c1"),
    ("lightsalmon", "#ffa07a"), ("lightseagreen", "#20b2aa"), ("lightskyblue", "#87cefa"),
    ("lightslategray", "#778899"), ("lightslategrey", "#778899"), ("lightsteelblue", "#b0c4de"),
    ("lightyellow", "#ffffe0"), ("lime", "#00ff00"), ("limegreen", "#32cd32"),
    ("linen", "#faf0e6"), ("magenta", "#ff00ff"), ("maroon", "#800000"),
    ("mediumaquamarine", "#66cdaa"), ("mediumblue", "#0000cd"), ("mediumorchid", "#ba55d3"),
    ("mediumpurple", "#9370db"), ("mediumseagreen", "#3cb371"), ("mediumslateblue", "#7b68ee"),
    ("mediumspringgreen", "#00fa9a"), ("mediumturquoise", "#48d1cc"), ("mediumvioletred", "#c71585"),
    ("midnightblue", "#191970"), ("mintcream", "#f5fffa"), ("mistyrose", "#ffe4e1"),
    ("moccasin", "#ffe4b5"), ("navajowhite", "#ffdead"), ("navy", "#000080"),
    ("oldlace", "#fdf5e6"), ("olive", "#808000"), ("olivedrab", "#6b8e23"),
    ("orange", "#ffa500"), ("orangered", "#ff4500"), ("orchid", "#da70d6"),
    ("palegoldenrod", "#eee8aa"), ("palegreen", "#98fb98"), ("paleturquoise", "#afeeee"),
    ("palevioletred", "#db7093"), ("papayawhip", "#ffefd5"), ("peachpuff", "#ffdab9"),
    ("peru", "#cd853f"), ("pink", "#ffc0cb"), ("plum", "#dda0dd"),
    ("powderblue", "#b0e0e6"), ("purple", "#800080"), ("rebeccapurple", "#663399"),
    ("red", "#ff0000"), ("rosybrown", "#bc8f8f"), ("royalblue", "#4169e1"),
    ("saddlebrown", "#8b4513"), ("salmon", "#fa8072"), ("sandybrown", "#f4a460"),
    ("seagreen", "#2e8b57"), ("seashell", "#fff5ee"), ("sienna", "#a0522d"),
    ("silver", "#c0c0c0"), ("skyblue", "#87ceeb"), ("slateblue", "#6a5acd"),
    ("slategray", "#708090"), ("slategrey", "#708090"), ("snow", "#fffafa"),
    ("springgreen", "#00ff7f"), ("steelblue", "#4682b4"), ("tan", "#d2b48c"),
    ("teal", "#008080"), ("thistle", "#d8bfd8"), ("tomato", "#ff6347"),
    ("turquoise", "#40e0d0"), ("violet", "#ee82ee"), ("wheat", "#f5deb3"),
    ("white", "#ffffff"), ("whitesmoke", "#f5f5f5"), ("yellow", "#ffff00"),
    ("yellowgreen", "#9acd32"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn label(color: &str) -> Label {
        Label {
            id: 1,
            name: "x".into(),
            color: color.into(),
            description: None,
            created_at: 0,
        }
    }

    #[test]
    fn css_colour_table_is_sorted_and_complete() {
        assert!(CSS_COLORS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(CSS_COLORS.len(), 148);
        assert!(CSS_COLORS
            .iter()
            .all(|(_, hex)| Label::normalize_color(hex).as_deref() == Some(*hex)));
    }

    #[test]
    fn colours_gitlab_accepts_are_stored_as_rrggbb() {
        assert_eq!(
            Label::normalize_color("#FFAABB").as_deref(),
            Some("#FFAABB")
        );
        assert_eq!(
            Label::normalize_color(" #d9534f ").as_deref(),
            Some("#d9534f")
        );
        assert_eq!(Label::normalize_color("#abc").as_deref(), Some("#aabbcc"));
        assert_eq!(Label::normalize_color("Red").as_deref(), Some("#ff0000"));
        assert_eq!(
            Label::normalize_color("rebeccapurple").as_deref(),
            Some("#663399")
        );
    }

    #[test]
    fn malformed_colours_are_refused() {
        for bad in [
            "",
            "#",
            "#ff",
            "#ffff",
            "#fffff",
            "#fffffff",
            "#gggggg",
            "ffaabb",
            "notacolor",
            "#ff aa",
            "#é12",
            "red;",
            "rgb(1,2,3)",
        ] {
            assert_eq!(Label::normalize_color(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(Label::normalize_name("  bug ").as_deref(), Ok("bug"));
        assert_eq!(
            Label::normalize_name("scope::value").as_deref(),
            Ok("scope::value")
        );
        assert_eq!(Label::normalize_name("a/b c").as_deref(), Ok("a/b c"));
        assert_eq!(Label::normalize_name("   "), Err(LabelNameError::Blank));
        assert_eq!(Label::normalize_name("a,b"), Err(LabelNameError::Invalid));
        assert_eq!(Label::normalize_name("a\nb"), Err(LabelNameError::Invalid));
        assert_eq!(
            Label::normalize_name(&"é".repeat(256)),
            Err(LabelNameError::TooLong)
        );
        assert!(Label::normalize_name(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn text_colour_contrasts_with_the_background() {
        assert_eq!(label("#d9534f").text_color(), "#FFFFFF");
        assert_eq!(label("#ffffff").text_color(), "#1F1E24");
        assert_eq!(label("#6699cc").text_color(), "#FFFFFF");
        assert_eq!(label("#ffff00").text_color(), "#1F1E24");
    }
}
