//! A real SMTP server on loopback for the campaign tests (mailin-embedded): it records every
//! message it accepts and answers 550 to the recipients it is told to refuse.

use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};

use mailin_embedded::response::{OK, Response};
use mailin_embedded::{Handler, Server};

/// A message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The raw message.
    pub data: String,
}

impl Received {
    /// A header's value (unfolded), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t'])
                && let Some(v) = value.as_mut()
            {
                v.push_str(line.trim_start());
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_string());
            }
        }
        value
    }
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Log {
    /// Accepted messages, in arrival order.
    pub accepted: Vec<Received>,
    /// Recipients refused with 550.
    pub refused: Vec<String>,
}

#[derive(Clone)]
struct Sink {
    log: Arc<Mutex<Log>>,
    refuse: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Sink {
    fn rcpt(&mut self, to: &str) -> Response {
        if (self.refuse)(to) {
            self.log.lock().expect("log").refused.push(to.to_string());
            return Response::custom(550, "5.1.1 mailbox unavailable".into());
        }
        OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.to.clear();
        self.data.clear();
        OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let received = Received {
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        };
        self.log.lock().expect("log").accepted.push(received);
        OK
    }
}

/// Starts a server on `listener` (it runs until the test process ends).
pub fn start(
    listener: TcpListener,
    refuse: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> Arc<Mutex<Log>> {
    let log = Arc::new(Mutex::new(Log::default()));
    let sink = Sink {
        log: log.clone(),
        refuse: Arc::new(refuse),
        to: Vec::new(),
        data: Vec::new(),
    };
    let mut server = Server::new(sink);
    server.with_num_threads(16).with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    log
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
