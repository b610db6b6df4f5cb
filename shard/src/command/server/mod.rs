//! Server commands: INFO (`info`), CONFIG (`config`), COMMAND, SLOWLOG and LATENCY
//! (`introspection`), TIME and SHUTDOWN.

mod config;
mod info;
mod introspection;

use std::time::{SystemTime, UNIX_EPOCH};

use super::{is, Args, Flow, Local, Registrations, Route};

/// The server family.
pub(super) const COMMANDS: Registrations = &[
    ("info", Route::Fanout(&info::INFO)),
    ("time", Route::Local(time)),
    ("shutdown", Route::Local(shutdown)),
    ("config|get", Route::Local(config::config_get_command)),
    ("config|set", Route::Fanout(&config::CONFIG_SET)),
    ("config|resetstat", Route::Fanout(&config::CONFIG_RESETSTAT)),
    ("config|help", Route::Local(config::config_help)),
    ("command", Route::Local(introspection::command)),
    ("command|count", Route::Local(introspection::command_count)),
    ("command|info", Route::Local(introspection::command_info)),
    ("command|docs", Route::Local(introspection::command_docs)),
    (
        "command|list",
        Route::Local(introspection::command_list_command),
    ),
    (
        "command|getkeys",
        Route::Local(introspection::command_getkeys_command),
    ),
    ("command|help", Route::Local(introspection::command_help)),
    ("slowlog|get", Route::Fanout(&introspection::SLOWLOG_GET)),
    ("slowlog|len", Route::Fanout(&introspection::SLOWLOG_LEN)),
    (
        "slowlog|reset",
        Route::Fanout(&introspection::SLOWLOG_RESET),
    ),
    ("slowlog|help", Route::Local(introspection::slowlog_help)),
    (
        "latency|histogram",
        Route::Fanout(&introspection::LATENCY_HISTOGRAM),
    ),
    ("latency|help", Route::Local(introspection::latency_help)),
];

/// TIME: seconds and microseconds.
fn time(l: &mut Local, _: Args) -> Flow {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = l.reply();
    out.array(2);
    out.bulk(t.as_secs().to_string().as_bytes());
    out.bulk(t.subsec_micros().to_string().as_bytes());
    Flow::Continue
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`, as Redis 7.0 parses it. corekv keeps
/// nothing on disk, so NOSAVE, NOW and FORCE change nothing and SAVE cannot be honoured.
/// On success the shutdown is requested (the server drains every shard) and this
/// connection closes after writing the replies before it, with none for SHUTDOWN.
fn shutdown(l: &mut Local, args: Args) -> Flow {
    let (mut save, mut nosave, mut abort, mut other) = (false, false, false, false);
    let mut bad = false;
    for a in args.iter().skip(1) {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") || is(a, "force") {
            other = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            bad = true;
        }
    }
    let error = if bad || (abort && (save || nosave || other)) || (save && nosave) {
        Some(super::errors::SYNTAX)
    } else if abort {
        Some("No shutdown in progress.")
    } else if save {
        tracing::warn!("SHUTDOWN SAVE refused: corekv does not persist data");
        Some("Errors trying to SHUTDOWN. Check logs.")
    } else {
        None
    };
    if let Some(text) = error {
        l.reply().err(text);
        return Flow::Continue;
    }
    tracing::info!("SHUTDOWN requested by a client");
    l.shutdown.request();
    Flow::Quit
}
