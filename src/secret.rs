//! `Secret<T>`: a wrapper for values that must never be printed.
//!
//! Detected values (the vault's contents) and keys (the audit hashing key, upstream API keys)
//! live in a `Secret`. Its `Debug` and `Display` print `*****`, so a stray `{:?}` in a log line
//! or an error message cannot leak what it holds, and the inner value is zeroized on drop.
//! Reading the value takes an explicit call to [`Secret::expose`], which is easy to grep for.
//!
//! Limits: zeroizing on drop clears the final allocation only; copies made earlier by a
//! `String` reallocating, or by the allocator, are not tracked.

use std::fmt;
use zeroize::Zeroize;

/// A value that prints as `*****` and is zeroized when dropped.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The wrapped value. Every call site is a place where a secret is read on purpose.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl From<String> for Secret<String> {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret<String> {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new(String::from("kim.minsu@example.com"));
        assert_eq!(format!("{s:?}"), "*****");
        assert_eq!(format!("{s}"), "*****");
        assert_eq!(format!("{:?}", Some(&s)), "Some(*****)");
        assert_eq!(s.expose(), "kim.minsu@example.com");
    }
}
