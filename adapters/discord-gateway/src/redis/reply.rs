//! Reading the scripts' array replies, with a typed error for anything unexpected.

use std::time::Duration;

use ::redis::Value;

use super::error::RedisError;

/// A script's array reply.
pub(crate) struct Reply {
    what: &'static str,
    items: Vec<Value>,
}

impl Reply {
    /// The reply to `what`, which must be an array.
    pub fn new(what: &'static str, value: Value) -> Result<Self, RedisError> {
        match value {
            Value::Array(items) => Ok(Reply { what, items }),
            other => Err(RedisError::bad_reply(
                what,
                format!("expected an array, got {other:?}"),
            )),
        }
    }

    /// The `at`-th item as an integer (a Lua number, or a decimal string Redis stored).
    pub fn int(&self, at: usize) -> Result<i64, RedisError> {
        match self.items.get(at) {
            Some(Value::Int(n)) => Ok(*n),
            Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .ok_or_else(|| self.error(at, "an integer")),
            Some(Value::SimpleString(text)) => text
                .trim()
                .parse()
                .map_err(|_| self.error(at, "an integer")),
            _ => Err(self.error(at, "an integer")),
        }
    }

    /// The `at`-th item as a non-negative integer that fits a `u32`.
    pub fn count(&self, at: usize) -> Result<u32, RedisError> {
        let n = self.int(at)?;
        u32::try_from(n).map_err(|_| self.error(at, "a count (0..=u32::MAX)"))
    }

    /// The `at`-th item as text (empty for a missing field, by the scripts' convention).
    pub fn text(&self, at: usize) -> Result<String, RedisError> {
        match self.items.get(at) {
            Some(Value::BulkString(bytes)) => {
                String::from_utf8(bytes.clone()).map_err(|_| self.error(at, "UTF-8 text"))
            }
            Some(Value::SimpleString(text)) => Ok(text.clone()),
            Some(Value::Int(n)) => Ok(n.to_string()),
            _ => Err(self.error(at, "text")),
        }
    }

    /// The `at`-th item as a PTTL reply: the duration left, `None` for a key without expiry
    /// (-1) or missing (-2).
    pub fn pttl(&self, at: usize) -> Result<Option<Duration>, RedisError> {
        let ms = self.int(at)?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    /// Items `at` and `at + 1` as a `TIME` reply: microseconds since the Unix epoch on the
    /// server's clock.
    pub fn server_time(&self, at: usize) -> Result<u64, RedisError> {
        let seconds = u64::try_from(self.int(at)?).map_err(|_| self.error(at, "TIME"))?;
        let micros = u64::try_from(self.int(at + 1)?).map_err(|_| self.error(at + 1, "TIME"))?;
        Ok(seconds.saturating_mul(1_000_000).saturating_add(micros))
    }

    fn error(&self, at: usize, expected: &str) -> RedisError {
        RedisError::bad_reply(
            self.what,
            format!("item {at} is not {expected}: {:?}", self.items.get(at)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn items_are_read_or_refused_with_a_typed_error() {
        let reply = Reply::new(
            "test",
            Value::Array(vec![
                Value::Int(4),
                bulk("17"),
                Value::Int(-2),
                bulk("1700000000"),
                bulk("123456"),
                bulk("text"),
                Value::Int(-5),
            ]),
        )
        .unwrap();
        assert_eq!(reply.int(0).unwrap(), 4);
        assert_eq!(reply.count(1).unwrap(), 17);
        assert_eq!(reply.pttl(2).unwrap(), None);
        assert_eq!(reply.pttl(1).unwrap(), Some(Duration::from_millis(17)));
        assert_eq!(reply.server_time(3).unwrap(), 1_700_000_000_123_456);
        assert_eq!(reply.text(5).unwrap(), "text");
        assert!(matches!(reply.int(5), Err(RedisError::BadReply { .. })));
        assert!(matches!(reply.count(6), Err(RedisError::BadReply { .. })));
        assert!(matches!(reply.int(9), Err(RedisError::BadReply { .. })));
        assert!(Reply::new("test", Value::Okay).is_err());
    }
}
