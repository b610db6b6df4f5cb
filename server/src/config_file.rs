//! `--config FILE`: settings in redis.conf's format, one `name value…` directive per line,
//! `#` comments, arguments split and unquoted exactly as Redis does (the same splitter as
//! inline requests). Each directive becomes the flag of the same name, placed before the
//! command line's own flags so that those win. A directive corekv does not know is an
//! error naming it and its line, never silently ignored.

use corekv_protocol::request::{Limits, RequestParser};

/// What a directive other than the special ones below stands for: the command-line flag
/// of the same name, taking one value (`name value` → `--name value`) or a switch
/// (`name yes|no` → `--name` or nothing). `None` for a name that is not a flag, and for
/// `config` (a file does not name another).
fn flag_of(cmd: &clap::Command, name: &str) -> Option<Flag> {
    if name == "config" {
        return None;
    }
    let arg = cmd.get_arguments().find(|a| a.get_long() == Some(name))?;
    match arg.get_action() {
        clap::ArgAction::SetTrue => Some(Flag::Switch),
        action if action.takes_values() => Some(Flag::Valued),
        _ => None,
    }
}

/// See [`flag_of`].
enum Flag {
    Valued,
    Switch,
}

/// Redis directives accepted only with the value that describes corekv (it has one
/// database), so a redis.conf that says so loads.
const FIXED: &[(&str, &str, &str)] = &[(
    "databases",
    "1",
    "corekv has one database; only databases 1 is accepted",
)];

/// Reads `path` and returns the flags it stands for.
pub fn load(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    to_flags(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// Splits one line as Redis's `sdssplitargs` does. `None` for unbalanced quotes.
fn split(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let limits = Limits {
        max_inline_len: line.len() + 16,
        ..Limits::default()
    };
    let mut parser = RequestParser::new(limits);
    let mut buf = line.to_vec();
    buf.extend_from_slice(b"\r\n");
    match parser.parse(&mut buf) {
        Ok(Some(range)) => Some(
            parser.spans()[range]
                .iter()
                .map(|s| s.of(&buf).to_vec())
                .collect(),
        ),
        Ok(None) => Some(Vec::new()),
        Err(_) => None,
    }
}

/// The flags for a config file's contents. Every problem in the file is reported at once.
pub fn to_flags(text: &[u8]) -> Result<Vec<String>, String> {
    let cmd = <crate::cli::Args as clap::CommandFactory>::command();
    let mut flags = Vec::new();
    let mut problems = Vec::new();
    // client-output-buffer-limit lines (one per class in redis.conf) make one flag.
    let mut output_limits: Vec<String> = Vec::new();
    let mut save: Option<Vec<String>> = None;
    for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line_no = n + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let trimmed = line.trim_ascii_start();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            continue;
        }
        let Some(words) = split(trimmed) else {
            problems.push(format!("line {line_no}: unbalanced quotes"));
            continue;
        };
        let Some((name, values)) = words.split_first() else {
            continue;
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let values: Vec<String> = values
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if let Some((_, want, why)) = FIXED.iter().find(|(n, _, _)| *n == name) {
            if values.len() != 1 || values[0] != *want {
                problems.push(format!(
                    "line {line_no}: {name} {}: {why}",
                    values.join(" ")
                ));
            }
            continue;
        }
        if name == "save" {
            // Each line adds its pairs; `save ""` clears those before it.
            if values.len() == 1 && values[0].is_empty() {
                save = Some(Vec::new());
            } else if values.is_empty() || values.len() % 2 != 0 {
                problems.push(format!(
                    "line {line_no}: save takes <seconds> <changes> pairs"
                ));
            } else {
                save.get_or_insert_with(Vec::new).extend(values);
            }
            continue;
        }
        if name == "client-output-buffer-limit" {
            if values.is_empty() || values.len() % 4 != 0 {
                problems.push(format!(
                    "line {line_no}: client-output-buffer-limit takes <class> <hard> <soft> \
                     <seconds>"
                ));
            } else {
                output_limits.extend(values);
            }
            continue;
        }
        match flag_of(&cmd, &name) {
            None => problems.push(format!("line {line_no}: unknown directive '{name}'")),
            Some(Flag::Switch) => {
                let on = match values.as_slice() {
                    [v] => corekv_shard::config::parse_yes_no(v),
                    _ => None,
                };
                match on {
                    Some(true) => flags.push(format!("--{name}")),
                    Some(false) => {}
                    None => problems.push(format!("line {line_no}: {name} takes yes or no")),
                }
            }
            Some(Flag::Valued) => match values.as_slice() {
                [v] => {
                    flags.push(format!("--{name}"));
                    flags.push(v.clone());
                }
                [] => problems.push(format!("line {line_no}: {name} needs a value")),
                _ if name == "bind" => problems.push(format!(
                    "line {line_no}: bind {}: corekv listens on one address",
                    values.join(" ")
                )),
                _ => problems.push(format!("line {line_no}: {name} takes one value")),
            },
        }
    }
    if let Some(pairs) = save {
        flags.push("--save".into());
        flags.push(pairs.join(" "));
    }
    if !output_limits.is_empty() {
        flags.push("--client-output-buffer-limit".into());
        flags.push(output_limits.join(" "));
    }
    if problems.is_empty() {
        Ok(flags)
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_become_flags() {
        let conf = b"# a redis.conf subset\n\
                     port 7000\r\n\
                     bind 0.0.0.0\n\
                     requirepass \"s3cret with space\"\n\
                     \n   # indented comment\n\
                     save 900 1\n\
                     save \"\"\n\
                     save 3600 1 300 100\n\
                     save 60 10000\n\
                     appendonly no\n\
                     PROTECTED-MODE no\n\
                     no-pin yes\n\
                     client-output-buffer-limit normal 1mb 256kb 5\n\
                     client-output-buffer-limit pubsub 32mb 8mb 60\n\
                     shards 4\n";
        assert_eq!(
            to_flags(conf).unwrap(),
            [
                "--port",
                "7000",
                "--bind",
                "0.0.0.0",
                "--requirepass",
                "s3cret with space",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--no-pin",
                "--shards",
                "4",
                "--save",
                "3600 1 300 100 60 10000",
                "--client-output-buffer-limit",
                "normal 1mb 256kb 5 pubsub 32mb 8mb 60"
            ]
        );
    }

    #[test]
    fn every_problem_is_named_with_its_line() {
        let conf = b"port 7000\ndaemonize yes\nsave 900\nbind 127.0.0.1 ::1\ntimeout\n\
                     requirepass \"open\n";
        let err = to_flags(conf).unwrap_err();
        assert!(
            err.contains("line 2: unknown directive 'daemonize'"),
            "{err}"
        );
        assert!(
            err.contains("line 3: save takes <seconds> <changes> pairs"),
            "{err}"
        );
        assert!(err.contains("line 4: bind 127.0.0.1 ::1: corekv listens on one address"));
        assert!(err.contains("line 5: timeout needs a value"), "{err}");
        assert!(err.contains("line 6: unbalanced quotes"), "{err}");
    }

    #[test]
    fn directives_are_the_command_line_flags() {
        // Every flag that takes a value is a directive, with no list to keep in step.
        assert_eq!(
            to_flags(b"metrics-port 9100\nmax-inline-len 4kb\n").unwrap(),
            ["--metrics-port", "9100", "--max-inline-len", "4kb"]
        );
        let err = to_flags(b"config other.conf\nhelp yes\nno-pin maybe\n").unwrap_err();
        assert!(err.contains("line 1: unknown directive 'config'"), "{err}");
        assert!(err.contains("line 2: unknown directive 'help'"), "{err}");
        assert!(err.contains("line 3: no-pin takes yes or no"), "{err}");
    }
}
