//! One-line descriptions of gateway frames, for the fake server's log.

fn opcode_name(op: u64) -> &'static str {
    match op {
        0 => "Dispatch",
        1 => "Heartbeat",
        2 => "Identify",
        3 => "Presence Update",
        4 => "Voice State Update",
        6 => "Resume",
        7 => "Reconnect",
        8 => "Request Guild Members",
        9 => "Invalid Session",
        10 => "Hello",
        11 => "Heartbeat ACK",
        31 => "Request Soundboard Sounds",
        43 => "Request Channel Info",
        _ => "unknown opcode",
    }
}

/// A short description of a frame the server sends.
pub fn describe_server_frame(text: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return format!("{} bytes of non-JSON", text.len());
    };
    let op = value.get("op").and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
    match op {
        0 => format!(
            "dispatch #{} {}",
            value.get("s").and_then(|v| v.as_u64()).unwrap_or(0),
            value.get("t").and_then(|v| v.as_str()).unwrap_or("?")
        ),
        9 => format!("op 9 Invalid Session (d: {})", value["d"]),
        10 => format!(
            "op 10 Hello (heartbeat every {} ms)",
            value["d"]["heartbeat_interval"]
        ),
        _ => format!("op {op} {}", opcode_name(op)),
    }
}

/// A short description of a frame the client sends (never its contents: Identify and
/// Resume carry the token).
pub fn describe_client_frame(text: &str) -> String {
    let op = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("op").and_then(|v| v.as_u64()));
    match op {
        Some(op) => format!("op {op} {}", opcode_name(op)),
        None => format!("{} bytes of non-JSON", text.len()),
    }
}
