//! A connection's read buffer: bytes received and not yet consumed, kept initialised so
//! reads go straight into it, grown by bytes received rather than lengths declared.

/// Initial read buffer size, and the least free space asked of each read.
pub const READ_CHUNK: usize = crate::state::BUFFER_SIZE;

/// The read buffer: `buf[start..end]` holds bytes received and not yet consumed. The
/// whole `Vec` stays initialised so reads can go straight into it.
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// Over `buf`, a zeroed buffer of [`READ_CHUNK`] bytes from the shard's pool.
    pub fn new(buf: Vec<u8>) -> Self {
        ReadBuf {
            buf,
            start: 0,
            end: 0,
        }
    }

    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Drops `n` consumed bytes from the front.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Makes room for a read of at least `want` bytes (at least [`READ_CHUNK`]) and returns
    /// the free space. Moves unconsumed bytes to the front before growing.
    pub fn space(&mut self, want: usize) -> &mut [u8] {
        let want = want.max(READ_CHUNK);
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < want {
                let grow = (self.end + want).max(self.buf.len() * 2);
                self.buf.resize(grow, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Gives memory back after a burst: a large, empty buffer is freed and replaced by a
    /// standard one from `pool`.
    pub fn trim(&mut self, pool: &mut crate::pool::BufPool) {
        if self.pending() == 0 && self.buf.len() > 4 * READ_CHUNK {
            self.buf = pool.take();
            self.start = 0;
            self.end = 0;
        }
    }

    /// `n` bytes were read into [`space`](Self::space).
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// The bytes received and not yet consumed.
    pub fn unread(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Size of the buffer.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Free space after what was received.
    pub fn free(&self) -> usize {
        self.buf.len() - self.end
    }

    /// The buffer, to give back to its pool.
    pub fn into_buf(self) -> Vec<u8> {
        self.buf
    }
}
