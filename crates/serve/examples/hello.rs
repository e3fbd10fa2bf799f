//! The ceiling the service is measured against: a plain axum "hello" endpoint on the same
//! runtime settings, no auth, no model. `benches/load/serve.sh` runs it next to `augur serve`.
//!
//! `cargo run --release -p augur-serve --example hello -- 127.0.0.1:8090`

use axum::Router;
use axum::routing::get;

fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            let app = Router::new().route("/", get(|| async { "hello" }));
            axum::serve(listener, app).await
        })
}
