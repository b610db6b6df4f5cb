//! [`Block`]: an owned, fixed-size byte buffer behind a thin (8-byte) pointer.
//!
//! `Box<[u8]>` is a fat pointer, 16 bytes; with a million keys in the slab that is 8 MB
//! spent on lengths the entry can record itself. A block keeps its length as a LEB128
//! varint in its first bytes (one byte for entries under 128 bytes, which the allocator's
//! size classes usually absorb) and hands out the bytes after it. The unsafe code of the
//! keyspace is here and nowhere else: allocation, the slice views and deallocation.
//! The LEB128 helpers here also encode the lengths in an entry's header.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// An owned byte buffer whose length lives in its own allocation (see the module docs).
pub struct Block {
    /// Start of an allocation of `prefix + len` bytes, align 1: the varint `len`, then the
    /// bytes. Never dangling: every block holds at least its prefix.
    ptr: NonNull<u8>,
}

// SAFETY: a Block owns its allocation exclusively, as Box<[u8]> does; shared references
// only read it.
unsafe impl Send for Block {}
// SAFETY: as above: &Block gives read-only access.
unsafe impl Sync for Block {}

/// Bytes of `n` as a LEB128 varint.
#[inline]
pub(super) fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Writes `n` as a LEB128 varint at the start of `buf`; returns the bytes written.
#[inline]
pub(super) fn put_varint(buf: &mut [u8], mut n: usize) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        buf[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    buf[i] = n as u8;
    i + 1
}

/// Reads a LEB128 varint at the start of `buf`: its value and its length.
#[inline]
pub(super) fn get_varint(buf: &[u8]) -> (usize, usize) {
    let first = buf[0];
    if first < 0x80 {
        return (first as usize, 1);
    }
    let mut n = 0usize;
    let mut shift = 0;
    for (i, &b) in buf.iter().enumerate() {
        n |= ((b & 0x7f) as usize) << shift;
        if b < 0x80 {
            return (n, i + 1);
        }
        shift += 7;
    }
    unreachable!("a varint runs past its buffer")
}

#[inline]
fn layout(total: usize) -> Layout {
    Layout::from_size_align(total, 1).expect("block larger than isize::MAX")
}

impl Block {
    /// A block of `len` zero bytes.
    pub fn zeroed(len: usize) -> Block {
        let prefix = varint_len(len);
        let total = prefix.checked_add(len).expect("block size overflows");
        // SAFETY: `total` >= 1, so the layout is not zero-sized.
        let raw = unsafe { alloc::alloc_zeroed(layout(total)) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout(total));
        };
        // SAFETY: the allocation has `total` >= `prefix` writable bytes.
        let head = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), prefix) };
        put_varint(head, len);
        Block { ptr }
    }

    /// The length and the prefix's size.
    #[inline]
    fn dims(&self) -> (usize, usize) {
        let p = self.ptr.as_ptr();
        // SAFETY: the prefix is a complete varint at the start of the allocation (written
        // by `zeroed`, never changed): reading stops at its last byte.
        let first = unsafe { *p };
        if first < 0x80 {
            return (first as usize, 1);
        }
        let (mut n, mut shift, mut i) = (0usize, 0, 0);
        loop {
            // SAFETY: as above, `i` stays within the prefix.
            let b = unsafe { *p.add(i) };
            n |= ((b & 0x7f) as usize) << shift;
            i += 1;
            if b < 0x80 {
                return (n, i);
            }
            shift += 7;
        }
    }

    /// Bytes the allocation takes: the length prefix and the bytes.
    #[inline]
    pub fn alloc_size(&self) -> usize {
        let (len, prefix) = self.dims();
        prefix + len
    }
}

impl Deref for Block {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        let (len, prefix) = self.dims();
        // SAFETY: bytes `prefix..prefix + len` of the allocation are initialized (zeroed
        // at allocation) and owned by this block; the borrow of `self` keeps them alive.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(prefix), len) }
    }
}

impl DerefMut for Block {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let (len, prefix) = self.dims();
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive. The prefix is
        // outside the slice, so it cannot be overwritten through it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(prefix), len) }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let total = self.alloc_size();
        // SAFETY: `ptr` came from `alloc_zeroed` with this same layout (the prefix records
        // the length it was allocated with) and is freed once, here.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout(total)) }
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_every_prefix_size_hold_their_bytes_and_free_them() {
        for len in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000, 3 << 20] {
            let mut b = Block::zeroed(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.alloc_size(), varint_len(len) + len);
            assert!(b.iter().all(|&x| x == 0));
            for (i, x) in b.iter_mut().enumerate() {
                *x = i as u8;
            }
            assert!(b.iter().enumerate().all(|(i, &x)| x == i as u8));
        }
    }

    #[test]
    fn varints_round_trip() {
        for n in [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 29, usize::MAX] {
            let mut buf = [0u8; 10];
            let len = put_varint(&mut buf, n);
            assert_eq!(len, varint_len(n));
            assert_eq!(get_varint(&buf), (n, len));
        }
    }

    #[test]
    fn a_block_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Block>(), 8);
        assert_eq!(std::mem::size_of::<Option<Block>>(), 8);
    }
}
