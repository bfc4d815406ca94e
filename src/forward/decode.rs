//! Response bodies decoded according to `Content-Encoding`.
//!
//! The upstream may compress its answer (clients usually send `Accept-Encoding`); restoring
//! placeholders needs the plain bytes. Decoding streams: each chunk is decoded as it arrives,
//! so SSE answers keep flowing.
//!
//! Limits: supports `gzip`/`x-gzip` (several members allowed), `deflate` (zlib as RFC 9110
//! says, or raw deflate as some servers send; the zlib Adler-32 trailer is not verified, and a
//! zlib preset dictionary is refused),
//! `br`, `zstd` and `identity`. An empty body is passed through as empty even when a coding
//! is declared (204 answers and HEAD requests carry the header without data).

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use async_compression::tokio::bufread::{BrotliDecoder, DeflateDecoder, GzipDecoder, ZstdDecoder};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use http_body_util::BodyStream;
use tokio::io::{AsyncBufRead, AsyncRead, BufReader};
use tokio_util::io::{ReaderStream, StreamReader};

use super::client::error_chain;
use super::ForwardError;

/// A decoded body: plain bytes, or the first error met.
pub type DecodedStream = Pin<Box<dyn Stream<Item = Result<Bytes, ForwardError>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

/// Marks an error that came from reading the upstream body (not from decoding it), so it can
/// be reported as [`ForwardError::Protocol`] after passing through the decoders as `io::Error`.
#[derive(Debug)]
struct BodyReadError(String);

impl fmt::Display for BodyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for BodyReadError {}

/// The codings listed in a `Content-Encoding` value, in the order they were applied.
fn parse_codings(content_encoding: Option<&str>) -> Result<Vec<Coding>, ForwardError> {
    let mut codings = Vec::new();
    for token in content_encoding.unwrap_or("").split(',') {
        let token = token.trim();
        if token.is_empty() || token.eq_ignore_ascii_case("identity") {
            continue;
        }
        let coding = if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Coding::Gzip
        } else if token.eq_ignore_ascii_case("deflate") {
            Coding::Deflate
        } else if token.eq_ignore_ascii_case("br") {
            Coding::Brotli
        } else if token.eq_ignore_ascii_case("zstd") {
            Coding::Zstd
        } else {
            // The coding name is header text from the upstream: keep it short and printable.
            let shown: String = token
                .chars()
                .take(32)
                .map(|c| if c.is_ascii_graphic() { c } else { '?' })
                .collect();
            return Err(ForwardError::UnsupportedEncoding(shown));
        };
        codings.push(coding);
    }
    Ok(codings)
}

fn decoder(
    coding: Coding,
    input: Pin<Box<dyn AsyncBufRead + Send>>,
) -> Pin<Box<dyn AsyncRead + Send>> {
    match coding {
        Coding::Gzip => {
            let mut d = GzipDecoder::new(input);
            d.multiple_members(true);
            Box::pin(d)
        }
        Coding::Deflate => Box::pin(DeflateDecoder::new(SkipZlibHeader::new(input))),
        Coding::Brotli => Box::pin(BrotliDecoder::new(input)),
        Coding::Zstd => Box::pin(ZstdDecoder::new(input)),
    }
}

/// Strips a zlib header (RFC 1950) from the front of a stream so a raw deflate decoder can
/// read it; streams without a zlib header (raw deflate) pass through unchanged. The deflate
/// decoder stops at the end of the deflate data, so the Adler-32 trailer is left unread.
struct SkipZlibHeader<R> {
    inner: R,
    head: [u8; 2],
    head_len: usize,
    state: HeaderState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderState {
    /// Collecting the first two bytes.
    Reading,
    /// Not zlib: hand out the collected bytes (from this position) before the rest.
    Replay(usize),
    Passthrough,
}

impl<R> SkipZlibHeader<R> {
    fn new(inner: R) -> Self {
        SkipZlibHeader {
            inner,
            head: [0; 2],
            head_len: 0,
            state: HeaderState::Reading,
        }
    }
}

/// Whether two bytes are a valid zlib header (deflate method, window <= 32K, check bits).
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

impl<R: AsyncBufRead + Unpin> AsyncBufRead for SkipZlibHeader<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.state == HeaderState::Reading {
            let available = ready!(Pin::new(&mut this.inner).poll_fill_buf(cx))?;
            if available.is_empty() {
                this.state = HeaderState::Replay(0);
                break;
            }
            let take = available.len().min(2 - this.head_len);
            this.head[this.head_len..this.head_len + take].copy_from_slice(&available[..take]);
            this.head_len += take;
            Pin::new(&mut this.inner).consume(take);
            if this.head_len == 2 {
                let [cmf, flg] = this.head;
                this.state = if !is_zlib_header(cmf, flg) {
                    HeaderState::Replay(0)
                } else if flg & 0x20 != 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "zlib preset dictionary not supported",
                    )));
                } else {
                    HeaderState::Passthrough
                };
            }
        }
        match this.state {
            HeaderState::Replay(pos) if pos < this.head_len => {
                Poll::Ready(Ok(&this.head[pos..this.head_len]))
            }
            _ => {
                this.state = HeaderState::Passthrough;
                Pin::new(&mut this.inner).poll_fill_buf(cx)
            }
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        match this.state {
            HeaderState::Replay(pos) => this.state = HeaderState::Replay(pos + amt),
            HeaderState::Passthrough => Pin::new(&mut this.inner).consume(amt),
            HeaderState::Reading => debug_assert_eq!(amt, 0),
        }
    }
}

impl<R: AsyncBufRead + Unpin> AsyncRead for SkipZlibHeader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut this = self;
        let available = ready!(this.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        this.consume(n);
        Poll::Ready(Ok(()))
    }
}

fn decode_error(e: io::Error) -> ForwardError {
    if let Some(inner) = e.get_ref().and_then(|r| r.downcast_ref::<BodyReadError>()) {
        return ForwardError::Protocol(inner.0.clone());
    }
    ForwardError::Decode(e.to_string())
}

/// The body as a stream of decoded bytes, according to `content_encoding` (the header value;
/// several comma-separated codings are undone in reverse order). Trailers are dropped.
///
/// An unknown coding fails at once with [`ForwardError::UnsupportedEncoding`]; errors
/// reading the body come out as [`ForwardError::Protocol`], corrupt data as
/// [`ForwardError::Decode`].
pub fn decoded_body<B>(
    content_encoding: Option<&str>,
    body: B,
) -> Result<DecodedStream, ForwardError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>> + Send,
{
    let codings = parse_codings(content_encoding)?;
    let data = BodyStream::new(body)
        .try_filter_map(|frame| std::future::ready(Ok(frame.into_data().ok())))
        .map_err(|e| {
            let e: Box<dyn StdError + Send + Sync> = e.into();
            io::Error::other(BodyReadError(error_chain(&*e)))
        });
    if codings.is_empty() {
        return Ok(Box::pin(data.map_err(decode_error)));
    }
    // Skip empty chunks, and see whether any data comes at all: an empty body stays empty
    // instead of failing as a truncated compressed stream.
    let data = data.try_filter(|chunk| std::future::ready(!chunk.is_empty()));
    let stream = futures_util::stream::once(async move {
        let mut data = Box::pin(data);
        let first = match data.next().await {
            None => return futures_util::stream::empty().boxed(),
            Some(Err(e)) => {
                return futures_util::stream::once(async move { Err(decode_error(e)) }).boxed()
            }
            Some(Ok(first)) => first,
        };
        let data = futures_util::stream::once(async move { Ok(first) }).chain(data);
        let mut reader: Pin<Box<dyn AsyncBufRead + Send>> = Box::pin(StreamReader::new(data));
        let mut codings = codings;
        let outermost = codings.remove(0);
        for coding in codings.into_iter().rev() {
            reader = Box::pin(BufReader::new(decoder(coding, reader)));
        }
        ReaderStream::new(decoder(outermost, reader))
            .map_err(decode_error)
            .boxed()
    })
    .flatten();
    Ok(Box::pin(stream))
}

/// Collects the decoded body into one buffer, failing with [`ForwardError::BodyTooLarge`]
/// as soon as the decoded size passes `limit` bytes (a guard against compression bombs too).
pub async fn collect_decoded<B>(
    content_encoding: Option<&str>,
    body: B,
    limit: usize,
) -> Result<Bytes, ForwardError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>> + Send,
{
    let mut stream = decoded_body(content_encoding, body)?;
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let total = buf.len() + first.as_ref().map_or(0, Bytes::len) + chunk.len();
        if total > limit {
            return Err(ForwardError::BodyTooLarge(limit));
        }
        if first.is_none() && buf.is_empty() {
            first = Some(chunk);
        } else {
            if let Some(f) = first.take() {
                buf.extend_from_slice(&f);
            }
            buf.extend_from_slice(&chunk);
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_compression::tokio::bufread::{
        BrotliEncoder, DeflateEncoder, GzipEncoder, ZstdEncoder,
    };
    use http_body::Frame;
    use http_body_util::{Full, StreamBody};
    use std::convert::Infallible;
    use tokio::io::AsyncReadExt;

    fn sample() -> Vec<u8> {
        let mut s = String::new();
        for i in 0..2000 {
            s.push_str(&format!(
                "{{\"index\":{i},\"text\":\"[EMAIL_1] 안녕하세요 [PERSON_2]\"}}\n"
            ));
        }
        s.into_bytes()
    }

    async fn compress(coding: &str, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            "gzip" | "x-gzip" => GzipEncoder::new(input).read_to_end(&mut out).await,
            "deflate" => {
                // zlib (RFC 1950): header, raw deflate, Adler-32 of the input (big-endian).
                out.extend_from_slice(&[0x78, 0x9c]);
                let n = DeflateEncoder::new(input).read_to_end(&mut out).await;
                out.extend_from_slice(&adler32(input).to_be_bytes());
                n
            }
            "raw-deflate" => DeflateEncoder::new(input).read_to_end(&mut out).await,
            "br" => BrotliEncoder::new(input).read_to_end(&mut out).await,
            "zstd" => ZstdEncoder::new(input).read_to_end(&mut out).await,
            "identity" => {
                out.extend_from_slice(input);
                Ok(input.len())
            }
            other => panic!("no encoder for {other}"),
        }
        .unwrap();
        out
    }

    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in data {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        b << 16 | a
    }

    #[tokio::test]
    async fn deflate_accepts_zlib_and_raw_streams() {
        let plain = sample();
        for (form, chunk) in [
            ("deflate", 1),
            ("deflate", 1000),
            ("raw-deflate", 1),
            ("raw-deflate", 333),
        ] {
            let packed = compress(form, &plain).await;
            let got = collect_decoded(Some("deflate"), chunked_body(packed, chunk), 1 << 20)
                .await
                .unwrap();
            assert_eq!(
                got.as_ref(),
                plain.as_slice(),
                "{form} in chunks of {chunk}"
            );
        }
        // Short inputs: a one-byte body cannot be a complete stream.
        let err = collect_decoded(Some("deflate"), Full::new(Bytes::from_static(&[0x78])), 100)
            .await
            .unwrap_err();
        assert!(matches!(err, ForwardError::Decode(_)), "{err:?}");
        // zlib with a preset dictionary (FDICT) is refused.
        let err = collect_decoded(
            Some("deflate"),
            Full::new(Bytes::from_static(&[0x78, 0xbb, 0, 0, 0, 1, 3, 0])),
            100,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ForwardError::Decode(_)), "{err:?}");
    }

    /// A body delivered in small chunks, to exercise decoding across chunk boundaries.
    fn chunked_body(
        data: Vec<u8>,
        chunk: usize,
    ) -> StreamBody<impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static> {
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = data
            .chunks(chunk)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn round_trips_each_coding() {
        let plain = sample();
        for coding in ["gzip", "x-gzip", "deflate", "br", "zstd", "identity"] {
            let packed = compress(coding, &plain).await;
            if coding != "identity" {
                assert!(packed.len() < plain.len() / 4, "{coding} did not compress");
            }
            let got = collect_decoded(Some(coding), chunked_body(packed, 97), 1 << 20)
                .await
                .unwrap();
            assert_eq!(got.as_ref(), plain.as_slice(), "{coding}");
        }
    }

    #[tokio::test]
    async fn coding_names_are_case_insensitive() {
        let plain = sample();
        let packed = compress("gzip", &plain).await;
        let got = collect_decoded(Some(" GZip "), Full::new(Bytes::from(packed)), 1 << 20)
            .await
            .unwrap();
        assert_eq!(got.as_ref(), plain.as_slice());
    }

    #[tokio::test]
    async fn chained_codings_are_undone_in_reverse() {
        let plain = sample();
        // "Content-Encoding: gzip, br" means gzip was applied first, then br.
        let step1 = compress("gzip", &plain).await;
        let step2 = compress("br", &step1).await;
        let got = collect_decoded(Some("gzip, br"), chunked_body(step2.clone(), 64), 1 << 20)
            .await
            .unwrap();
        assert_eq!(got.as_ref(), plain.as_slice());
        // The wrong order must fail, not silently pass the bytes through.
        let err = collect_decoded(Some("br, gzip"), chunked_body(step2, 64), 1 << 20)
            .await
            .unwrap_err();
        assert!(matches!(err, ForwardError::Decode(_)), "{err:?}");

        let three = compress("zstd", &compress("deflate", &step1).await).await;
        let got = collect_decoded(
            Some("gzip,identity, deflate,zstd"),
            chunked_body(three, 50),
            1 << 20,
        )
        .await
        .unwrap();
        assert_eq!(got.as_ref(), plain.as_slice());
    }

    #[tokio::test]
    async fn multi_member_gzip() {
        let mut packed = compress("gzip", b"first half, ").await;
        packed.extend(compress("gzip", b"second half").await);
        let got = collect_decoded(Some("gzip"), chunked_body(packed, 7), 1024)
            .await
            .unwrap();
        assert_eq!(got.as_ref(), b"first half, second half");
    }

    #[tokio::test]
    async fn unknown_coding_is_an_error() {
        let body = Full::new(Bytes::from_static(b"abc"));
        let err = decoded_body(Some("gzip, compress"), body).err().unwrap();
        match &err {
            ForwardError::UnsupportedEncoding(name) => assert_eq!(name, "compress"),
            other => panic!("wrong error {other:?}"),
        }
        assert_eq!(err.status(), http::StatusCode::BAD_GATEWAY);
    }

    #[tokio::test]
    async fn no_or_identity_coding_passes_through() {
        for ce in [None, Some(""), Some("identity")] {
            let got = collect_decoded(ce, chunked_body(b"plain text".to_vec(), 3), 100)
                .await
                .unwrap();
            assert_eq!(got.as_ref(), b"plain text");
        }
    }

    #[tokio::test]
    async fn empty_body_with_coding_is_empty() {
        for coding in ["gzip", "br", "zstd", "deflate"] {
            let got = collect_decoded(Some(coding), Full::new(Bytes::new()), 100)
                .await
                .unwrap();
            assert!(got.is_empty(), "{coding}");
        }
    }

    #[tokio::test]
    async fn corrupt_data_is_a_decode_error() {
        let secret_text = b"kim.minsu@example.com is not gzip".to_vec();
        let err = collect_decoded(Some("gzip"), chunked_body(secret_text, 5), 1024)
            .await
            .unwrap_err();
        assert!(matches!(err, ForwardError::Decode(_)), "{err:?}");
        assert!(!err.to_string().contains("kim.minsu"));

        let mut truncated = compress("zstd", &sample()).await;
        truncated.truncate(truncated.len() / 2);
        let err = collect_decoded(Some("zstd"), chunked_body(truncated, 100), 1 << 20)
            .await
            .unwrap_err();
        assert!(matches!(err, ForwardError::Decode(_)), "{err:?}");
    }

    #[tokio::test]
    async fn body_read_error_is_a_protocol_error() {
        let packed = compress("gzip", &sample()).await;
        let half = Bytes::copy_from_slice(&packed[..packed.len() / 2]);
        for ce in [Some("gzip"), None] {
            let items: Vec<Result<Frame<Bytes>, io::Error>> = vec![
                Ok(Frame::data(half.clone())),
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "connection reset",
                )),
            ];
            let body = StreamBody::new(futures_util::stream::iter(items));
            let err = collect_decoded(ce, body, 1 << 20).await.unwrap_err();
            match err {
                ForwardError::Protocol(msg) => assert!(msg.contains("connection reset"), "{msg}"),
                other => panic!("wrong error {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn limit_applies_to_decoded_size() {
        let plain = vec![b'a'; 100_000];
        let packed = compress("gzip", &plain).await;
        assert!(packed.len() < 1000);
        let err = collect_decoded(Some("gzip"), Full::new(Bytes::from(packed.clone())), 50_000)
            .await
            .unwrap_err();
        assert!(matches!(err, ForwardError::BodyTooLarge(50_000)), "{err:?}");
        let ok = collect_decoded(Some("gzip"), Full::new(Bytes::from(packed)), 100_000)
            .await
            .unwrap();
        assert_eq!(ok.len(), 100_000);
        let err = collect_decoded(None, chunked_body(plain, 1000), 99_999)
            .await
            .unwrap_err();
        assert!(matches!(err, ForwardError::BodyTooLarge(99_999)));
    }

    #[tokio::test]
    async fn decoding_streams_before_the_body_ends() {
        // An SSE-like gzip answer: the first event must come out before the rest of the body
        // has been sent.
        use async_compression::tokio::write::GzipEncoder as GzipWriter;
        use tokio::io::AsyncWriteExt;
        let mut enc = GzipWriter::new(Vec::new());
        enc.write_all(b"data: one\n\n").await.unwrap();
        enc.flush().await.unwrap();
        let first_len = enc.get_ref().len();
        enc.write_all(b"data: two\n\n").await.unwrap();
        enc.shutdown().await.unwrap();
        let all = enc.into_inner();

        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let frames = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
        });
        let mut stream = decoded_body(Some("gzip"), StreamBody::new(frames)).unwrap();
        tx.send(Bytes::copy_from_slice(&all[..first_len]))
            .await
            .unwrap();
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("first event should arrive while the body is still open")
            .unwrap()
            .unwrap();
        assert_eq!(chunk.as_ref(), b"data: one\n\n");
        tx.send(Bytes::copy_from_slice(&all[first_len..]))
            .await
            .unwrap();
        drop(tx);
        let mut rest = Vec::new();
        while let Some(c) = stream.next().await {
            rest.extend_from_slice(&c.unwrap());
        }
        assert_eq!(rest, b"data: two\n\n");
    }
}
