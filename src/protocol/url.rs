//! The gateway URL: a `ws://` or `wss://` base plus `v=10`, `encoding=json` and, when
//! transport compression is on, `compress`.

use alloc::string::{String, ToString};

use thiserror::Error;
use url::Url;

use crate::config::Compression;

/// The gateway API version this crate speaks.
pub const API_VERSION: u8 = 10;

/// Discord's main gateway URL (as returned by `GET /gateway/bot` today).
pub const DEFAULT_GATEWAY_URL: &str = "wss://gateway.discord.gg";

/// Why a gateway URL was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GatewayUrlError {
    /// The text is not a URL.
    #[error("invalid gateway URL: {0}")]
    Invalid(url::ParseError),
    /// The scheme is not `ws` or `wss`.
    #[error("gateway URL scheme must be ws or wss, not {0:?}")]
    Scheme(String),
}

/// Builds the URL to connect to from a base (`wss://gateway.discord.gg`, or a READY's
/// `resume_gateway_url`): the base's scheme, host, port and path, with the query replaced by
/// `v=10&encoding=json` and `compress=…` when `compression` is a transport compression.
pub fn gateway_url(base: &str, compression: Compression) -> Result<String, GatewayUrlError> {
    let mut url = Url::parse(base).map_err(GatewayUrlError::Invalid)?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(GatewayUrlError::Scheme(url.scheme().to_string()));
    }
    url.set_fragment(None);
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        query.append_pair("v", "10");
        query.append_pair("encoding", "json");
        if let Some(value) = compression.query_value() {
            query.append_pair("compress", value);
        }
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_query_parameters() {
        assert_eq!(
            gateway_url("wss://gateway.discord.gg", Compression::None).unwrap(),
            "wss://gateway.discord.gg/?v=10&encoding=json"
        );
        assert_eq!(
            gateway_url(
                "wss://gateway-us-east1-b.discord.gg/?v=6&foo=1#x",
                Compression::None
            )
            .unwrap(),
            "wss://gateway-us-east1-b.discord.gg/?v=10&encoding=json"
        );
        assert_eq!(
            gateway_url("ws://127.0.0.1:9000/gw", Compression::None).unwrap(),
            "ws://127.0.0.1:9000/gw?v=10&encoding=json"
        );
        assert!(matches!(
            gateway_url("https://x", Compression::None),
            Err(GatewayUrlError::Scheme(_))
        ));
        assert!(gateway_url("not a url", Compression::None).is_err());
    }
}
