//! Keyboard input: Playwright key names and combinations (`Enter`, `Control+a`,
//! `ControlOrMeta+Shift+t`) turned into CDP key events.
//!
//! Owns the key table and the event sequence; it must never locate elements (the caller
//! focuses the target first).

use chromiumoxide::Page;
use serde_json::json;

use crate::cdp;
use crate::session::ActionError;

/// CDP modifier bit of a modifier name (`ControlOrMeta` is Control off macOS).
pub fn modifier_bit(name: &str) -> Option<u8> {
    match name {
        "Alt" => Some(1),
        "Control" | "ControlOrMeta" => Some(2),
        "Meta" => Some(4),
        "Shift" => Some(8),
        _ => None,
    }
}

/// A resolved key.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// `KeyboardEvent.key`.
    pub key: String,
    /// `KeyboardEvent.code`.
    pub code: String,
    /// Windows virtual key code.
    pub key_code: u32,
    /// Text the key types (none for control keys).
    pub text: Option<String>,
}

fn key(key: &str, code: &str, key_code: u32, text: Option<&str>) -> Key {
    Key {
        key: key.into(),
        code: code.into(),
        key_code,
        text: text.map(str::to_string),
    }
}

/// Looks a key name up (Playwright's US layout names, or a single character).
pub fn lookup(name: &str) -> Option<Key> {
    let named = match name {
        "Enter" => key("Enter", "Enter", 13, Some("\r")),
        "Tab" => key("Tab", "Tab", 9, None),
        "Backspace" => key("Backspace", "Backspace", 8, None),
        "Delete" => key("Delete", "Delete", 46, None),
        "Escape" => key("Escape", "Escape", 27, None),
        "ArrowLeft" => key("ArrowLeft", "ArrowLeft", 37, None),
        "ArrowUp" => key("ArrowUp", "ArrowUp", 38, None),
        "ArrowRight" => key("ArrowRight", "ArrowRight", 39, None),
        "ArrowDown" => key("ArrowDown", "ArrowDown", 40, None),
        "Home" => key("Home", "Home", 36, None),
        "End" => key("End", "End", 35, None),
        "PageUp" => key("PageUp", "PageUp", 33, None),
        "PageDown" => key("PageDown", "PageDown", 34, None),
        "Insert" => key("Insert", "Insert", 45, None),
        "Space" | " " => key(" ", "Space", 32, Some(" ")),
        "Shift" => key("Shift", "ShiftLeft", 16, None),
        "Control" | "ControlOrMeta" => key("Control", "ControlLeft", 17, None),
        "Alt" => key("Alt", "AltLeft", 18, None),
        "Meta" => key("Meta", "MetaLeft", 91, None),
        "CapsLock" => key("CapsLock", "CapsLock", 20, None),
        "NumLock" => key("NumLock", "NumLock", 144, None),
        "ContextMenu" => key("ContextMenu", "ContextMenu", 93, None),
        "Backquote" | "`" => key("`", "Backquote", 192, Some("`")),
        "Minus" | "-" => key("-", "Minus", 189, Some("-")),
        "Equal" | "=" => key("=", "Equal", 187, Some("=")),
        "Backslash" | "\\" => key("\\", "Backslash", 220, Some("\\")),
        "BracketLeft" | "[" => key("[", "BracketLeft", 219, Some("[")),
        "BracketRight" | "]" => key("]", "BracketRight", 221, Some("]")),
        "Semicolon" | ";" => key(";", "Semicolon", 186, Some(";")),
        "Quote" | "'" => key("'", "Quote", 222, Some("'")),
        "Comma" | "," => key(",", "Comma", 188, Some(",")),
        "Period" | "." => key(".", "Period", 190, Some(".")),
        "Slash" | "/" => key("/", "Slash", 191, Some("/")),
        _ => {
            if let Some(n) = name.strip_prefix('F').and_then(|n| n.parse::<u32>().ok()) {
                if (1..=12).contains(&n) {
                    return Some(key(name, name, 111 + n, None));
                }
            }
            let letter = name
                .strip_prefix("Key")
                .filter(|l| l.len() == 1)
                .map(str::to_lowercase);
            let digit = name.strip_prefix("Digit").filter(|d| d.len() == 1);
            let single = letter.as_deref().or(digit).unwrap_or(name);
            let mut chars = single.chars();
            let c = chars.next()?;
            if chars.next().is_some() {
                return None;
            }
            let s = c.to_string();
            return Some(if c.is_ascii_alphabetic() {
                key(
                    &s,
                    &format!("Key{}", c.to_ascii_uppercase()),
                    c.to_ascii_uppercase() as u32,
                    Some(&s),
                )
            } else if c.is_ascii_digit() {
                key(&s, &format!("Digit{c}"), c as u32, Some(&s))
            } else {
                key(&s, "", 0, Some(&s))
            });
        }
    };
    Some(named)
}

/// Splits a combination into keys: `Control+a` → [Control, a]; `Shift++` → [Shift, +].
pub fn parse_combo(combo: &str) -> Result<Vec<Key>, ActionError> {
    let mut names: Vec<&str> = Vec::new();
    let mut rest = combo;
    loop {
        if rest == "+" {
            names.push("+");
            break;
        }
        match rest.find('+') {
            Some(0) if rest.len() > 1 && rest.as_bytes()[1] == b'+' => {
                names.push("+");
                rest = &rest[2..];
            }
            Some(i) => {
                names.push(&rest[..i]);
                rest = &rest[i + 1..];
                if rest.is_empty() {
                    names.push("");
                    break;
                }
            }
            None => {
                names.push(rest);
                break;
            }
        }
    }
    names
        .iter()
        .map(|n| {
            lookup(n)
                .ok_or_else(|| ActionError::error(format!("Keyboard.press: Unknown key: \"{n}\"")))
        })
        .collect()
}

/// Presses a combination: modifiers down in order, the last key down and up, modifiers up
/// in reverse.
pub async fn press(page: &Page, keys: &[Key]) -> Result<(), ActionError> {
    let Some((main, mods)) = keys.split_last() else {
        return Ok(());
    };
    let mut mask = 0u8;
    for m in mods {
        mask |= modifier_bit(&m.key).unwrap_or(0);
        send(page, "rawKeyDown", m, mask, None).await?;
    }
    let shifted = mask & 8 != 0;
    let mut main = main.clone();
    if shifted && main.key.len() == 1 && main.key.chars().all(|c| c.is_ascii_lowercase()) {
        main.key = main.key.to_uppercase();
        main.text = Some(main.key.clone());
    }
    // Shortcuts (Control/Alt/Meta held) type no text; the browser handles them as commands.
    let text = if mask & (1 | 2 | 4) == 0 {
        main.text.clone()
    } else {
        None
    };
    let kind = if text.is_some() {
        "keyDown"
    } else {
        "rawKeyDown"
    };
    send(page, kind, &main, mask, text.as_deref()).await?;
    send(page, "keyUp", &main, mask, None).await?;
    for m in mods.iter().rev() {
        mask &= !modifier_bit(&m.key).unwrap_or(0);
        send(page, "keyUp", m, mask, None).await?;
    }
    Ok(())
}

async fn send(
    page: &Page,
    kind: &str,
    k: &Key,
    modifiers: u8,
    text: Option<&str>,
) -> Result<(), ActionError> {
    let mut params = json!({
        "type": kind,
        "key": k.key,
        "code": k.code,
        "windowsVirtualKeyCode": k.key_code,
        "nativeVirtualKeyCode": k.key_code,
        "modifiers": modifiers,
    });
    if let Some(t) = text {
        params["text"] = json!(t);
        params["unmodifiedText"] = json!(t);
    }
    cdp::call(page, "Input.dispatchKeyEvent", params).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(combo: &str) -> Vec<String> {
        parse_combo(combo)
            .unwrap()
            .into_iter()
            .map(|k| k.key)
            .collect()
    }

    #[test]
    fn combos_split_like_playwright() {
        assert_eq!(names("Enter"), ["Enter"]);
        assert_eq!(names("Control+a"), ["Control", "a"]);
        assert_eq!(names("ControlOrMeta+Shift+t"), ["Control", "Shift", "t"]);
        assert_eq!(names("Shift++"), ["Shift", "+"]);
        assert_eq!(names("+"), ["+"]);
        assert_eq!(names("KeyA"), ["a"]);
        assert_eq!(names("Digit1"), ["1"]);
        assert_eq!(lookup("Enter").unwrap().text.as_deref(), Some("\r"));
        assert_eq!(lookup("F5").unwrap().key_code, 116);
        assert_eq!(lookup("b").unwrap().code, "KeyB");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = parse_combo("Control+Foo").unwrap_err();
        assert_eq!(e.0, "Error: Keyboard.press: Unknown key: \"Foo\"");
        assert!(parse_combo("Control+").is_err());
    }
}
