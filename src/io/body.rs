//! Reading a whole body off a socket: the codec's [`BodyReader`] says what it needs, this loop
//! reads it, each read bounded by a timeout (a stalled peer) and the whole body by a deadline.

use bytes::{Bytes, BytesMut};
use http1::{BodyError, BodyReader, Step};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes reserved for each read of a body that has not all arrived: buffers grow with what
/// arrives, never with what a peer declares.
const READ_CHUNK: usize = 16 * 1024;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the body is too large")]
    TooLarge,
    #[error("{0}")]
    Malformed(&'static str),
    /// The peer closed the connection inside the body.
    #[error("the connection closed inside the body")]
    Truncated,
    /// No byte arrived within the per-read timeout, or the whole-body deadline passed.
    #[error("the body stalled")]
    Timeout,
    /// The caller refused to hold the bytes that arrived (a memory budget).
    #[error("no room for the body")]
    Refused,
    #[error("the connection failed: {0}")]
    Io(#[from] io::Error),
}

impl From<BodyError> for ReadError {
    fn from(e: BodyError) -> ReadError {
        match e {
            BodyError::TooLarge => ReadError::TooLarge,
            BodyError::Malformed(why) => ReadError::Malformed(why),
            BodyError::Truncated => ReadError::Truncated,
        }
    }
}

/// How long reading may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Each read.
    pub per_read: Duration,
    /// The whole body, from the first call (`None`: only the per-read bound).
    pub whole: Option<tokio::time::Instant>,
}

/// Reads the rest of a body: `buf` holds what already arrived (the bytes after the head); on
/// return it holds whatever followed the body. `admit` is told of the bytes of each read
/// before they are kept; `false` ends the read with [`ReadError::Refused`].
pub async fn read<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut BytesMut,
    reader: &mut BodyReader,
    limits: Limits,
    admit: &mut (dyn FnMut(usize) -> bool + Send),
) -> Result<Bytes, ReadError> {
    loop {
        if let Step::Done(body) = reader.feed(buf)? {
            return Ok(body);
        }
        let n = read_more(stream, buf, limits).await?;
        if n == 0 {
            return Ok(reader.end_of_stream(buf)?);
        }
        if !admit(n) {
            return Err(ReadError::Refused);
        }
    }
}

/// One read into `buf`, bounded by `limits`; `Ok(0)` when the peer closed the connection.
pub async fn read_more<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut BytesMut,
    limits: Limits,
) -> Result<usize, ReadError> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(READ_CHUNK);
    }
    let mut deadline = tokio::time::Instant::now() + limits.per_read;
    if let Some(whole) = limits.whole {
        deadline = deadline.min(whole);
    }
    match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(ReadError::Io(e)),
        Err(_) => Err(ReadError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http1::Framing;
    use tokio::io::AsyncWriteExt;

    fn limits() -> Limits {
        Limits {
            per_read: Duration::from_secs(5),
            whole: None,
        }
    }

    #[tokio::test]
    async fn a_body_in_pieces_and_what_follows_it() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for part in [&b"5\r\nhe"[..], b"llo\r\n0\r\n", b"\r\nNEXT"] {
                client.write_all(part).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let mut buf = BytesMut::new();
        let mut reader = BodyReader::new(Framing::Chunked, 100).unwrap();
        let body = read(&mut server, &mut buf, &mut reader, limits(), &mut |_| true)
            .await
            .unwrap();
        assert_eq!(&body[..], b"hello");
        drop(writer.await.unwrap());
        // What followed the body stays (it may take one more read to arrive).
        while buf.len() < 4 {
            read_more(&mut server, &mut buf, limits()).await.unwrap();
        }
        assert_eq!(&buf[..], b"NEXT");
    }

    #[tokio::test]
    async fn a_close_inside_a_body_or_a_stall_fails() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        let mut reader = BodyReader::new(Framing::Length(3), 100).unwrap();
        let mut buf = BytesMut::from(&b"ab"[..]);
        let err = read(&mut server, &mut buf, &mut reader, limits(), &mut |_| true).await;
        assert!(matches!(err, Err(ReadError::Truncated)), "{err:?}");

        let (_client, mut server) = tokio::io::duplex(64);
        let mut reader = BodyReader::new(Framing::Length(3), 100).unwrap();
        let short = Limits {
            per_read: Duration::from_millis(20),
            whole: None,
        };
        let err = read(
            &mut server,
            &mut BytesMut::new(),
            &mut reader,
            short,
            &mut |_| true,
        )
        .await;
        assert!(matches!(err, Err(ReadError::Timeout)), "{err:?}");
        // A whole-body deadline ends a body that trickles in.
        let (mut client, mut server) = tokio::io::duplex(64);
        let trickle = tokio::spawn(async move {
            for _ in 0..50 {
                if client.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let mut reader = BodyReader::new(Framing::Length(100), 100).unwrap();
        let whole = Limits {
            per_read: Duration::from_secs(5),
            whole: Some(tokio::time::Instant::now() + Duration::from_millis(100)),
        };
        let err = read(
            &mut server,
            &mut BytesMut::new(),
            &mut reader,
            whole,
            &mut |_| true,
        )
        .await;
        assert!(matches!(err, Err(ReadError::Timeout)), "{err:?}");
        trickle.abort();
        // A refusal of the bytes that arrived ends the read.
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"abc").await.unwrap();
        let mut reader = BodyReader::new(Framing::Length(10), 100).unwrap();
        let err = read(
            &mut server,
            &mut BytesMut::new(),
            &mut reader,
            limits(),
            &mut |_| false,
        )
        .await;
        assert!(matches!(err, Err(ReadError::Refused)), "{err:?}");
    }
}
