//! `broker-lite`: run the broker as a process.
//!
//! ```text
//! broker-lite --listen 127.0.0.1:9092 --data-dir ./data [--advertised-listener HOST:PORT]
//!             [--node-id N] [--config key=value]... [--log-level LEVEL]
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use broker_lite::{Broker, BrokerConfig};

const HELP: &str = "\
broker-lite: a Kafka-compatible broker for development and tests

USAGE:
    broker-lite [OPTIONS]

OPTIONS:
    --listen ADDR                 Address to listen on (default 127.0.0.1:9092; port 0 = any free port)
    --data-dir DIR                Data directory, Kafka's on-disk layout (default ./broker-lite-data)
    --advertised-listener H:P     Host and port given to clients in Metadata (default: the listen address)
    --node-id N                   This broker's node id (default 1)
    --config KEY=VALUE            A Kafka broker config; repeatable. Known keys include
                                  num.partitions, auto.create.topics.enable, log.segment.bytes,
                                  log.retention.ms, log.retention.hours, log.retention.bytes,
                                  log.retention.check.interval.ms, message.max.bytes,
                                  socket.request.max.bytes, connections.max.idle.ms,
                                  log.message.timestamp.type, log.flush.interval.messages,
                                  log.flush.interval.ms, delete.topic.enable,
                                  transaction.max.timeout.ms,
                                  transaction.abort.timed.out.transaction.cleanup.interval.ms,
                                  transactional.id.expiration.ms
    --log-level LEVEL             error, warn, info (default), debug or trace
    -h, --help                    Print this help

Stops cleanly on Ctrl-C or SIGTERM: requests in flight are answered and files are flushed.
";

fn parse_args() -> Result<Option<(BrokerConfig, String)>, String> {
    let mut config = BrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
        data_dir: Some("./broker-lite-data".into()),
        ..BrokerConfig::default()
    };
    let mut level = "info".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value("--listen")?;
                config.listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--data-dir" => config.data_dir = Some(value("--data-dir")?.into()),
            "--advertised-listener" => {
                let v = value("--advertised-listener")?;
                let (host, port) = v
                    .rsplit_once(':')
                    .ok_or(format!("--advertised-listener {v}: expected HOST:PORT"))?;
                let port = port
                    .parse()
                    .map_err(|e| format!("--advertised-listener {v}: {e}"))?;
                config.advertised = Some((host.to_string(), port));
            }
            "--node-id" => {
                let v = value("--node-id")?;
                config.node_id = v.parse().map_err(|e| format!("--node-id {v}: {e}"))?;
            }
            "--config" => {
                let v = value("--config")?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or(format!("--config {v}: expected KEY=VALUE"))?;
                config
                    .set(k.trim(), val.trim())
                    .map_err(|e| e.to_string())?;
            }
            "--log-level" => level = value("--log-level")?,
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    Ok(Some((config, level)))
}

fn main() -> ExitCode {
    let (config, level) = match parse_args() {
        Ok(Some(c)) => c,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("broker-lite: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("broker_lite={level},warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("broker-lite: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let broker = match Broker::builder().with_config(config).start().await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("broker-lite: {e}");
                return ExitCode::FAILURE;
            }
        };
        wait_for_signal().await;
        broker.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
