//! The smallest useful bot: prints who said what. `DISCORD_TOKEN=... cargo run --example bot`
//! (the bot needs the Message Content intent, enabled in the Developer Portal).
use discord_gateway::{tokio::Shard, Intents, ShardEvent, ShardId};

#[derive(serde::Deserialize)]
struct Message {
    content: String,
    author: Author,
}

#[derive(serde::Deserialize)]
struct Author {
    username: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("DISCORD_TOKEN")?;
    let intents = Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    let mut shard = Shard::new(ShardId::ONE, token, intents)?;
    while let Some(event) = shard.next_event().await {
        let ShardEvent::Dispatch(d) = event else {
            continue;
        };
        if d.name == "MESSAGE_CREATE" {
            let message: Message = serde_json::from_str(&d.data)?;
            println!("{}: {}", message.author.username, message.content);
        }
    }
    Ok(())
}
