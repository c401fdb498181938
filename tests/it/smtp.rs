//! A real SMTP server in the test process (mailin-embedded, a published crate): it speaks the
//! protocol over TCP, keeps what it receives, and can be told to refuse for a while.

use std::{
    net::{IpAddr, TcpListener},
    sync::{Arc, Mutex},
};

use mailin_embedded::{response, Handler, Response, Server, SslConfig};

#[derive(Debug, Clone, Default)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// DATA commands still to refuse with 451 (temporary), or with 550 when `permanent`.
    refuse: usize,
    permanent: bool,
    refused: usize,
}

/// The server clones the handler for each SMTP session: the message being received belongs to
/// the session (`.1`), what was received to all (`.0`).
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<State>>, Received);

impl Handler for Sink {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.1 = Received { from: from.to_string(), ..Received::default() };
        response::OK
    }
    fn rcpt(&mut self, to: &str) -> Response {
        self.1.to.push(to.to_string());
        response::OK
    }
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, _to: &[String]) -> Response {
        let mut s = self.0.lock().unwrap();
        if s.refuse > 0 {
            s.refuse -= 1;
            s.refused += 1;
            return if s.permanent { response::NO_MAILBOX } else { response::INTERNAL_ERROR };
        }
        response::START_DATA
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.1.data.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        let done = std::mem::take(&mut self.1);
        self.0.lock().unwrap().received.push(done);
        response::OK
    }
}

pub struct SmtpServer {
    pub port: u16,
    sink: Sink,
}

impl SmtpServer {
    /// Starts on a free port; the server thread lives as long as the test process.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Sink::default();
        let mut server = Server::new(sink.clone());
        server.with_name("smtp.test").with_ssl(SslConfig::None).unwrap().with_num_threads(4).with_tcp_listener(listener);
        std::thread::spawn(move || {
            if let Err(e) = server.serve() {
                eprintln!("test SMTP server stopped: {e}");
            }
        });
        Self { port, sink }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.sink.0.lock().unwrap().received.clone()
    }

    /// Refuses the next `n` messages: 451 (try later), or 550 (never) when `permanent`.
    pub fn refuse_next(&self, n: usize, permanent: bool) {
        let mut s = self.sink.0.lock().unwrap();
        s.refuse = n;
        s.permanent = permanent;
    }

    pub fn refused(&self) -> usize {
        self.sink.0.lock().unwrap().refused
    }
}
