//! An edge gateway that embeds Hypergolix: a persistence server and a
//! local service in its own tokio program, driven through the Rust link,
//! then stopped cleanly. Nothing is printed by Hypergolix itself (its lines
//! are `tracing` events) and no signal handler is installed.
//!
//! cargo run --release -p hypergolix-wasi-host --example edge_gateway [DIR]

use hypergolix_link::{HypergolixLink, NewObj};
use hypergolix_wasi_host::embed::{ServerBuilder, ServiceBuilder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("hypergolix-edge-gateway"));
    std::fs::create_dir_all(&dir)?;

    let server = ServerBuilder::new(dir.join("server.redb")).start().await?;
    println!("gateway: persistence server on {}", server.url());
    let service = ServiceBuilder::new(dir.join("agent"))
        .remote(server.url())
        .password(b"the gateway's own secret".to_vec())
        .start()
        .await?;
    println!(
        "gateway: local service for apps on {} (user id {})",
        service.ipc(),
        service.user_id().map(|u| u.to_string()).unwrap_or_default()
    );

    let link = HypergolixLink::connect(service.ipc()).await?;
    link.new_token().await?;
    let reading = link.new_obj(b"21.5 C".to_vec(), NewObj::default()).await?;
    reading.set_state(b"21.7 C".to_vec()).await?;
    println!(
        "gateway: object {} holds {:?}",
        reading.address(),
        String::from_utf8_lossy(&reading.state())
    );
    drop(reading);
    link.stop();

    service.shutdown().await?;
    server.shutdown().await?;
    println!("gateway: stopped; every acknowledged write is on disk");
    Ok(())
}
