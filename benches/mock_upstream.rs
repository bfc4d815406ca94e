//! The benchmark upstream as a process of its own, for `benches/load.sh`.
//!
//! Started by the load script with `GARIM_MOCK_LISTEN=127.0.0.1:0`; prints `listening on ADDR`.
//! Without that variable it does nothing and exits 0, so `cargo test --all-targets` (which runs
//! every bench target once) does not hang on it.

mod common;

fn main() {
    let Ok(addr) = std::env::var("GARIM_MOCK_LISTEN") else {
        eprintln!(
            "mock_upstream: set GARIM_MOCK_LISTEN=ADDR:PORT to serve (used by benches/load.sh)"
        );
        return;
    };
    let addr = addr.parse().expect("GARIM_MOCK_LISTEN must be ADDR:PORT");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let local = common::mock_upstream::spawn(addr).await;
        println!("listening on {local}");
        use std::io::Write;
        std::io::stdout().flush().ok();
        std::future::pending::<()>().await;
    });
}
