//! Keyspace notifications (`notify-keyspace-events`): the event classes, the setting's
//! text both ways, and the events a shard's writes produce until they are published.
//!
//! Commands and the store record events ([`Events::push`]) only when the setting asks
//! for their class; the shard then publishes each on `__keyspace@0__:<key>` (the event
//! as the message) and `__keyevent@0__:<event>` (the key as the message), to its own
//! subscribers and, like PUBLISH, to every other shard's.

/// `K`: publish on `__keyspace@0__:<key>`.
pub const KEYSPACE: u16 = 1 << 0;
/// `E`: publish on `__keyevent@0__:<event>`.
pub const KEYEVENT: u16 = 1 << 1;
/// `g`: DEL, EXPIRE, RENAME, PERSIST, COPY, ...
pub const GENERIC: u16 = 1 << 2;
/// `$`: string commands.
pub const STRING: u16 = 1 << 3;
/// `l`: list commands.
pub const LIST: u16 = 1 << 4;
/// `s`: set commands.
pub const SET: u16 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u16 = 1 << 6;
/// `z`: sorted-set commands.
pub const ZSET: u16 = 1 << 7;
/// `x`: a key expired.
pub const EXPIRED: u16 = 1 << 8;
/// `e`: a key was evicted.
pub const EVICTED: u16 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u16 = 1 << 10;
/// `m`: a key was looked up and missing.
pub const KEY_MISS: u16 = 1 << 11;
/// `d`: module events.
pub const MODULE: u16 = 1 << 12;
/// `n`: a key was created.
pub const NEW: u16 = 1 << 13;
/// `A`: `g$lshzxetd`.
pub const ALL: u16 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The classes in the order Redis prints them (after `A` or instead of it).
const LETTERS: &[(u8, u16)] = &[
    (b'g', GENERIC),
    (b'$', STRING),
    (b'l', LIST),
    (b's', SET),
    (b'h', HASH),
    (b'z', ZSET),
    (b'x', EXPIRED),
    (b'e', EVICTED),
    (b't', STREAM),
    (b'd', MODULE),
    (b'n', NEW),
];

/// Parses the setting's value; `None` for a character that is no class.
pub fn parse(text: &[u8]) -> Option<u16> {
    let mut flags = 0;
    for &c in text {
        flags |= match c {
            b'A' => ALL,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b'm' => KEY_MISS,
            _ => LETTERS.iter().find(|(l, _)| *l == c)?.1,
        };
    }
    Some(flags)
}

/// The setting as CONFIG GET shows it (Redis's order; `A` for all of `g$lshzxetd`).
pub fn format(flags: u16) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for &(l, f) in LETTERS {
            if flags & f != 0 {
                s.push(l as char);
            }
        }
    }
    for (l, f) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS)] {
        if flags & f != 0 {
            s.push(l);
        }
    }
    s
}

/// Events recorded since the shard last published them.
#[derive(Default, Debug)]
pub struct Events {
    /// The setting.
    pub flags: u16,
    /// Event name and key, in order.
    pub list: Vec<(&'static str, Box<[u8]>)>,
}

impl Events {
    /// Whether events of `class` are published at all.
    #[inline]
    pub fn wants(&self, class: u16) -> bool {
        self.flags & class != 0 && self.flags & (KEYSPACE | KEYEVENT) != 0
    }

    /// Records `event` of `class` on `key`, if the setting asks for it.
    #[inline]
    pub fn push(&mut self, class: u16, event: &'static str, key: &[u8]) {
        if self.wants(class) {
            self.list.push((event, key.into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_reads_and_prints_as_redis_does() {
        for (given, shown) in [
            ("KEA", "AKE"),
            ("Ex", "xE"),
            ("Kg$lshzxetd", "AK"),
            ("", ""),
            ("nm", "nm"),
            ("AKEnm", "AKEm"),
            ("gnK", "gnK"),
            ("Kdtm", "tdKm"),
            ("Et$l", "$ltE"),
        ] {
            assert_eq!(format(parse(given.as_bytes()).unwrap()), shown, "{given}");
        }
        assert_eq!(parse(b"KEA nm"), None);
        assert_eq!(parse(b"Q"), None);
    }

    #[test]
    fn events_need_a_class_and_a_channel_kind() {
        let mut e = Events {
            flags: parse(b"g").unwrap(),
            ..Default::default()
        };
        e.push(GENERIC, "del", b"k");
        assert!(e.list.is_empty(), "neither K nor E");
        e.flags = parse(b"Eg").unwrap();
        e.push(STRING, "set", b"k");
        e.push(GENERIC, "del", b"k");
        assert_eq!(e.list, vec![("del", b"k"[..].into())]);
    }
}
