//! The MTA-STS policy fetch: bounds, redirects, certificates.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Serve `response` (raw HTTP bytes) to one request over an in-memory
/// stream and return what `get` made of it.
async fn get_with(response: Vec<u8>) -> Result<Bytes, FetchError> {
    let dns = DnsConfig {
        resolvers: vec![SocketAddr::from(([127, 0, 0, 1], 5353))],
        ..DnsConfig::default()
    };
    let fetcher = PolicyFetcher::new(&dns, None, FetchConfig::default()).expect("fetcher");
    let (client, mut server) = tokio::io::duplex(256 * 1024);
    let serve = tokio::spawn(async move {
        let mut request = vec![0u8; 4096];
        let n = server.read(&mut request).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&request[..n]).into_owned();
        let _ = server.write_all(&response).await;
        let _ = server.shutdown().await;
        request
    });
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        fetcher.get("mta-sts.example.net", client),
    )
    .await
    .expect("get ends");
    let request = serve.await.expect("server task");
    assert!(
        request.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("host: mta-sts.example.net\r\n"),
        "{request}"
    );
    result
}

fn response(head: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{head}\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[tokio::test]
async fn a_200_text_plain_body_is_returned() {
    let body = b"version: STSv1\r\nmode: none\r\nmax_age: 1\r\n";
    let got = get_with(response(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8",
        body,
    ))
    .await;
    assert_eq!(got.as_deref(), Ok(&body[..]));
}

#[tokio::test]
async fn redirects_statuses_and_types_fail() {
    let got = get_with(response(
        "HTTP/1.1 302 Found\r\nlocation: https://elsewhere.example/p",
        b"",
    ))
    .await;
    assert_eq!(
        got,
        Err(FetchError::Redirect {
            status: 302,
            location: "https://elsewhere.example/p".into()
        })
    );
    let got = get_with(response("HTTP/1.1 404 Not Found", b"no")).await;
    assert_eq!(got, Err(FetchError::Status(404)));
    let got = get_with(response(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html",
        b"<html>",
    ))
    .await;
    assert_eq!(got, Err(FetchError::ContentType("text/html".into())));
}

#[tokio::test]
async fn oversized_bodies_fail_with_or_without_a_length() {
    let big = vec![b'a'; MAX_POLICY_BYTES + 1];
    let got = get_with(response(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain",
        &big,
    ))
    .await;
    assert_eq!(
        got,
        Err(FetchError::TooLarge {
            limit: MAX_POLICY_BYTES
        })
    );
    // Chunked: no declared length, the limit is found while reading.
    let mut chunked =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..17 {
        chunked.extend_from_slice(b"1000\r\n");
        chunked.extend_from_slice(&[b'a'; 0x1000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let got = get_with(chunked).await;
    assert_eq!(
        got,
        Err(FetchError::TooLarge {
            limit: MAX_POLICY_BYTES
        })
    );
    // Exactly the limit is fine.
    let exact = vec![b'a'; MAX_POLICY_BYTES];
    let got = get_with(response(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain",
        &exact,
    ))
    .await;
    assert_eq!(got.map(|b| b.len()), Ok(MAX_POLICY_BYTES));
}

#[test]
fn only_absence_is_txt_without_policy() {
    let host = || "mta-sts.example.net".to_string();
    assert!(FetchError::NoPolicyHost {
        host: host(),
        reason: "NXDOMAIN".into()
    }
    .policy_host_absent());
    assert!(FetchError::Connect {
        host: host(),
        port: 443,
        reason: "refused".into()
    }
    .policy_host_absent());
    assert!(!FetchError::Dns {
        host: host(),
        reason: "SERVFAIL".into()
    }
    .policy_host_absent());
    assert!(!FetchError::Tls {
        host: host(),
        reason: "UnknownIssuer".into()
    }
    .policy_host_absent());
    assert!(!FetchError::Timeout(Duration::from_secs(1)).policy_host_absent());
}
