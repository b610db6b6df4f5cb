//! The arguments of a request: spans into a buffer that someone else owns ([`Args`]), or
//! arguments in a buffer of their own ([`OwnedArgs`]) for requests built rather than
//! received. Everything that runs or moves a request speaks these two types.

use corekv_protocol::Span;

/// The arguments of one request (name included): spans into a buffer, which is the
/// connection's read buffer for a local request or a message's buffer for a forwarded one.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Args<'a> {
    /// Arguments `spans` of `buf`.
    #[inline]
    pub fn new(buf: &'a [u8], spans: &'a [Span]) -> Self {
        Args { buf, spans }
    }

    /// Number of arguments, the command name included.
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no arguments at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (0 is the command name).
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        self.spans[i].of(self.buf)
    }

    /// All arguments in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + '_ {
        self.spans.iter().map(|s| s.of(self.buf))
    }

    /// Arguments `first..first + n`, as arguments of their own.
    pub fn slice(&self, first: usize, n: usize) -> Args<'a> {
        Args {
            buf: self.buf,
            spans: &self.spans[first..first + n],
        }
    }
}

/// Arguments held in their own buffer, for requests built rather than received.
#[derive(Clone, Debug, Default)]
pub struct OwnedArgs {
    buf: Vec<u8>,
    spans: Vec<Span>,
}

impl OwnedArgs {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds from a list of arguments.
    pub fn from_slices<A: AsRef<[u8]>>(args: &[A]) -> Self {
        let mut owned = OwnedArgs::new();
        for a in args {
            owned.push(a.as_ref());
        }
        owned
    }

    /// A copy of `args`.
    pub fn from_args(args: Args) -> Self {
        let mut owned = OwnedArgs::new();
        for a in args.iter() {
            owned.push(a);
        }
        owned
    }

    /// Empties it, keeping its buffers.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
    }

    /// Appends an argument.
    pub fn push(&mut self, arg: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(arg);
        self.spans.push(Span {
            start,
            end: self.buf.len(),
        });
    }

    /// A view for running a command.
    pub fn args(&self) -> Args<'_> {
        Args::new(&self.buf, &self.spans)
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// A view of arguments `first..first + n` (one of several commands held together).
    pub fn slice(&self, first: usize, n: usize) -> Args<'_> {
        Args::new(&self.buf, &self.spans[first..first + n])
    }

    /// Bytes held: the arguments and their spans.
    pub fn bytes(&self) -> usize {
        self.buf.len() + self.spans.len() * std::mem::size_of::<Span>()
    }
}
