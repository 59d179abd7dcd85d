//! A reader that hashes and counts what passes through it, optionally refusing more than a cap
//! (the decompression-bomb guard sits on the *uncompressed* side).

use sha2::{Digest as _, Sha256};
use std::io::{self, Read};

/// Hashes (sha256) and counts the bytes read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    cap_bytes: Option<u64>,
    exceeded: bool,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`; with `cap_bytes`, reading past the cap fails (and [`Self::exceeded`] says so).
    pub(crate) fn new(inner: R, cap_bytes: Option<u64>) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            cap_bytes,
            exceeded: false,
        }
    }

    /// Whether a read went past the cap.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Read the rest of the stream (hashing it), e.g. tar padding after the end-of-archive mark.
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while self.read(&mut buf)? != 0 {}
        Ok(())
    }

    /// The digest and byte count of everything read.
    pub(crate) fn finish(self) -> (crate::Digest, u64) {
        (crate::Digest::from_hasher(self.hasher), self.bytes)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if let Some(cap) = self.cap_bytes {
            if self.bytes > cap {
                self.exceeded = true;
                return Err(io::Error::other("uncompressed size cap exceeded"));
            }
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_counts_and_caps() {
        let mut r = HashingReader::new(&b"hello"[..], None);
        r.drain().unwrap();
        let (d, n) = r.finish();
        assert_eq!(n, 5);
        assert_eq!(d, crate::Digest::of(b"hello"));
        let mut capped = HashingReader::new(&[0u8; 100][..], Some(10));
        assert!(capped.drain().is_err());
        assert!(capped.exceeded());
    }
}
