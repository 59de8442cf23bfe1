//! A minimal HTTP server on a loopback port that answers every request with one fixed JSON
//! body: for answers the simulator cannot give (chosen float spellings, unpadded base64),
//! sent through the real OpenAI service so they are parsed as a provider's answer would be.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The server; it stops when dropped.
pub struct FixedAnswer {
    url: String,
    served: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FixedAnswer {
    /// Starts a server answering `200` with `body` (`application/json`) to every request.
    pub async fn start(body: &str) -> FixedAnswer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}/v1", listener.local_addr().expect("address"));
        let served = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&served);
        let body = body.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    if answer(stream, &body).await.is_ok() {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        FixedAnswer { url, served, task }
    }

    /// The base URL to give the provider (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// How many requests were answered so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for FixedAnswer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (headers, then `content-length` bytes of body) and answers it.
async fn answer(mut stream: TcpStream, body: &str) -> std::io::Result<()> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        received.extend_from_slice(&chunk[..read]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let headers = String::from_utf8_lossy(&received[..header_end]).to_ascii_lowercase();
    let length: usize = headers
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while received.len() < header_end + length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        received.extend_from_slice(&chunk[..read]);
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
