//! Known secrets for signing tests, and the search for them where they must not be.

/// Two valid destination secrets (the first is the Standard Webhooks vectors' own).
pub const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const SECRET_B: &str = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQy";

/// Every file directly in `dir`, concatenated.
pub fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
