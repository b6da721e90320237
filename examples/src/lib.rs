//! Runnable examples: see `examples/examples/`. This library holds what several examples
//! share (command line, topic creation) and the logic of the examples that are also tested
//! (`exactly_once`).

use kafka_client::network::connection::{BrokerConnection, ConnectionConfig};
use kafka_wire::messages::create_topics_request::CreatableTopic;
use kafka_wire::messages::CreateTopicsRequest;
use kafka_wire::ErrorCode;

pub mod exactly_once;

/// The examples' error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `--bootstrap host:port` (or `--bootstrap=host:port`) from the command line, if given.
/// Prints `usage` and exits for `-h` / `--help` (status 0) and for anything else (status 2).
pub fn bootstrap_arg(usage: &str) -> Option<String> {
    let fail = |error: &str| -> ! {
        eprintln!("{error}{usage}");
        std::process::exit(2)
    };
    let mut args = std::env::args().skip(1);
    let mut bootstrap = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bootstrap" => match args.next() {
                Some(b) => bootstrap = Some(b),
                None => fail("--bootstrap needs host:port\n"),
            },
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            _ => match arg.strip_prefix("--bootstrap=") {
                Some(b) => bootstrap = Some(b.to_owned()),
                None => fail(&format!("unexpected argument {arg:?}\n")),
            },
        }
    }
    bootstrap
}

/// Creates `topics` with `partitions` partitions each (CreateTopics on a plain connection,
/// replication factor 1). Returns, per topic, whether it was created (`false`: it already
/// existed).
///
/// # Errors
/// Connection failures, and any other error the broker answers for a topic.
pub async fn create_topics(
    bootstrap: &str,
    topics: &[&str],
    partitions: i32,
) -> Result<Vec<(String, bool)>, BoxError> {
    let conn = BrokerConnection::connect(bootstrap, None, &ConnectionConfig::default()).await?;
    let response = conn
        .send(CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|name| CreatableTopic {
                    name: (*name).into(),
                    num_partitions: partitions,
                    replication_factor: 1,
                    ..Default::default()
                })
                .collect(),
            timeout_ms: 10_000,
            ..Default::default()
        })
        .await?;
    conn.close();
    let mut created = Vec::with_capacity(response.topics.len());
    for t in &response.topics {
        match ErrorCode::from_code(t.error_code) {
            ErrorCode::None => created.push((t.name.clone(), true)),
            ErrorCode::TopicAlreadyExists => created.push((t.name.clone(), false)),
            code => return Err(format!("cannot create topic '{}': {code:?}", t.name).into()),
        }
    }
    Ok(created)
}
