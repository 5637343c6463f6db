//! openhands-aci 0.1.8's tab-expanded matching for `str_replace`: `old_str` is compared with
//! the file with every TAB expanded to 8 columns in both (the 0.1.8 tab handling,
//! `docs/spec/compat-latest-texts.md` §3, row E2). The reference then writes the whole file
//! back expanded (`docs/spec/editor.md` §8, quirk E1); sandboxd maps the match back to a byte
//! range of the original text so only the matched region changes (`docs/compat-editor.md`,
//! "Tabs are kept").

use memchr::memmem;

use super::occurrences::{count_upto2, occurrence_lines, Match};
use crate::errors::ToolError;
use crate::text::expandtabs;

/// The file text with tabs expanded, and where each TAB went.
struct Expanded {
    text: String,
    /// (byte offset of the TAB in the original, start in the expanded text, width)
    tabs: Vec<(usize, usize, usize)>,
}

impl Expanded {
    fn new(orig: &str) -> Self {
        let mut text = String::with_capacity(orig.len() + orig.len() / 4);
        let mut tabs = Vec::new();
        let mut col = 0usize;
        for (i, c) in orig.char_indices() {
            match c {
                '\t' => {
                    let w = 8 - col % 8;
                    tabs.push((i, text.len(), w));
                    text.extend(std::iter::repeat_n(' ', w));
                    col += w;
                }
                '\n' | '\r' => {
                    text.push(c);
                    col = 0;
                }
                c => {
                    text.push(c);
                    col += 1;
                }
            }
        }
        Expanded { text, tabs }
    }

    /// Original offset for a match starting at expanded offset `x`, and the spaces of a
    /// partly matched TAB to keep before the replacement.
    fn map_start(&self, x: usize) -> (usize, usize) {
        let idx = self.tabs.partition_point(|t| t.1 <= x);
        if idx == 0 {
            return (x, 0);
        }
        let (o, e, w) = self.tabs[idx - 1];
        if x < e + w {
            (o, x - e)
        } else {
            (o + 1 + (x - e - w), 0)
        }
    }

    /// Original offset for a match ending (exclusive) at expanded offset `x`, and the
    /// spaces of a partly matched TAB to keep after the replacement.
    fn map_end(&self, x: usize) -> (usize, usize) {
        let idx = self.tabs.partition_point(|t| t.1 < x);
        if idx == 0 {
            return (x, 0);
        }
        let (o, e, w) = self.tabs[idx - 1];
        if x < e + w {
            (o + 1, e + w - x)
        } else {
            (o + 1 + (x - e - w), 0)
        }
    }
}

/// Finds the one occurrence of `old` in `text`. An exact match wins; otherwise the
/// reference's rule applies: compare with TABs expanded in both texts.
pub(super) fn find_unique(text: &str, old: &str, path: &str) -> Result<Match, ToolError> {
    let raw = count_upto2(text, old);
    if raw == 1 {
        let start = if old.is_empty() {
            0
        } else {
            memmem::find(text.as_bytes(), old.as_bytes()).unwrap_or(0)
        };
        return Ok(Match {
            start,
            end: start + old.len(),
            lead: 0,
            trail: 0,
        });
    }
    let old_e = expandtabs(old);
    if !text.contains('\t') && !old.contains('\t') {
        return Err(if raw == 0 {
            ToolError::OldStrNotFound {
                old: old.to_string(),
                path: path.to_string(),
            }
        } else {
            ToolError::OldStrNotUnique {
                old: old.to_string(),
                lines: occurrence_lines(text, old),
            }
        });
    }
    let exp = Expanded::new(text);
    match count_upto2(&exp.text, &old_e) {
        1 => {
            let xs = if old_e.is_empty() {
                0
            } else {
                memmem::find(exp.text.as_bytes(), old_e.as_bytes()).unwrap_or(0)
            };
            let (start, lead) = exp.map_start(xs);
            let (end, trail) = exp.map_end(xs + old_e.len());
            Ok(Match {
                start,
                end: end.max(start),
                lead,
                trail,
            })
        }
        0 if raw == 0 => Err(ToolError::OldStrNotFound {
            old: old_e.into_owned(),
            path: path.to_string(),
        }),
        0 => Err(ToolError::OldStrNotUnique {
            lines: occurrence_lines(text, old),
            old: old_e.into_owned(),
        }),
        _ => Err(ToolError::OldStrNotUnique {
            lines: occurrence_lines(&exp.text, &old_e),
            old: old_e.into_owned(),
        }),
    }
}
