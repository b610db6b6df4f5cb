//! Checks shared by the request-parser targets.
//!
//! For any input, parsed in one piece and parsed as it would arrive from a socket (split
//! at points the input itself chooses, the buffer growing at the end and compacted between
//! reads as the server does):
//!
//! - nothing panics, and every span lies inside the buffer;
//! - both ways give the same requests and the same error, when the limits cannot be
//!   reached by the input (limits that trip depend on read boundaries, in Redis too);
//! - every request, re-encoded as a multibulk request and parsed again, gives back the
//!   same arguments (parse ∘ encode is the identity);
//! - with tight limits the parser still never panics and keeps no more spans than the
//!   bytes it was given could describe.

use bytes::BytesMut;
use corekv_protocol::request::{encode_request, Limits, ProtocolError, RequestParser};

/// Every request's arguments, then the error that ended parsing, if any.
type Parsed = (Vec<Vec<Vec<u8>>>, Option<ProtocolError>);

/// Parses `data` fed in pieces ending at `cuts` (ascending), compacting after each piece.
fn parse_in_pieces(data: &[u8], cuts: &[usize], limits: Limits) -> Parsed {
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut fed = 0;
    for &cut in cuts.iter().chain(std::iter::once(&data.len())) {
        let cut = cut.clamp(fed, data.len());
        buf.extend_from_slice(&data[fed..cut]);
        fed = cut;
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(range)) => {
                    let spans = &parser.spans()[range];
                    for s in spans {
                        assert!(s.start <= s.end && s.end <= buf.len(), "span out of buffer");
                    }
                    requests.push(spans.iter().map(|s| s.of(&buf).to_vec()).collect());
                }
                Ok(None) => break,
                Err(e) => return (requests, Some(e)),
            }
        }
        assert!(
            parser.spans().len() <= buf.len() + 1,
            "more spans than bytes: {} spans for {} bytes",
            parser.spans().len(),
            buf.len()
        );
        parser.compact(&mut buf);
    }
    (requests, None)
}

/// Runs every check on `data`; `cuts_seed` picks where the input is split.
pub fn check(data: &[u8], cuts_seed: &[u8]) {
    // Limits no input of the fuzzer's size can reach: results must not depend on reads.
    let roomy = Limits {
        max_bulk_len: 1 << 30,
        max_multibulk_len: 1 << 20,
        max_inline_len: 1 << 24,
    };
    let mut cuts: Vec<usize> = cuts_seed
        .iter()
        .map(|&b| (b as usize * data.len()) / 255)
        .collect();
    cuts.sort_unstable();
    let whole = parse_in_pieces(data, &[], roomy);
    let pieces = parse_in_pieces(data, &cuts, roomy);
    assert_eq!(whole, pieces, "result depends on how the input was split");

    for args in &whole.0 {
        let mut encoded = Vec::new();
        encode_request(&mut encoded, args);
        let again = parse_in_pieces(&encoded, &[], roomy);
        assert_eq!(again.1, None, "re-encoded request does not parse");
        assert_eq!(again.0, vec![args.clone()], "parse(encode(args)) != args");
    }

    // Tight limits: errors are expected, panics and unbounded state are not.
    let tight = Limits {
        max_bulk_len: 64,
        max_multibulk_len: 8,
        max_inline_len: 32,
    };
    let _ = parse_in_pieces(data, &cuts, tight);
}
