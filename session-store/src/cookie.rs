//! [`CookieStore`]: the whole session sealed into the cookie value.
//!
//! # Token format
//!
//! The cookie value is unpadded base64url of
//!
//! | bytes | field |
//! |---|---|
//! | 1 | token format, `0x02` |
//! | 4 | key id, big-endian: which key of the [`KeyRing`] sealed it |
//! | 12 | AES-256-GCM nonce (see *Nonces*) |
//! | n + 16 | AES-256-GCM ciphertext of the [`codec`] encoding, then the tag |
//!
//! The AES key is not the ring's key itself but `HKDF-SHA256(salt = none, ikm = key, info =
//! "session-store/cookie/v2 aes-256-gcm")`, 32 bytes, derived once per key when the ring is
//! built: no cipher ever uses the ring's secret directly, so a later format can derive its own
//! key from the same secret without the two uses sharing a key.
//!
//! The associated data is `"session-store/cookie/v2\0"`, the cookie name, `0x00`, and the
//! 5 header bytes, so a token cannot be replayed under another cookie name, and the format
//! byte and key id cannot be altered. The expiry is inside the sealed record, so a client cannot
//! extend it by editing the cookie's `Max-Age`.
//!
//! ## Nonces
//!
//! GCM needs a nonce that never repeats under one key, and with 96 bits, nonces drawn at
//! random for every seal are only safe up to about 2³² seals per key. So each process draws
//! one random 96-bit starting point from the OS CSPRNG (at its first seal) and counts up from
//! it (modulo 2⁹⁶), one step per seal, shared by every store and key in the process. Two
//! processes sealing with the same key (several servers behind a balancer) collide only if
//! their ranges overlap: with P processes of at most S seals each the chance is about
//! P²·S / 2⁹⁶ (10⁶ process starts of 2⁴⁰ seals each: below 2⁻¹⁶). A process that `fork`s
//! without `exec` after its first seal would repeat its parent's counter: seal in one of them
//! only. This also takes the OS RNG call (a system call) out of every seal.
//!
//! Only format `0x02` opens; any other format byte is [`OpenError::UnknownFormat`], and such a
//! client simply gets a new session. There is one cipher, AES-256-GCM through `ring`
//! (assembly for AES-NI/CLMUL and the other major CPUs; the figures are in BENCHMARKS.md).
//!
//! # Keys
//!
//! A key is 32 bytes from a CSPRNG, never a password: [`Key::generate`] draws one from the OS
//! RNG, [`Key::to_base64`] prints it for your secret store, and [`Key::from_base64`],
//! [`Key::from_hex`] and [`Key::from_env`] load it back. [`KeyRing::from_env`] reads a whole
//! ring (`id:key,id:key`, the first seals) from one environment variable, which is how a
//! rotation is rolled out: see [`KeyRing`] for the steps, as a runnable example.
//!
//! # Payload formats
//!
//! The sealed plaintext is the [`codec`] encoding of the record, which starts with its own
//! format byte, so the payload is versioned inside the authenticated part and the token layout
//! above did not change with it:
//!
//! * **`0x02`, binary ([`codec::FORMAT_V2`])**: what [`CookieStore::seal`] writes. For the
//!   1 KiB benchmark session it is 962 bytes against 1,024 of JSON, and encoding plus decoding
//!   takes about a third of the JSON's time.
//! * **`0x01`, JSON ([`codec::FORMAT_V1`])**: what versions before the binary codec sealed.
//!   **Such tokens still open**, so upgrading logs nobody out; a save re-seals them in the
//!   binary format. Only tokens that pass the AEAD reach the JSON decoder (tokens sealed with
//!   one of the ring's keys), so keeping it adds no attack surface for forged cookies. Once
//!   the longest TTL has passed since the upgrade, no format-1 token can still be live.
//!
//! # What a client-held session cannot do
//!
//! * **No revocation.** [`delete`](SessionStore::delete) has nothing to delete: the caller must
//!   clear the cookie, and a copy of the old token still opens until it expires. Use short
//!   TTLs with [`touch`](SessionStore::touch), or retire the key (which logs everyone out).
//! * **No shared compare-and-set.** The only copy of the session is the one the client
//!   presented, so [`compare_and_save`](SessionStore::compare_and_save) can only compare with
//!   the version inside that token, i.e. the record it was loaded from: it never reports a
//!   conflict. Two concurrent requests carrying the same cookie each save successfully, and the
//!   browser keeps whichever `Set-Cookie` arrives last; the other update is lost. Keep
//!   contended state (counters, carts) in a server-side store.
//! * **Replay.** An old token stays valid until its sealed expiry.

#![warn(clippy::indexing_slicing)]

use std::fmt;
use std::future::{Future, ready};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use base64_simd::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::clock::{Clock, SystemClock, UnixTime};
use crate::{Record, SessionStore, StoreError, Token, codec};

/// Most browsers cap `name=value` of one cookie at 4,096 bytes (RFC 6265 §6.1 asks for at
/// least that much).
pub const MAX_COOKIE_BYTES: usize = 4096;
/// The token format written and opened by this version (AES-256-GCM).
pub const TOKEN_FORMAT_V2: u8 = 2;

const AAD_PREFIX_V2: &[u8] = b"session-store/cookie/v2\0";
const HKDF_INFO_V2: &[u8] = b"session-store/cookie/v2 aes-256-gcm";
const HEADER_LEN: usize = 1 + 4;
/// Length of the AES-256-GCM nonce.
pub const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Smallest binary token: header, nonce, tag, and a 1-byte plaintext.
const MIN_SEALED_LEN: usize = HEADER_LEN + NONCE_LEN + TAG_LEN + 1;

/// One key of the ring: the AES-256-GCM key derived from it.
#[derive(Clone)]
struct Entry {
    id: u32,
    /// `None` only if `ring` refused the derivation, which HKDF-SHA256 does for outputs over
    /// 8,160 bytes only (32 are asked for): then this key seals and opens nothing (fail
    /// closed) instead of panicking.
    gcm: Option<LessSafeKey>,
}

impl Entry {
    fn new(id: u32, key: &Key) -> Self {
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(&key.0);
        let gcm = prk
            .expand(&[HKDF_INFO_V2], &AES_256_GCM)
            .ok()
            .map(|okm| LessSafeKey::new(UnboundKey::from(okm)));
        Self { id, gcm }
    }
}

/// One 32-byte cookie key: secret randomness, never a password.
///
/// Make one with [`Key::generate`] (the OS CSPRNG) and keep it with
/// [`to_base64`](Self::to_base64) in your secret store; load it with
/// [`from_base64`](Self::from_base64), [`from_hex`](Self::from_hex) or
/// [`from_env`](Self::from_env). The bytes are overwritten when the key is dropped (best
/// effort: copies made by moves are not tracked). `Debug` never shows them.
///
/// ```
/// use session_store::cookie::Key;
///
/// let key = Key::generate()?;
/// let text = key.to_base64(); // 43 characters of base64url: store this as the secret
/// assert_eq!(Key::from_base64(&text)?, key);
/// assert!(Key::from_hex("00ff").is_err()); // too short: 64 hex digits are needed
/// # Ok::<(), session_store::cookie::KeyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

/// Length of a [`Key`] in bytes.
pub const KEY_LEN: usize = 32;

impl Key {
    /// Draws a new key from the operating system's CSPRNG (`getrandom`).
    ///
    /// # Errors
    /// [`KeyError::Random`] if the OS RNG fails.
    pub fn generate() -> Result<Self, KeyError> {
        let mut k = [0_u8; KEY_LEN];
        getrandom::fill(&mut k).map_err(KeyError::Random)?;
        Ok(Self(k))
    }

    /// The key made of these bytes (which must come from a CSPRNG).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses base64 of 32 bytes: the standard or the URL-safe alphabet, padded or not,
    /// surrounding whitespace ignored (`openssl rand -base64 32` and [`to_base64`] both work).
    ///
    /// # Errors
    /// [`KeyError::NotBase64`] or [`KeyError::Length`]. The text is never part of the error.
    ///
    /// [`to_base64`]: Self::to_base64
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        use base64::Engine as _;
        let t: String = text
            .trim()
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.as_bytes())
            .map_err(|_| KeyError::NotBase64)?;
        Self::from_slice(&bytes)
    }

    /// Parses 64 hex digits (either case, surrounding whitespace ignored; `openssl rand -hex
    /// 32`).
    ///
    /// # Errors
    /// [`KeyError::NotHex`] or [`KeyError::Length`].
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let t = text.trim().as_bytes();
        if !t.len().is_multiple_of(2) {
            return Err(KeyError::NotHex);
        }
        let digit = |c: u8| -> Result<u8, KeyError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(KeyError::NotHex),
            }
        };
        let bytes = t
            .chunks_exact(2)
            .map(|p| match p {
                [h, l] => Ok(digit(*h)? << 4 | digit(*l)?),
                _ => Err(KeyError::NotHex),
            })
            .collect::<Result<Vec<u8>, _>>()?;
        Self::from_slice(&bytes)
    }

    /// Parses either spelling: exactly 64 hex digits as hex, anything else as base64.
    ///
    /// # Errors
    /// As [`from_hex`](Self::from_hex) and [`from_base64`](Self::from_base64).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        if t.len() == 2 * KEY_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            Self::from_hex(t)
        } else {
            Self::from_base64(t)
        }
    }

    /// Reads the key from the environment variable `var` ([`parse`](Self::parse): hex or
    /// base64).
    ///
    /// # Errors
    /// [`KeyError::EnvMissing`] if `var` is unset or not Unicode, else as
    /// [`parse`](Self::parse), with the variable's name.
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let text = std::env::var(var).map_err(|_| KeyError::EnvMissing {
            var: var.to_owned(),
        })?;
        Self::parse(&text).map_err(|e| KeyError::InEnv {
            var: var.to_owned(),
            source: Box::new(e),
        })
    }

    /// The key as unpadded base64url (43 characters), for storing it as a secret.
    #[must_use]
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }

    fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        <[u8; KEY_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| KeyError::Length { found: bytes.len() })
    }
}

impl From<[u8; KEY_LEN]> for Key {
    fn from(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Why a [`Key`] or [`KeyRing`] could not be made. Never contains key material.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum KeyError {
    /// The OS random number generator failed.
    #[error("the OS random number generator failed; retry, or check the system's entropy source")]
    Random(#[source] getrandom::Error),
    /// The text is not base64.
    #[error(
        "key is not base64 (nor 64 hex digits); generate one with Key::generate().to_base64() or `openssl rand -base64 32`"
    )]
    NotBase64,
    /// The text is not hex.
    #[error("key is not hex; expected 64 hex digits (`openssl rand -hex 32`)")]
    NotHex,
    /// The text decodes to the wrong number of bytes.
    #[error("key decodes to {found} bytes, but a key is exactly 32 random bytes")]
    Length {
        /// Bytes decoded.
        found: usize,
    },
    /// The environment variable is not set (or not Unicode).
    #[error("environment variable {var} is not set (or not Unicode); set it to the key(s)")]
    EnvMissing {
        /// The variable's name.
        var: String,
    },
    /// The environment variable is set but does not hold a valid key or key ring.
    #[error("environment variable {var} does not hold a valid key")]
    InEnv {
        /// The variable's name.
        var: String,
        /// What is wrong with its value.
        #[source]
        source: Box<Self>,
    },
    /// A key ring specification entry is not `id:key`.
    #[error(
        "key ring entry {index} is not `id:key` with a decimal u32 id (spec: `id:key,id:key`, first seals)"
    )]
    RingEntry {
        /// Zero-based position of the entry.
        index: usize,
    },
    /// A key ring specification names one id twice.
    #[error("key ring lists key id {id} twice; every key needs its own id")]
    DuplicateId {
        /// The repeated id.
        id: u32,
    },
    /// A key ring specification is empty.
    #[error("key ring specification is empty; it needs at least one `id:key`")]
    EmptyRing,
}

/// AEAD keys by id. The first (newest) key seals; every key opens.
///
/// Ids must be unique; a repeated id shadows the older key. `Debug` prints the ids only. The
/// ring keeps only the cipher's key schedule derived from each [`Key`].
///
/// # Rotation
///
/// Every server must be able to open what any other server sealed, so a rotation takes two
/// deployments:
///
/// 1. Add the new key as a **previous** key everywhere (it opens, nothing seals with it yet):
///    `SESSION_KEYS="1:<old>,2:<new>"`.
/// 2. Once every server has it, make it the **sealing** key: `SESSION_KEYS="2:<new>,1:<old>"`.
///    Sessions sealed with key 1 still open, and are re-sealed with key 2 at their next write.
/// 3. After the longest session TTL, drop key 1 (`SESSION_KEYS="2:<new>"`). Its tokens stop
///    opening (those clients get a new session).
///
/// ```
/// use std::time::Duration;
/// use session_store::cookie::{CookieStore, Key, KeyRing};
/// use session_store::{Clock, ManualClock, Record, SessionId, SessionStore, UnixTime};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
/// let (old, new) = (Key::generate()?, Key::generate()?);
/// let spec = |ids: &[(u32, &Key)]| {
///     ids.iter().map(|(id, k)| format!("{id}:{}", k.to_base64())).collect::<Vec<_>>().join(",")
/// };
///
/// // Before: key 1 seals.
/// let before = CookieStore::with_clock("sid", KeyRing::parse(&spec(&[(1, &old)]))?, clock.clone());
/// let mut rec = Record::new(SessionId::random()?, clock.now(), Duration::from_secs(3600));
/// rec.insert("user", "alice")?;
/// let token = before.create(&mut rec).await?;
///
/// // Steps 1 and 2 (KeyRing::from_env("SESSION_KEYS") in a server): key 2 seals, key 1 opens.
/// let after = CookieStore::with_clock("sid", KeyRing::parse(&spec(&[(2, &new), (1, &old)]))?, clock.clone());
/// let mut rec = after.load(&token).await?.ok_or("old token must still open")?;
/// let token = after.save(&mut rec).await?; // re-sealed with key 2
/// assert_eq!(after.keys().primary_id(), 2);
///
/// // Step 3: only key 2; the re-sealed token opens, tokens of key 1 would not.
/// let last = CookieStore::with_clock("sid", KeyRing::new(2, new), clock);
/// assert_eq!(last.load(&token).await?.ok_or("re-sealed token opens")?.get::<String>("user")?.as_deref(), Some("alice"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<Entry>,
}

impl KeyRing {
    /// A ring with one key, which seals. Takes a [`Key`] or a `[u8; 32]`.
    #[must_use]
    pub fn new(id: u32, key: impl Into<Key>) -> Self {
        Self {
            keys: vec![Entry::new(id, &key.into())],
        }
    }

    /// A ring with one freshly generated key: for tests and single-process servers whose
    /// sessions may end with the process.
    ///
    /// # Errors
    /// [`KeyError::Random`].
    pub fn generate(id: u32) -> Result<Self, KeyError> {
        Ok(Self::new(id, Key::generate()?))
    }

    /// Parses `id:key,id:key,…` (ids decimal `u32`, keys as [`Key::parse`]: base64 or hex;
    /// whitespace around entries ignored). The first key seals, the others open.
    ///
    /// # Errors
    /// [`KeyError::EmptyRing`], [`KeyError::RingEntry`], [`KeyError::DuplicateId`], or a key's
    /// own error.
    pub fn parse(spec: &str) -> Result<Self, KeyError> {
        let mut keys: Vec<Entry> = Vec::new();
        for (index, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() && spec.trim().is_empty() {
                return Err(KeyError::EmptyRing);
            }
            let (id, key) = entry.split_once(':').ok_or(KeyError::RingEntry { index })?;
            let id: u32 = id
                .trim()
                .parse()
                .map_err(|_| KeyError::RingEntry { index })?;
            if keys.iter().any(|e| e.id == id) {
                return Err(KeyError::DuplicateId { id });
            }
            keys.push(Entry::new(id, &Key::parse(key)?));
        }
        if keys.is_empty() {
            return Err(KeyError::EmptyRing);
        }
        Ok(Self { keys })
    }

    /// Reads a ring from the environment variable `var`, in [`parse`](Self::parse)'s format.
    ///
    /// # Errors
    /// [`KeyError::EnvMissing`], or [`KeyError::InEnv`] naming `var` and what is wrong.
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let text = std::env::var(var).map_err(|_| KeyError::EnvMissing {
            var: var.to_owned(),
        })?;
        Self::parse(&text).map_err(|e| KeyError::InEnv {
            var: var.to_owned(),
            source: Box::new(e),
        })
    }

    /// Makes `key` the sealing key; the keys already here still open.
    #[must_use]
    pub fn rotate(mut self, id: u32, key: impl Into<Key>) -> Self {
        self.keys.insert(0, Entry::new(id, &key.into()));
        self
    }

    /// Adds `key` as an older key: it opens, never seals.
    #[must_use]
    pub fn with_previous(mut self, id: u32, key: impl Into<Key>) -> Self {
        self.keys.push(Entry::new(id, &key.into()));
        self
    }

    /// Forgets the key `id`; tokens it sealed no longer open. The sealing key cannot be
    /// retired (`false` is returned): rotate first.
    pub fn retire(&mut self, id: u32) -> bool {
        let before = self.keys.len();
        let primary = self.primary_id();
        if id == primary {
            return false;
        }
        self.keys.retain(|e| e.id != id);
        self.keys.len() != before
    }

    /// The id of the sealing key.
    #[must_use]
    pub fn primary_id(&self) -> u32 {
        self.keys.first().map_or(0, |e| e.id)
    }

    fn primary(&self) -> Option<&Entry> {
        self.keys.first()
    }

    fn find(&self, id: u32) -> Option<&Entry> {
        self.keys.iter().find(|e| e.id == id)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.keys.iter().map(|e| e.id).collect::<Vec<_>>())
            .finish()
    }
}

thread_local! {
    /// The buffer a seal builds its token in and an open decodes into, kept per thread so a
    /// request costs no allocation for it. Cleared before it is put back; a buffer that grew
    /// past [`MAX_COOKIE_BYTES`] (not reachable through the size checks) is dropped instead.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

fn take_scratch() -> Vec<u8> {
    SCRATCH.take()
}

fn put_scratch(mut buf: Vec<u8>) {
    if buf.capacity() <= MAX_COOKIE_BYTES {
        // The decrypted session must not linger in memory longer than the call.
        buf.fill(0);
        buf.clear();
        SCRATCH.set(buf);
    }
}

/// The process's nonce sequence: a random 96-bit start, drawn once, plus a counter.
static NONCE_START: OnceLock<u128> = OnceLock::new();
static NONCE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The next nonce: see the module docs.
fn next_nonce() -> Result<[u8; NONCE_LEN], StoreError> {
    let start = match NONCE_START.get() {
        Some(s) => *s,
        None => {
            let mut b = [0_u8; 16];
            getrandom::fill(&mut b).map_err(StoreError::Random)?;
            // Threads racing here each drew one; the first stored wins and all use it.
            let _ = NONCE_START.set(u128::from_be_bytes(b));
            NONCE_START.get().copied().unwrap_or(u128::from_be_bytes(b))
        }
    };
    let n = NONCE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let v = start.wrapping_add(u128::from(n)).to_be_bytes();
    let mut nonce = [0_u8; NONCE_LEN];
    nonce.copy_from_slice(v.get(16 - NONCE_LEN..).unwrap_or(&[0; NONCE_LEN]));
    Ok(nonce)
}
/// Why a token did not open. The store's `load` turns every one of these into `Ok(None)`;
/// call [`CookieStore::open`] to see the reason (for metrics or logs).
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum OpenError {
    /// Longer than any cookie this store can have issued.
    #[error("token is {len} bytes, longer than the {limit}-byte cookie limit")]
    TooLong {
        /// Token length.
        len: usize,
        /// [`MAX_COOKIE_BYTES`].
        limit: usize,
    },
    /// Not canonical unpadded base64url.
    #[error("token is not canonical base64url")]
    Malformed,
    /// Too short to hold a header, nonce and tag.
    #[error("token is {len} bytes decoded, shorter than the minimum {min}")]
    Truncated {
        /// Decoded length.
        len: usize,
        /// Minimum decoded length.
        min: usize,
    },
    /// A token format this version does not know (newer writer, or garbage).
    #[error("unknown token format {0:#04x}")]
    UnknownFormat(u8),
    /// Sealed with a key that is not (or no longer) in the ring.
    #[error("token was sealed with unknown key id {0}")]
    UnknownKey(u32),
    /// Authentication failed: the token was altered, or sealed for another cookie name.
    #[error("token failed authentication (tampered, or for another cookie name)")]
    Tampered,
    /// Authentic but undecodable: written by an incompatible version with the same key.
    #[error("sealed record does not decode")]
    Corrupt(#[source] codec::Error),
    /// Authentic and well-formed, but expired.
    #[error("session expired at {expires:?}")]
    Expired {
        /// The sealed expiry.
        expires: UnixTime,
    },
}

/// A [`SessionStore`] that keeps nothing: the session travels in the cookie, sealed with
/// AES-256-GCM. See the [module docs](self) for the format and for what a client-held
/// session cannot do.
pub struct CookieStore<C: Clock = SystemClock> {
    name: String,
    keys: KeyRing,
    clock: C,
}

impl CookieStore<SystemClock> {
    /// A store for the cookie called `name` on the system clock.
    #[must_use]
    pub fn new(name: impl Into<String>, keys: KeyRing) -> Self {
        Self::with_clock(name, keys, SystemClock)
    }
}

impl<C: Clock> CookieStore<C> {
    /// A store reading time from `clock`.
    #[must_use]
    pub fn with_clock(name: impl Into<String>, keys: KeyRing, clock: C) -> Self {
        Self {
            name: name.into(),
            keys,
            clock,
        }
    }

    /// The cookie name (bound into every token).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ring.
    #[must_use]
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Seals `rec` exactly as it is (version included) with the newest key and the next
    /// nonce.
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] if `name=token` would exceed [`MAX_COOKIE_BYTES`] (checked
    /// before any encryption); [`StoreError::Encode`]; [`StoreError::Random`] if the OS RNG
    /// fails at the process's first seal.
    pub fn seal(&self, rec: &Record) -> Result<Token, StoreError> {
        self.seal_with_nonce(rec, next_nonce()?)
    }

    /// [`seal`](Self::seal) with a caller-chosen nonce, for known-answer tests only: a nonce
    /// must never repeat under one key.
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &self,
        rec: &Record,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Token, StoreError> {
        let Some(entry) = self.keys.primary() else {
            return Err(StoreError::Backend("key ring is empty".into()));
        };
        let Some(gcm) = &entry.gcm else {
            return Err(StoreError::Backend(
                "the sealing key has no AES-256-GCM key (derivation failed)".into(),
            ));
        };
        let plain_len = codec::encoded_len(rec).map_err(StoreError::Encode)?;
        let sealed_len = HEADER_LEN + NONCE_LEN + plain_len + TAG_LEN;
        let cookie_len = self.name.len() + 1 + base64_len(sealed_len);
        if cookie_len > MAX_COOKIE_BYTES {
            return Err(StoreError::TooLarge {
                size: cookie_len,
                limit: MAX_COOKIE_BYTES,
            });
        }
        let [a, b, c, d] = entry.id.to_be_bytes();
        let header = [TOKEN_FORMAT_V2, a, b, c, d];
        // One buffer: header, nonce, the record encoded straight into it and encrypted in
        // place, then the tag.
        let mut raw = take_scratch();
        raw.reserve(sealed_len);
        raw.extend_from_slice(&header);
        raw.extend_from_slice(&nonce);
        // `encoded_len` above validated the record.
        codec::put_record(&mut raw, rec);
        let tag = match raw.get_mut(HEADER_LEN + NONCE_LEN..) {
            Some(plain) => self
                .with_aad(AAD_PREFIX_V2, &header, |aad| {
                    gcm.seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        plain,
                    )
                })
                .map_err(|_| StoreError::Backend("AEAD encryption failed".into()))?,
            None => return Err(StoreError::Backend("sealed buffer too short".into())),
        };
        raw.extend_from_slice(tag.as_ref());
        let token = URL_SAFE_NO_PAD.encode_to_string(&raw);
        put_scratch(raw);
        Ok(Token::new(token))
    }

    /// Opens a token at the store clock's "now".
    ///
    /// # Errors
    /// Every way a client-supplied token can be wrong, as an [`OpenError`]; never panics.
    pub fn open(&self, token: &[u8]) -> Result<Record, OpenError> {
        self.open_at(token, self.clock.now())
    }

    /// Opens a token as of `now`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_at(&self, token: &[u8], now: UnixTime) -> Result<Record, OpenError> {
        if token.len() > MAX_COOKIE_BYTES {
            return Err(OpenError::TooLong {
                len: token.len(),
                limit: MAX_COOKIE_BYTES,
            });
        }
        let mut raw = take_scratch();
        let out = URL_SAFE_NO_PAD
            .decode_append(token, &mut raw)
            .map_err(|_| OpenError::Malformed)
            .and_then(|()| self.open_raw(&mut raw, now));
        put_scratch(raw);
        out
    }

    /// [`open_at`](Self::open_at) after base64url: `raw` is the decoded token.
    fn open_raw(&self, raw: &mut [u8], now: UnixTime) -> Result<Record, OpenError> {
        let len = raw.len();
        let truncated = OpenError::Truncated {
            len,
            min: MIN_SEALED_LEN,
        };
        if len < MIN_SEALED_LEN {
            return Err(truncated);
        }
        let (header, rest) = raw
            .split_at_mut_checked(HEADER_LEN)
            .ok_or(OpenError::Malformed)?;
        let header = <[u8; HEADER_LEN]>::try_from(&*header).map_err(|_| OpenError::Malformed)?;
        let [format, a, b, c, d] = header;
        let key_id = u32::from_be_bytes([a, b, c, d]);
        let plain: &[u8] = match format {
            TOKEN_FORMAT_V2 => {
                let entry = self
                    .keys
                    .find(key_id)
                    .ok_or(OpenError::UnknownKey(key_id))?;
                let gcm = entry.gcm.as_ref().ok_or(OpenError::UnknownKey(key_id))?;
                let (nonce, ct_tag) = rest
                    .split_at_mut_checked(NONCE_LEN)
                    .ok_or(OpenError::Malformed)?;
                let nonce =
                    Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Malformed)?;
                self.with_aad(AAD_PREFIX_V2, &header, |aad| {
                    gcm.open_in_place(nonce, Aad::from(aad), ct_tag)
                })
                .map_err(|_| OpenError::Tampered)?
            }
            other => return Err(OpenError::UnknownFormat(other)),
        };
        let rec = codec::decode(plain).map_err(OpenError::Corrupt)?;
        if rec.is_expired(now) {
            return Err(OpenError::Expired {
                expires: rec.expires(),
            });
        }
        Ok(rec)
    }

    /// Calls `f` with the associated data (`prefix`, name, `0x00`, `header`), built on the
    /// stack for the usual short cookie names.
    fn with_aad<T>(
        &self,
        prefix: &[u8],
        header: &[u8; HEADER_LEN],
        f: impl FnOnce(&[u8]) -> T,
    ) -> T {
        const STACK: usize = 128;
        let name = self.name.as_bytes();
        let len = prefix.len() + name.len() + 1 + HEADER_LEN;
        let mut stack = [0_u8; STACK];
        let mut heap = Vec::new();
        let buf: &mut [u8] = match stack.get_mut(..len) {
            Some(b) => b,
            None => {
                heap.resize(len, 0);
                &mut heap
            }
        };
        let (p, rest) = buf.split_at_mut(prefix.len());
        p.copy_from_slice(prefix);
        let (n, rest) = rest.split_at_mut(name.len());
        n.copy_from_slice(name);
        let (zero, h) = rest.split_at_mut(1);
        zero.fill(0);
        h.copy_from_slice(header);
        f(buf)
    }

    /// Seals `rec` at version `version`; on success updates `rec`, on error leaves it as it was.
    fn write(&self, rec: &mut Record, version: u64) -> Result<Token, StoreError> {
        let old = rec.version();
        rec.set_version(version);
        let out = self.seal(rec);
        if out.is_err() {
            rec.set_version(old);
        }
        out
    }

    fn touch_sync(&self, token: &Token, expires: UnixTime) -> Result<Option<Token>, StoreError> {
        let Ok(mut rec) = self.open(token.as_str().as_bytes()) else {
            return Ok(None);
        };
        rec.set_expires(expires);
        self.seal(&rec).map(Some)
    }
}

/// Length of unpadded base64 for `n` bytes.
const fn base64_len(n: usize) -> usize {
    (n / 3) * 4
        + match n % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

impl<C: Clock> fmt::Debug for CookieStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieStore")
            .field("name", &self.name)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> SessionStore for CookieStore<C> {
    const SERVER_SIDE: bool = false;

    /// Seals `rec` at version 1. There is no shared state, so no collision to detect.
    fn create(&self, rec: &mut Record) -> impl Future<Output = Result<Token, StoreError>> + Send {
        ready(self.write(rec, 1))
    }

    fn save(&self, rec: &mut Record) -> impl Future<Output = Result<Token, StoreError>> + Send {
        ready(self.write(rec, rec.version().saturating_add(1)))
    }

    /// Compares with the only copy there is, the token the record was loaded from, so it never
    /// conflicts: see the module docs.
    fn compare_and_save(
        &self,
        rec: &mut Record,
    ) -> impl Future<Output = Result<Token, StoreError>> + Send {
        ready(self.write(rec, rec.version().saturating_add(1)))
    }

    fn load(
        &self,
        token: &Token,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        ready(Ok(self.open(token.as_str().as_bytes()).ok()))
    }

    /// Nothing to delete: clear the cookie. The token stays valid until it expires.
    fn delete(&self, _token: &Token) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(Ok(()))
    }

    fn touch(
        &self,
        token: &Token,
        expires: UnixTime,
    ) -> impl Future<Output = Result<Option<Token>, StoreError>> + Send {
        ready(self.touch_sync(token, expires))
    }
}
