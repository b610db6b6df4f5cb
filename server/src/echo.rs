//! The raw TCP echo listener (`--echo-port`): every byte read is written back. A baseline
//! for the I/O layer alone, with no parsing and no keyspace, and a target for
//! `corekv-bench --protocol echo`.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

/// Size of the buffer each echo connection reads into.
const ECHO_BUF: usize = 16 * 1024;

/// Echoes until the peer closes or an error occurs.
pub async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
