//! CONFIG GET, SET, RESETSTAT and HELP, as Redis 7.0 replies. GET reads the client's
//! shard's settings; SET and RESETSTAT run on every shard (SET is checked whole first:
//! it applies everywhere or nowhere).

use corekv_protocol::Reply;

use super::super::connection::help;
use super::super::merge::all_ok;
use super::super::{every_shard, Args, Fanout, Flow, Local, OwnedArgs, Plan};
use crate::config::Config;
use crate::glob;

/// CONFIG GET parameter [parameter ...]
pub(super) fn config_get_command(l: &mut Local, args: Args) -> Flow {
    let config = l.config;
    config_get(config, args, &mut l.reply());
    Flow::Continue
}

pub(super) fn config_help(l: &mut Local, args: Args) -> Flow {
    help(
        &mut l.reply(),
        args.get(0),
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
        ],
    );
    Flow::Continue
}

/// CONFIG SET name value [name value ...]: checked on the client's shard, then every
/// shard applies the same pairs.
pub(super) const CONFIG_SET: Fanout = Fanout {
    check: |ck, args| match config_set_check(args) {
        Ok(()) => Some(Plan {
            args: OwnedArgs::from_slices(&args.iter().skip(2).collect::<Vec<_>>()),
            ..Plan::all()
        }),
        Err(text) => {
            ck.out.err(&text);
            None
        }
    },
    part: |st, args, out| {
        st.apply_settings(args);
        out.ok();
    },
    merge: all_ok,
};

/// CONFIG RESETSTAT: every shard zeroes its counters.
pub(super) const CONFIG_RESETSTAT: Fanout = Fanout {
    check: every_shard,
    part: |st, _, out| {
        st.reset_stats();
        out.ok();
    },
    merge: all_ok,
};

/// CONFIG GET parameter [parameter ...]: glob patterns match case-insensitively; an exact
/// name is echoed as given, as Redis does.
fn config_get(config: &Config, args: Args, out: &mut Reply) {
    let entries = config.entries();
    let mut found: Vec<(Vec<u8>, &str)> = Vec::new();
    for pat in args.iter().skip(2) {
        let pat = super::super::cstr(pat);
        let is_glob = pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?'));
        for (name, value) in &entries {
            let hit = if is_glob {
                glob::matches(pat, name.as_bytes(), true)
            } else {
                pat.eq_ignore_ascii_case(name.as_bytes())
            };
            if hit
                && !found
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            {
                let shown = if is_glob { name.as_bytes() } else { pat };
                found.push((shown.to_vec(), value));
            }
        }
    }
    out.map(found.len());
    for (name, value) in found {
        out.bulk(&name);
        out.bulk(value.as_bytes());
    }
}

/// Checks CONFIG SET's arguments as Redis does, all of them before any is applied (the
/// command is atomic): pairs only, known names, no immutable or repeated name, then every
/// value. `Err` is the message after `-ERR `.
fn config_set_check(args: Args) -> Result<(), String> {
    use crate::config::parse_setting;
    if args.len() % 2 == 1 {
        return Err(super::super::errors::SYNTAX.to_string());
    }
    let pairs: Vec<(&[u8], &[u8])> = (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect();
    // Names first: the first unknown, immutable or repeated name is the error.
    let mut seen: Vec<String> = Vec::new();
    for (name, _) in &pairs {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        let known = config_names().contains(&lower.as_str());
        if !known || crate::config::IMMUTABLE.contains(&lower.as_str()) {
            // parse_setting words both errors exactly as Redis.
            parse_setting(name, b"0")?;
        }
        if seen.contains(&lower) {
            return Err(format!(
                "CONFIG SET failed (possibly related to argument '{}') - duplicate parameter",
                String::from_utf8_lossy(name)
            ));
        }
        seen.push(lower);
    }
    for (name, value) in &pairs {
        parse_setting(name, value)?;
    }
    Ok(())
}

/// Every setting name CONFIG knows.
fn config_names() -> Vec<&'static str> {
    Config::default()
        .entries()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}
