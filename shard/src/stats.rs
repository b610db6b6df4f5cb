//! One shard's counters. Plain integers written by one thread; INFO adds them up across
//! shards by asking each shard for its own.

/// Counters INFO reports; every field only grows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections_received: u64,
    /// Connections refused (maxclients).
    pub rejected_connections: u64,
    /// Commands processed on behalf of this shard's connections.
    pub commands: u64,
    /// Error replies sent to this shard's connections' local commands.
    pub error_replies: u64,
    /// Bytes read from clients.
    pub net_input_bytes: u64,
    /// Bytes written to clients.
    pub net_output_bytes: u64,
    /// Reads from sockets that returned data.
    pub reads_processed: u64,
    /// Writes of replies.
    pub writes_processed: u64,
    /// Requests sent to other shards (cross-shard hops out).
    pub hops_out: u64,
    /// Requests run for other shards (hops in).
    pub hops_in: u64,
    /// Request batches sent.
    pub batches_out: u64,
    /// Request batches received.
    pub batches_in: u64,
}
