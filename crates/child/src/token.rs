//! Random tokens: the one way sandboxd makes the unguessable strings it hands out or hides
//! behind (the kernel's connection key, the editor callback's token, the shell's command
//! marker, multipart boundaries, message ids).
//!
//! Straight from the kernel's `getrandom(2)`: it cannot fail on the kernels sandboxd runs on
//! (3.17+) once the pool is initialised, and it blocks only until then. A token that is not
//! random is worse than none, so a failure is a panic, not a weaker fallback.

/// `n` random bytes as `2 * n` lowercase hex digits.
pub fn hex(n: usize) -> String {
    let bytes = bytes(n);
    let mut out = String::with_capacity(2 * n);
    for b in bytes {
        out.push(char::from_digit(u32::from(b >> 4), 16).expect("a nibble"));
        out.push(char::from_digit(u32::from(b & 15), 16).expect("a nibble"));
    }
    out
}

/// `n` random bytes.
pub fn bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`, which lives
        // across the call.
        let r = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), n - filled, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            assert!(
                e.kind() == std::io::ErrorKind::Interrupted,
                "getrandom failed: {e}"
            );
            continue;
        }
        filled += r as usize;
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_length_asked_and_differ() {
        let a = hex(16);
        let b = hex(16);
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(bytes(1000).len(), 1000);
        assert_eq!(hex(0), "");
    }
}
