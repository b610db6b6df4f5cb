//! Pub/sub on one shard: which of this shard's connections subscribe to which channels,
//! patterns and shard channels, and what each connection subscribes to.
//!
//! A connection's subscriptions live on its own shard. PUBLISH is a fan-out: every shard
//! delivers the message to its own subscribers and answers how many it reached, and the
//! publisher's shard sums them. Messages from one publisher reach every shard through that
//! shard's ordered request batches, so each subscriber sees them in publish order.

use std::collections::{HashMap, HashSet};

use ahash::RandomState;

use crate::conn::ConnId;
use crate::glob;

/// The three namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// PSUBSCRIBE: glob patterns matched against PUBLISH's channel.
    Pattern,
    /// SSUBSCRIBE / SPUBLISH.
    Shard,
}

impl Kind {
    fn index(self) -> usize {
        match self {
            Kind::Channel => 0,
            Kind::Pattern => 1,
            Kind::Shard => 2,
        }
    }
}

type Names = HashSet<Box<[u8]>, RandomState>;

/// What one connection subscribes to.
#[derive(Default, Debug)]
pub struct Subscriptions {
    sets: [Names; 3],
}

impl Subscriptions {
    /// Its subscriptions of `kind`.
    pub fn of(&self, kind: Kind) -> &Names {
        &self.sets[kind.index()]
    }

    /// How many of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        self.sets[kind.index()].len()
    }

    /// The count SUBSCRIBE and PSUBSCRIBE replies carry (channels and patterns); shard
    /// channels are counted alone.
    pub fn reply_count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.count(Kind::Shard),
            _ => self.count(Kind::Channel) + self.count(Kind::Pattern),
        }
    }

    /// Whether it subscribes to anything (RESP2's subscribed context).
    pub fn is_empty(&self) -> bool {
        self.sets.iter().all(HashSet::is_empty)
    }
}

/// This shard's subscribers. See the module docs.
#[derive(Default)]
pub struct PubSub {
    maps: [HashMap<Box<[u8]>, Vec<ConnId>, RandomState>; 3],
}

impl PubSub {
    /// `conn` subscribes to `name` of `kind`; false when it already did (`subs` is the
    /// connection's own record, kept in step).
    pub fn subscribe(
        &mut self,
        subs: &mut Subscriptions,
        kind: Kind,
        name: &[u8],
        conn: ConnId,
    ) -> bool {
        if !subs.sets[kind.index()].insert(name.into()) {
            return false;
        }
        let map = &mut self.maps[kind.index()];
        match map.get_mut(name) {
            Some(list) => list.push(conn),
            None => {
                map.insert(name.into(), vec![conn]);
            }
        }
        true
    }

    /// `conn` unsubscribes from `name` of `kind`; false when it was not subscribed.
    pub fn unsubscribe(
        &mut self,
        subs: &mut Subscriptions,
        kind: Kind,
        name: &[u8],
        conn: ConnId,
    ) -> bool {
        if !subs.sets[kind.index()].remove(name) {
            return false;
        }
        let map = &mut self.maps[kind.index()];
        if let Some(list) = map.get_mut(name) {
            list.retain(|c| *c != conn);
            if list.is_empty() {
                map.remove(name);
            }
        }
        true
    }

    /// A closed connection leaves everything it subscribed to.
    pub fn forget(&mut self, subs: &mut Subscriptions, conn: ConnId) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            let names: Vec<Box<[u8]>> = subs.sets[kind.index()].iter().cloned().collect();
            for n in names {
                self.unsubscribe(subs, kind, &n, conn);
            }
        }
    }

    /// The subscribers of channel (or shard channel) `name`.
    pub fn subscribers(&self, kind: Kind, name: &[u8]) -> &[ConnId] {
        self.maps[kind.index()]
            .get(name)
            .map_or(&[][..], Vec::as_slice)
    }

    /// The patterns matching `channel`, each with its subscribers.
    pub fn matching<'a>(
        &'a self,
        channel: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], &'a [ConnId])> + 'a {
        self.maps[Kind::Pattern.index()]
            .iter()
            .filter(move |(p, _)| glob::matches(p, channel, false))
            .map(|(p, c)| (&**p, c.as_slice()))
    }

    /// Every name of `kind` with a subscriber here, matching `pattern` if given.
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<&[u8]> {
        self.maps[kind.index()]
            .keys()
            .map(|k| &**k)
            .filter(|k| pattern.is_none_or(|p| glob::matches(p, k, false)))
            .collect()
    }

    /// How many distinct names of `kind` have subscribers here.
    pub fn len(&self, kind: Kind) -> usize {
        self.maps[kind.index()].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ConnId = ConnId { slot: 1, gen: 1 };
    const B: ConnId = ConnId { slot: 2, gen: 1 };

    #[test]
    fn subscriptions_are_counted_once_and_forgotten_on_close() {
        let mut ps = PubSub::default();
        let (mut a, mut b) = (Subscriptions::default(), Subscriptions::default());
        assert!(ps.subscribe(&mut a, Kind::Channel, b"news", A));
        assert!(!ps.subscribe(&mut a, Kind::Channel, b"news", A));
        assert!(ps.subscribe(&mut b, Kind::Channel, b"news", B));
        assert!(ps.subscribe(&mut a, Kind::Pattern, b"n*", A));
        assert!(ps.subscribe(&mut a, Kind::Shard, b"news", A));
        assert_eq!(a.reply_count(Kind::Channel), 2);
        assert_eq!(a.reply_count(Kind::Shard), 1);
        assert_eq!(ps.subscribers(Kind::Channel, b"news"), &[A, B]);
        let m: Vec<_> = ps.matching(b"news").collect();
        assert_eq!(m, vec![(&b"n*"[..], &[A][..])]);
        assert_eq!(ps.matching(b"other").count(), 0);
        ps.forget(&mut a, A);
        assert!(a.is_empty());
        assert_eq!(ps.subscribers(Kind::Channel, b"news"), &[B]);
        assert_eq!(ps.len(Kind::Pattern), 0);
        assert_eq!(ps.len(Kind::Shard), 0);
        assert!(ps.unsubscribe(&mut b, Kind::Channel, b"news", B));
        assert!(!ps.unsubscribe(&mut b, Kind::Channel, b"news", B));
        assert_eq!(ps.len(Kind::Channel), 0);
    }

    #[test]
    fn names_filter_by_pattern() {
        let mut ps = PubSub::default();
        let mut a = Subscriptions::default();
        for n in [&b"a1"[..], b"a2", b"b1"] {
            ps.subscribe(&mut a, Kind::Channel, n, A);
        }
        let mut got = ps.names(Kind::Channel, Some(b"a*"));
        got.sort();
        assert_eq!(got, vec![&b"a1"[..], b"a2"]);
        assert_eq!(ps.names(Kind::Channel, None).len(), 3);
    }
}
