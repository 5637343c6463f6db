//! The page-side JavaScript: the marking script and the small helpers of `js/helpers.js`,
//! looked up by name. Owns no logic of its own; it must never build JavaScript from
//! untrusted text (arguments always travel as CDP call arguments, never spliced in).

use std::collections::HashMap;
use std::sync::OnceLock;

/// The marking script (a function declaration, `this` = document, one argument: the
/// frame's bid prefix).
pub const MARK: &str = include_str!("js/mark.js");

const HELPERS: &str = include_str!("js/helpers.js");

/// A helper function declaration from `js/helpers.js` by its `//@ name` marker.
///
/// Panics only if the name is not in the file, which the unit test below rules out for
/// every name the crate uses.
pub fn helper(name: &str) -> &'static str {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    let map = MAP.get_or_init(|| {
        let mut map = HashMap::new();
        for section in HELPERS.split("\n//@ ").skip(1) {
            let name = section.split(':').next().unwrap_or("").trim();
            if let Some(start) = section.find("\nfunction") {
                map.insert(name, section[start + 1..].trim_end());
            }
        }
        map
    });
    map.get(name)
        .copied()
        .unwrap_or_else(|| panic!("no JS helper named {name}"))
}

/// Every helper name the crate uses.
#[cfg(test)]
const HELPER_NAMES: &[&str] = &[
    "find_by_bid",
    "frame_owners",
    "active_element",
    "describe",
    "prepare_fill",
    "select_options",
    "focus",
    "is_file_input",
    "settle",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_helper_is_a_single_function() {
        for name in HELPER_NAMES {
            let src = helper(name);
            assert!(src.starts_with("function ("), "{name}: {src}");
            assert!(src.ends_with('}'), "{name}");
            assert!(!src.contains("\n//@"), "{name} runs into the next helper");
        }
        assert!(MARK.contains("async function (parentBid)"));
    }
}
