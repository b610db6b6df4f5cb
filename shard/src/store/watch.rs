//! WATCH on the keys' owner: which connections watch which keys of this shard, and which
//! of those connections saw a watched key change.
//!
//! A connection may live on any shard, so the owner of a key keeps the registrations and
//! the "dirty" marks itself; the connection's shard asks for the verdict when it runs
//! EXEC (with the owner paused, so nothing changes between the verdict and the
//! transaction). Nothing is shared between shards. The store calls [`Watches::touch`]
//! from every path that changes a key — writes, expiry, eviction, FLUSHALL — so a
//! command does not have to remember to.

use std::collections::{HashMap, HashSet};

use ahash::RandomState;

/// A watching connection: its shard, and its slot and generation there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Watcher {
    /// The connection's shard.
    pub shard: u16,
    /// Its slot in that shard's table.
    pub slot: u32,
    /// The slot's generation.
    pub gen: u32,
}

/// The watched keys of one shard. See the module docs.
#[derive(Default)]
pub struct Watches {
    by_key: HashMap<Box<[u8]>, Vec<Watcher>, RandomState>,
    /// Watchers one of whose keys changed since they watched it.
    dirty: HashSet<Watcher, RandomState>,
}

impl Watches {
    /// Whether no key is watched (the store's writes then skip the lookup).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Number of watched keys.
    pub fn keys(&self) -> usize {
        self.by_key.len()
    }

    /// `w` watches `key` from now on.
    pub fn watch(&mut self, key: &[u8], w: Watcher) {
        let list = match self.by_key.get_mut(key) {
            Some(list) => list,
            None => self.by_key.entry(key.into()).or_default(),
        };
        if !list.contains(&w) {
            list.push(w);
        }
    }

    /// `key` changed: every watcher of it is dirty (and no longer needs to watch it).
    #[inline]
    pub fn touch(&mut self, key: &[u8]) {
        if let Some(list) = self.by_key.remove(key) {
            self.dirty.extend(list);
        }
    }

    /// Every watched key for which `exists` holds changed (FLUSHALL, FLUSHDB).
    pub fn touch_existing(&mut self, mut exists: impl FnMut(&[u8]) -> bool) {
        let gone: Vec<Box<[u8]>> = self.by_key.keys().filter(|k| exists(k)).cloned().collect();
        for k in gone {
            self.touch(&k);
        }
    }

    /// `w` stops watching `keys`; returns whether one of its keys changed meanwhile.
    pub fn unwatch<'a>(&mut self, w: Watcher, keys: impl IntoIterator<Item = &'a [u8]>) -> bool {
        for key in keys {
            if let Some(list) = self.by_key.get_mut(key) {
                list.retain(|x| *x != w);
                if list.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
        self.dirty.remove(&w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Watcher = Watcher {
        shard: 0,
        slot: 1,
        gen: 1,
    };
    const B: Watcher = Watcher {
        shard: 1,
        slot: 1,
        gen: 1,
    };

    #[test]
    fn a_change_dirties_every_watcher_of_the_key_and_only_them() {
        let mut w = Watches::default();
        w.watch(b"k", A);
        w.watch(b"k", B);
        w.watch(b"other", B);
        w.touch(b"k");
        w.touch(b"unwatched");
        assert!(w.unwatch(A, [&b"k"[..]]));
        assert!(w.unwatch(B, [&b"k"[..], b"other"]));
        assert!(w.is_empty());
    }

    #[test]
    fn unwatching_clears_the_mark_and_the_registrations() {
        let mut w = Watches::default();
        w.watch(b"k", A);
        w.watch(b"k", A);
        assert!(!w.unwatch(A, [&b"k"[..]]));
        assert!(w.is_empty());
        w.touch(b"k");
        w.watch(b"k", A);
        assert!(
            !w.unwatch(A, [&b"k"[..]]),
            "a change before WATCH does not count"
        );
    }

    #[test]
    fn flush_dirties_the_watchers_of_existing_keys_only() {
        let mut w = Watches::default();
        w.watch(b"present", A);
        w.watch(b"absent", B);
        w.touch_existing(|k| k == b"present");
        assert!(w.unwatch(A, [&b"present"[..]]));
        assert!(!w.unwatch(B, [&b"absent"[..]]));
    }

    #[test]
    fn a_new_connection_in_a_reused_slot_is_not_dirty() {
        let mut w = Watches::default();
        w.watch(b"k", A);
        w.touch(b"k");
        let reused = Watcher { gen: 2, ..A };
        w.watch(b"k", reused);
        assert!(!w.unwatch(reused, [&b"k"[..]]));
        assert!(w.unwatch(A, [&b"k"[..]]));
    }
}
