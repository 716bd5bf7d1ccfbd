//! [`Snowflake`]: Discord's 64-bit ids, written as JSON strings.

use core::fmt;
use core::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Discord id (guild, channel, user, ...).
///
/// Discord sends ids as JSON strings (JavaScript numbers lose precision past 2^53) and
/// accepts them as strings, so a `Snowflake` serializes as `"41771983444115456"`. It
/// deserializes from a string or, leniently, from a JSON integer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Snowflake(pub u64);

impl Snowflake {
    /// Wraps a raw id.
    pub const fn new(id: u64) -> Self {
        Snowflake(id)
    }

    /// The raw id.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Milliseconds since the Discord epoch (2015-01-01) at which the id was made: the id's
    /// top 42 bits. This is also what shard routing hashes (`id >> 22`).
    pub const fn timestamp_ms(self) -> u64 {
        self.0 >> 22
    }
}

impl From<u64> for Snowflake {
    fn from(id: u64) -> Self {
        Snowflake(id)
    }
}

impl From<Snowflake> for u64 {
    fn from(id: Snowflake) -> Self {
        id.0
    }
}

impl FromStr for Snowflake {
    type Err = core::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Snowflake)
    }
}

impl fmt::Debug for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snowflake({})", self.0)
    }
}

impl fmt::Display for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Snowflake {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Snowflake {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SnowflakeVisitor;

        impl Visitor<'_> for SnowflakeVisitor {
            type Value = Snowflake;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a snowflake id as a decimal string or an unsigned integer")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Snowflake, E> {
                Ok(Snowflake(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Snowflake, E> {
                u64::try_from(v)
                    .map(Snowflake)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Snowflake, E> {
                v.parse()
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }

        deserializer.deserialize_any(SnowflakeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_string_and_reads_both_forms() {
        let id = Snowflake(41771983444115456);
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"41771983444115456\"");
        assert_eq!(
            serde_json::from_str::<Snowflake>("\"41771983444115456\"").unwrap(),
            id
        );
        assert_eq!(
            serde_json::from_str::<Snowflake>("41771983444115456").unwrap(),
            id
        );
        // u64::MAX survives (a JSON number in JavaScript would not).
        assert_eq!(
            serde_json::from_str::<Snowflake>("\"18446744073709551615\"").unwrap(),
            Snowflake(u64::MAX)
        );
        assert!(serde_json::from_str::<Snowflake>("\"12a\"").is_err());
        assert!(serde_json::from_str::<Snowflake>("-1").is_err());
        assert!(serde_json::from_str::<Snowflake>("\"\"").is_err());
    }
}
