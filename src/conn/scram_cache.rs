//! A small process-wide cache of derived SCRAM keys, so reconnecting (a pool refilling after a
//! restart, say) does not pay PBKDF2 — 4096+ HMAC rounds, milliseconds of CPU — per connection.
//!
//! Keyed by `HMAC-SHA-256(process_secret, password ‖ salt ‖ iterations)` with a secret drawn
//! from the OS RNG once per process. So the map never holds the password, nor a plain hash of
//! it that could be brute-forced offline from a memory dump without also finding the secret;
//! the cached `ScramKeys` are what a successful login needs anyway (as libpq keeps the password
//! itself in memory). Bounded to [`CAPACITY`] entries, oldest evicted first. If the OS RNG fails,
//! caching is simply skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::wire::auth::{KeyRequest, ScramKeys};

/// Distinct (password, salt, iterations) triples kept: a process talks to few servers as few
/// roles; a few dozen covers it.
const CAPACITY: usize = 32;

type CacheKey = [u8; 32];

struct Cache {
    secret: [u8; 32],
    keys: HashMap<CacheKey, ScramKeys>,
    order: VecDeque<CacheKey>,
}

fn cache() -> Option<&'static Mutex<Cache>> {
    static CACHE: OnceLock<Option<Mutex<Cache>>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let mut secret = [0u8; 32];
            getrandom::getrandom(&mut secret).ok()?;
            Some(Mutex::new(Cache {
                secret,
                keys: HashMap::new(),
                order: VecDeque::new(),
            }))
        })
        .as_ref()
}

fn cache_key(secret: &[u8; 32], password: &[u8], req: &KeyRequest) -> Option<CacheKey> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    // Length prefixes keep (password, salt) pairs from colliding by shifting bytes across.
    mac.update(&u64::try_from(password.len()).ok()?.to_be_bytes());
    mac.update(password);
    mac.update(&u64::try_from(req.salt.len()).ok()?.to_be_bytes());
    mac.update(&req.salt);
    mac.update(&req.iterations.to_be_bytes());
    Some(mac.finalize().into_bytes().into())
}

/// The keys for `password` under `req`: from the cache, or derived on the blocking pool (PBKDF2
/// must not stall the async executor) and then cached.
///
/// Cancel safety: dropping the future abandons the wait; the derivation finishes in the
/// background and is discarded.
pub(crate) async fn scram_keys(password: &[u8], req: KeyRequest) -> Result<ScramKeys> {
    let slot = cache().and_then(|c| {
        let guard = c.lock().ok()?;
        let key = cache_key(&guard.secret, password, &req)?;
        Some((key, guard.keys.get(&key).cloned()))
    });
    if let Some((_, Some(keys))) = slot {
        return Ok(keys);
    }
    let owned = password.to_vec();
    let keys =
        tokio::task::spawn_blocking(move || ScramKeys::derive(&owned, &req.salt, req.iterations))
            .await
            .map_err(|_| Error::auth("SCRAM key derivation task failed"))?;
    if let (Some((key, None)), Some(c)) = (slot, cache()) {
        if let Ok(mut guard) = c.lock() {
            if guard.keys.insert(key, keys.clone()).is_none() {
                guard.order.push_back(key);
            }
            while guard.order.len() > CAPACITY {
                if let Some(old) = guard.order.pop_front() {
                    guard.keys.remove(&old);
                }
            }
        }
    }
    Ok(keys)
}

/// How many entries are cached (for tests).
#[cfg(test)]
pub(crate) fn len() -> usize {
    cache()
        .and_then(|c| c.lock().ok().map(|g| g.keys.len()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_derivation_is_a_cache_hit() {
        let req = KeyRequest {
            salt: b"cache-test-salt".to_vec(),
            iterations: 4096,
        };
        scram_keys(b"pw-cache-test", req.clone()).await.unwrap();
        let n = len();
        assert!(n >= 1, "the derived keys were cached");
        scram_keys(b"pw-cache-test", req.clone()).await.unwrap();
        assert_eq!(len(), n, "no new entry for the same triple");
        let secret = [7u8; 32];
        assert_ne!(
            cache_key(
                &secret,
                b"ab",
                &KeyRequest {
                    salt: b"c".to_vec(),
                    iterations: 1
                }
            ),
            cache_key(
                &secret,
                b"a",
                &KeyRequest {
                    salt: b"bc".to_vec(),
                    iterations: 1
                }
            ),
        );
    }
}
