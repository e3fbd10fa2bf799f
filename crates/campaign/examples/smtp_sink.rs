//! A local SMTP server that accepts every message and counts them: the receiving end of
//! `benches/load/campaign.sh`.
//!
//! `cargo run --release -p augur-campaign --example smtp_sink -- 127.0.0.1:2525`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mailin_embedded::response::{OK, Response};
use mailin_embedded::{Handler, Server};

#[derive(Clone)]
struct Count(Arc<AtomicU64>);

impl Handler for Count {
    fn data_end(&mut self) -> Response {
        self.0.fetch_add(1, Ordering::Relaxed);
        OK
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2525".into());
    let count = Arc::new(AtomicU64::new(0));
    let shown = count.clone();
    std::thread::spawn(move || {
        let mut last = 0;
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            let now = shown.load(Ordering::Relaxed);
            if now != last {
                println!("received {now} ({}/s)", now - last);
                last = now;
            }
        }
    });
    let mut server = Server::new(Count(count));
    if let Err(e) = server.with_num_threads(32).with_addr(addr.as_str()) {
        eprintln!("smtp_sink: {addr}: {e}");
        std::process::exit(2);
    }
    println!("smtp_sink listening on {addr}");
    if let Err(e) = server.serve() {
        eprintln!("smtp_sink: {e}");
        std::process::exit(2);
    }
}
