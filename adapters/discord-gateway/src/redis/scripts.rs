//! The Lua scripts. Each question to Redis is one script, so each decision is atomic: Redis
//! runs a script to the end before anything else, and a client that crashes or times out
//! either ran the whole script or none of it.
//!
//! Durations only cross the wire (PX, PTTL) except where a timestamp is the point: a grant
//! and a saved session carry the server's `TIME`, the one clock every process shares.
//! Integers are sent and stored as decimal strings; replies are arrays whose first item
//! says which case happened.

use ::redis::Script;

/// Reply codes of [`IDENTIFY`].
pub(crate) mod identify {
    /// No budget in Redis: it must be (re)read from `GET /gateway/bot`.
    pub const UNKNOWN: i64 = 0;
    /// `{1, max_concurrency}`: the caller bucketed with another `max_concurrency`.
    pub const CONCURRENCY: i64 = 1;
    /// `{2, pttl}`: the budget is spent until the limit key expires.
    pub const EXHAUSTED: i64 = 2;
    /// `{3, pttl}`: the fence or the bucket's slot is held for `pttl` ms more.
    pub const BUSY: i64 = 3;
    /// `{4, remaining, pttl, time_s, time_us}`: granted; one unit spent.
    pub const GRANTED: i64 = 4;
}

/// One identify: check the budget, check and take the bucket's slot, spend one unit.
///
/// `KEYS`: limit, bucket slot, fence. `ARGV`: holder, spacing (ms), the `max_concurrency`
/// the caller computed the bucket with. Order matters: nothing is written unless
/// everything passes, so a refusal takes no slot and spends nothing.
const IDENTIFY_LUA: &str = r"
local remaining = redis.call('HGET', KEYS[1], 'remaining')
if not remaining then return {0} end
local mc = redis.call('HGET', KEYS[1], 'max_concurrency')
if tonumber(mc) ~= tonumber(ARGV[3]) then return {1, tonumber(mc) or -1} end
remaining = tonumber(remaining)
if remaining == nil or remaining <= 0 then return {2, redis.call('PTTL', KEYS[1])} end
local fence = redis.call('PTTL', KEYS[3])
if fence ~= -2 then return {3, fence} end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {3, redis.call('PTTL', KEYS[2])}
end
remaining = redis.call('HINCRBY', KEYS[1], 'remaining', -1)
local now = redis.call('TIME')
return {4, remaining, redis.call('PTTL', KEYS[1]), now[1], now[2]}
";

/// Create the budget if absent (with the fence), else only lower `remaining`; or, with
/// the replace flag, overwrite it.
///
/// `KEYS`: limit, fence. `ARGV`: remaining (less the reserve), total, max_concurrency,
/// reset_after (ms, >= 1), spacing (ms, >= 1), writer, `1` to replace. Reply:
/// `{created, remaining, total, max_concurrency, pttl}`.
const UPDATE_LIMIT_LUA: &str = r"
local current = redis.call('HGET', KEYS[1], 'remaining')
local created = 0
if ARGV[7] == '1' or not current then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'remaining', ARGV[1], 'total', ARGV[2],
             'max_concurrency', ARGV[3], 'written_by', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[5])
  created = 1
else
  if tonumber(ARGV[1]) < tonumber(current) then
    redis.call('HSET', KEYS[1], 'remaining', ARGV[1])
  end
  redis.call('HSET', KEYS[1], 'total', ARGV[2], 'max_concurrency', ARGV[3])
end
local s = redis.call('HMGET', KEYS[1], 'remaining', 'total', 'max_concurrency')
return {created, s[1], s[2], s[3], redis.call('PTTL', KEYS[1])}
";

/// Read the budget. `KEYS`: limit. Reply: `{0}` when absent, else
/// `{1, remaining, total, max_concurrency, pttl}`.
const READ_LIMIT_LUA: &str = r"
local s = redis.call('HMGET', KEYS[1], 'remaining', 'total', 'max_concurrency')
if not s[1] then return {0} end
return {1, s[1], s[2] or '', s[3] or '', redis.call('PTTL', KEYS[1])}
";

/// Reply codes of the lease scripts.
pub(crate) mod lease {
    /// `{0, holder, pttl}`: someone else holds the lease (`holder` empty and pttl -2 when
    /// nobody does, for the scripts that need the caller to hold it).
    pub const NOT_HOLDER: i64 = 0;
    /// Done.
    pub const DONE: i64 = 1;
}

/// Claim a shard: take its lease unless someone else holds it, and read its session.
///
/// `KEYS`: lease, session. `ARGV`: token, lease (ms). Reply: `{0, holder, pttl}` or
/// `{1, time_s, time_us, session, ack_age_ms, saved_at_us, saved_by}` (empty strings when
/// there is no session).
const CLAIM_LUA: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0, holder, redis.call('PTTL', KEYS[1])} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local s = redis.call('HMGET', KEYS[2], 'session', 'ack_age_ms', 'saved_at_us', 'saved_by')
local now = redis.call('TIME')
return {1, now[1], now[2], s[1] or '', s[2] or '', s[3] or '', s[4] or ''}
";

/// Everything a lease holder does, only if it still holds the lease: `renew`, `save`
/// (store the session and renew), `keep` (store the session and give the lease up),
/// `drop` (delete the session and give the lease up).
///
/// `KEYS`: lease, session. `ARGV`: token, lease (ms), mode, session JSON, ack age (ms),
/// session TTL (ms). Reply: `{1}` or `{0, holder, pttl}`.
const HOLDER_LUA: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then
  if not holder then return {0, '', -2} end
  return {0, holder, redis.call('PTTL', KEYS[1])}
end
local mode = ARGV[3]
if mode == 'save' or mode == 'keep' then
  local now = redis.call('TIME')
  redis.call('HSET', KEYS[2], 'session', ARGV[4], 'ack_age_ms', ARGV[5],
             'saved_at_us', now[1] .. string.format('%06d', tonumber(now[2])),
             'saved_by', ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
elseif mode == 'drop' then
  redis.call('DEL', KEYS[2])
end
if mode == 'save' or mode == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return {1}
";

/// Look at a shard without claiming it. `KEYS`: lease, session. Reply:
/// `{time_s, time_us, holder, lease_pttl, session, ack_age_ms, saved_at_us, saved_by}`.
const PEEK_LUA: &str = r"
local s = redis.call('HMGET', KEYS[2], 'session', 'ack_age_ms', 'saved_at_us', 'saved_by')
local holder = redis.call('GET', KEYS[1])
local now = redis.call('TIME')
return {now[1], now[2], holder or '', redis.call('PTTL', KEYS[1]),
        s[1] or '', s[2] or '', s[3] or '', s[4] or ''}
";

/// The scripts, hashed once.
pub(crate) struct Scripts {
    pub identify: Script,
    pub update_limit: Script,
    pub read_limit: Script,
    pub claim: Script,
    pub holder: Script,
    pub peek: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            identify: Script::new(IDENTIFY_LUA),
            update_limit: Script::new(UPDATE_LIMIT_LUA),
            read_limit: Script::new(READ_LIMIT_LUA),
            claim: Script::new(CLAIM_LUA),
            holder: Script::new(HOLDER_LUA),
            peek: Script::new(PEEK_LUA),
        }
    }
}
