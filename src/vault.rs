//! Secrets sealed at rest: carrier credentials (and later SMS provider and webhook secrets) are
//! kept in the database encrypted under a master key, never in the clear.
//!
//! # Sealed values
//!
//! [`Vault::seal`] encrypts with XChaCha20-Poly1305 (an AEAD) under a fresh random 24-byte nonce
//! and writes one line of text that fits a `TEXT` column:
//!
//! ```text
//! wmk1.<key id>.<base64url, no padding, of nonce (24 bytes) || ciphertext || tag (16 bytes)>
//! ```
//!
//! `wmk1` names the format. The key id says which master key sealed the value, so a vault with
//! several keys knows which one opens it. Every seal takes a *context* — the record the value
//! belongs to, such as `carrier_account:<uuid>` — bound into the encryption as associated data
//! together with the `wmk1.<key id>.` header: a sealed value copied into another record, or with
//! its header edited, does not open. Sealing the same text twice gives different values.
//!
//! # The key ring
//!
//! A [`Vault`] holds the *current* master key, which seals, and any number of older ones, which
//! still open what they sealed. A master key is written `<id>:<32 bytes in base64url without
//! padding>` (see [`MasterKey`]); ids are 1–32 characters of `A–Z a–z 0–9 _ -`.
//!
//! The keys come, in this order of precedence (see [`load`]), from the `WAYMARK_MASTER_KEY`
//! environment variable or the configuration's `master_key` (a comma-separated list of keys, the
//! first current), or else from a key file (one key a line, the first current, `#` comments). When
//! neither is configured and the key file does not exist, the first start generates a key into
//! it, readable by its owner only, and [`KeySource::File`] says it was created so the caller can
//! tell the operator to back it up.
//!
//! # Rotation
//!
//! To retire a key: put a new key first ([`rotate_key_file`] does it for a key file; for the
//! environment or configuration the operator prepends [`generate_key_text`]'s output to the
//! list), reload the vault, and reseal every stored secret that [`Vault::needs_reseal`] (open it,
//! seal it again). The old key keeps opening until it is removed, which is safe only once nothing
//! is sealed under it any more.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// What every sealed value starts with: the format's name and version, and a dot.
const PREFIX: &str = "wmk1.";
/// The length of a master key, in bytes.
const KEY_LEN: usize = 32;
/// The length of an XChaCha20 nonce, in bytes.
const NONCE_LEN: usize = 24;
/// The length of a Poly1305 tag, in bytes.
const TAG_LEN: usize = 16;
/// The longest key id.
const MAX_ID_LEN: usize = 32;
/// The environment variable that gives the master keys.
pub const MASTER_KEY_ENV: &str = "WAYMARK_MASTER_KEY";

/// What can go wrong sealing, opening, and finding the master keys. No message ever contains a
/// key, a sealed value's plaintext, or the text that was given as a key.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The text is not a sealed value at all (a secret stored in the clear, say).
    #[error("not a sealed value: it does not start with `{PREFIX}`")]
    NotSealed,
    /// The value was sealed under a key this vault does not hold.
    #[error(
        "sealed under key `{key_id}`, which this Waymark does not have; add it to the key file or {MASTER_KEY_ENV}"
    )]
    UnknownKey {
        /// The id written in the sealed value.
        key_id: String,
    },
    /// The text starts like a sealed value but is not one.
    #[error("malformed sealed value: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key did not open the value: it was sealed for another context (another record), under
    /// a different key that carries the same id, or it was altered.
    #[error(
        "the sealed value does not open under key `{key_id}`: it belongs to another record, was sealed under a different key with this id, or was altered"
    )]
    Authentication {
        /// The id of the key that was tried.
        key_id: String,
    },
    /// The value opened but is not UTF-8 text, where text was expected.
    #[error("the sealed value is not text")]
    NotText,
    /// A master key given as text is unusable.
    #[error("{location}: {error}")]
    InvalidKey {
        /// Where the key was given: `WAYMARK_MASTER_KEY, key 2`, `/etc/waymark/master.key, line 4`.
        location: String,
        /// What is wrong with it.
        error: KeyParseError,
    },
    /// Two master keys share an id.
    #[error("two master keys have the id `{key_id}`; every key needs its own id")]
    DuplicateKeyId {
        /// The id given twice.
        key_id: String,
    },
    /// A list of keys or a key file holds no key.
    #[error("{location} holds no master key")]
    NoKeys {
        /// The environment variable, configuration setting or file.
        location: String,
    },
    /// The key file can be read by users other than its owner.
    #[error(
        "{}: other users can read or write the master key file (mode {mode:04o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyFileReadable {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// There is no key file to rotate.
    #[error("{}: there is no master key file to rotate", path.display())]
    KeyFileMissing {
        /// Where the key file was looked for.
        path: PathBuf,
    },
    /// Reading or writing the key file failed.
    #[error("{}: could not {action}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done: `read the master key file`, ...
        action: &'static str,
        /// Why it failed.
        source: io::Error,
    },
}

/// Why a text is not a master key. The messages never repeat the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    /// No `:` between the id and the key.
    #[error("a master key is written `<id>:<key>`, but there is no `:`")]
    NoSeparator,
    /// The id is empty, too long, or has characters other than `A–Z a–z 0–9 _ -`.
    #[error(
        "the key id (before the `:`) must be 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, `_` and `-`"
    )]
    BadId,
    /// The key is not base64url.
    #[error(
        "the key (after the `:`) is not base64url without padding (A-Z, a-z, 0-9, `-`, `_`, no `=`)"
    )]
    BadBase64,
    /// The key decodes to the wrong number of bytes.
    #[error(
        "the key (after the `:`) is {bytes} bytes; a master key is {KEY_LEN} bytes (43 base64url characters)"
    )]
    WrongLength {
        /// How many bytes it decodes to.
        bytes: usize,
    },
}

/// One master key: an id, written into everything it seals, and 32 secret bytes.
///
/// Its text form is `<id>:<base64url without padding of the 32 bytes>`, e.g.
/// `k20261202a1b2c3:3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`. `Debug` shows the id only.
pub struct MasterKey {
    id: String,
    key: SecretBox<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// A master key from its id and bytes; the id must be 1–32 characters of `A–Z a–z 0–9 _ -`.
    pub fn new(id: impl Into<String>, key: [u8; KEY_LEN]) -> Result<MasterKey, KeyParseError> {
        let id = id.into();
        if !valid_key_id(&id) {
            return Err(KeyParseError::BadId);
        }
        let key = Zeroizing::new(key);
        Ok(MasterKey {
            id,
            key: SecretBox::init_with_mut(|bytes: &mut [u8; KEY_LEN]| bytes.copy_from_slice(&*key)),
        })
    }

    /// A new random key, with an id made of today's date (UTC) and a random suffix:
    /// `k20261202a1b2c3`.
    pub fn generate() -> MasterKey {
        let mut suffix = [0u8; 3];
        rand::rng().fill_bytes(&mut suffix);
        let id = format!(
            "k{}{}",
            jiff::Timestamp::now().strftime("%Y%m%d"),
            hex::encode(suffix)
        );
        MasterKey {
            id,
            key: SecretBox::init_with_mut(|bytes: &mut [u8; KEY_LEN]| {
                rand::rng().fill_bytes(bytes)
            }),
        }
    }

    /// Reads a key in its text form `<id>:<key>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<MasterKey, KeyParseError> {
        let (id, encoded) = text
            .trim()
            .split_once(':')
            .ok_or(KeyParseError::NoSeparator)?;
        if !valid_key_id(id) {
            return Err(KeyParseError::BadId);
        }
        // Decoded into memory that is wiped when dropped; the base64 error itself is dropped
        // unread, since it quotes the offending character of the key.
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| KeyParseError::BadBase64)?,
        );
        if decoded.len() != KEY_LEN {
            return Err(KeyParseError::WrongLength {
                bytes: decoded.len(),
            });
        }
        Ok(MasterKey {
            id: id.to_owned(),
            key: SecretBox::init_with_mut(|bytes: &mut [u8; KEY_LEN]| {
                bytes.copy_from_slice(&decoded)
            }),
        })
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key in its text form `<id>:<key>`, for a key file or for the operator to copy.
    pub fn to_text(&self) -> Secret {
        let encoded = Zeroizing::new(URL_SAFE_NO_PAD.encode(self.key.expose_secret()));
        Secret::from(format!("{}:{}", self.id, encoded.as_str()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // The cipher keeps a copy of the key, which it wipes when dropped.
        XChaCha20Poly1305::new(self.key.expose_secret().into())
    }
}

impl std::str::FromStr for MasterKey {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MasterKey::parse(text)
    }
}

impl Clone for MasterKey {
    fn clone(&self) -> Self {
        MasterKey {
            id: self.id.clone(),
            key: SecretBox::init_with_mut(|bytes: &mut [u8; KEY_LEN]| {
                bytes.copy_from_slice(self.key.expose_secret())
            }),
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A new master key in its text form `<id>:<key>`, for `waymark keys generate` to print.
pub fn generate_key_text() -> String {
    MasterKey::generate().to_text().expose().to_owned()
}

/// Whether `id` can name a master key: 1–32 characters of `A–Z a–z 0–9 _ -`.
fn valid_key_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The master keys: the current one seals, all of them open. `Debug` shows their ids only.
#[derive(Clone)]
pub struct Vault {
    /// The current key first, then the older ones, ids all different.
    keys: Vec<MasterKey>,
}

impl Vault {
    /// A vault that seals under `current` and also opens what `older` keys sealed. Refuses two
    /// keys with the same id.
    pub fn new(current: MasterKey, older: Vec<MasterKey>) -> Result<Vault, VaultError> {
        let mut keys = Vec::with_capacity(older.len() + 1);
        keys.push(current);
        keys.extend(older);
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|earlier| earlier.id == key.id) {
                return Err(VaultError::DuplicateKeyId {
                    key_id: key.id.clone(),
                });
            }
        }
        Ok(Vault { keys })
    }

    /// A vault with one new random key, kept nowhere: for tests and throwaway stores, since
    /// what it seals cannot be opened once it is dropped.
    pub fn generate() -> Vault {
        Vault {
            keys: vec![MasterKey::generate()],
        }
    }

    /// A vault from a list of keys, the first current; `location` names the list for errors.
    fn from_list(keys: Vec<MasterKey>, location: &str) -> Result<Vault, VaultError> {
        let mut keys = keys.into_iter();
        let current = keys.next().ok_or_else(|| VaultError::NoKeys {
            location: location.to_owned(),
        })?;
        Vault::new(current, keys.collect())
    }

    /// The id of the key that seals.
    pub fn current_key_id(&self) -> &str {
        &self.current().id
    }

    /// The ids of every key, the current one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.id.as_str())
    }

    fn current(&self) -> &MasterKey {
        // `Vault::new` always puts the current key first, so the ring is never empty.
        &self.keys[0]
    }

    fn key(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|key| key.id == id)
    }

    /// Seals `plaintext` under the current key for `context` (the record it belongs to, such as
    /// `carrier_account:<uuid>`), which must be given again to open it.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let key = self.current();
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(&key.id, context);
        let ciphertext = key
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            // XChaCha20-Poly1305 refuses only messages longer than 256 GiB, which no secret is.
            .expect("a secret is shorter than XChaCha20-Poly1305's 256 GiB limit");
        let mut body = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ciphertext);
        format!("{PREFIX}{}.{}", key.id, URL_SAFE_NO_PAD.encode(&body))
    }

    /// Opens a value [`seal`](Vault::seal)ed for `context` under any key of the vault.
    pub fn open(&self, context: &str, sealed: &str) -> Result<SecretBox<Vec<u8>>, VaultError> {
        let (key_id, body) = split_sealed(sealed)?;
        let key = self.key(key_id).ok_or_else(|| VaultError::UnknownKey {
            key_id: key_id.to_owned(),
        })?;
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let aad = associated_data(key_id, context);
        let plaintext = key
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Authentication {
                key_id: key_id.to_owned(),
            })?;
        Ok(SecretBox::new(Box::new(plaintext)))
    }

    /// Opens a sealed text, such as a password or an API key.
    pub fn open_string(&self, context: &str, sealed: &str) -> Result<Secret, VaultError> {
        let plaintext = self.open(context, sealed)?;
        let text =
            std::str::from_utf8(plaintext.expose_secret()).map_err(|_| VaultError::NotText)?;
        Ok(Secret::from(text))
    }

    /// Whether `sealed` should be sealed again: it was sealed under a key other than the current
    /// one, or is not a sealed value at all (a secret stored in the clear).
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        sealed_key_id(sealed) != Some(self.current_key_id())
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("current", &self.current().id)
            .field(
                "older",
                &self.keys[1..].iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What the AEAD authenticates besides the ciphertext: the header (format and key id) and the
/// context. The key id cannot contain a `.`, so the two cannot run into each other.
fn associated_data(key_id: &str, context: &str) -> Vec<u8> {
    format!("{PREFIX}{key_id}.{context}").into_bytes()
}

/// A sealed value's key id and decoded body (nonce, ciphertext and tag).
fn split_sealed(text: &str) -> Result<(&str, Vec<u8>), VaultError> {
    let rest = text.strip_prefix(PREFIX).ok_or(VaultError::NotSealed)?;
    let (key_id, encoded) = rest.split_once('.').ok_or(VaultError::Malformed {
        reason: "no `.` after the key id",
    })?;
    if !valid_key_id(key_id) {
        return Err(VaultError::Malformed {
            reason: "the key id is not valid",
        });
    }
    let body = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| VaultError::Malformed {
            reason: "the sealed data is not base64url",
        })?;
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::Malformed {
            reason: "the sealed data is too short",
        });
    }
    Ok((key_id, body))
}

/// Whether `text` has the form of a sealed value (which says nothing about whether it opens).
pub fn is_sealed(text: &str) -> bool {
    split_sealed(text).is_ok()
}

/// The id of the key `text` was sealed under, or `None` when it is no sealed value.
pub fn sealed_key_id(text: &str) -> Option<&str> {
    let (key_id, _) = text.strip_prefix(PREFIX)?.split_once('.')?;
    valid_key_id(key_id).then_some(key_id)
}

/// Where the master keys are configured (the `WAYMARK_MASTER_KEY` environment variable is read by
/// the caller and handed to [`load`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultConfig {
    /// The key file, when not the default one. Used only when no key is given directly.
    pub key_file: Option<PathBuf>,
    /// The keys themselves, comma-separated, the current one first. `WAYMARK_MASTER_KEY`
    /// overrides it. Secrets are read, never written: see [`crate::secret`].
    #[serde(skip_serializing)]
    pub master_key: Option<Secret>,
}

/// Where [`load`] found the master keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The `WAYMARK_MASTER_KEY` environment variable.
    Environment,
    /// The configuration's `master_key`.
    Config,
    /// A key file.
    File {
        /// The key file.
        path: PathBuf,
        /// Whether this start generated the key and created the file: the operator should be
        /// told where it is and to back it up, since without it the sealed secrets are lost.
        created: bool,
    },
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Environment => write!(f, "{MASTER_KEY_ENV}"),
            KeySource::Config => f.write_str("the configuration's master_key"),
            KeySource::File { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// Finds the master keys and builds the vault:
///
/// 1. `env_master_key` (the caller passes `WAYMARK_MASTER_KEY`'s value) or else
///    `config.master_key`: a comma-separated list of keys `<id>:<key>`, the first current. An
///    empty or blank value counts as not set.
/// 2. Otherwise the key file, `config.key_file` or `default_key_file`: one key a line, the first
///    current; blank lines and lines starting with `#` are ignored. It must not be readable by
///    group or others. If it does not exist, a new key is generated into it (created readable
///    and writable by its owner only, its folder created if missing), and the source says
///    `created: true`.
pub fn load(
    config: &VaultConfig,
    env_master_key: Option<&str>,
    default_key_file: &Path,
) -> Result<(Vault, KeySource), VaultError> {
    if let Some(list) = env_master_key.filter(|list| !list.trim().is_empty()) {
        let vault = Vault::from_list(parse_key_list(list, MASTER_KEY_ENV)?, MASTER_KEY_ENV)?;
        return Ok((vault, KeySource::Environment));
    }
    if let Some(list) = config
        .master_key
        .as_ref()
        .map(Secret::expose)
        .filter(|list| !list.trim().is_empty())
    {
        let location = "master_key in the configuration";
        let vault = Vault::from_list(parse_key_list(list, location)?, location)?;
        return Ok((vault, KeySource::Config));
    }
    let path = config.key_file.as_deref().unwrap_or(default_key_file);
    let (keys, created) = load_or_create_key_file(path)?;
    let vault = Vault::from_list(keys, &path.display().to_string())?;
    Ok((
        vault,
        KeySource::File {
            path: path.to_owned(),
            created,
        },
    ))
}

/// A comma-separated list of keys; empty items (a trailing comma) are skipped.
fn parse_key_list(list: &str, location: &str) -> Result<Vec<MasterKey>, VaultError> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .enumerate()
        .map(|(i, item)| {
            MasterKey::parse(item).map_err(|error| VaultError::InvalidKey {
                location: format!("{location}, key {}", i + 1),
                error,
            })
        })
        .collect()
}

/// The header of a generated key file.
const KEY_FILE_HEADER: &str = "\
# Waymark master keys, one `<id>:<key>` a line: the first seals, every one opens.
# Keep this file secret and keep a backup of it: without it the sealed secrets (carrier
# credentials, ...) cannot be read. `waymark keys rotate` puts a new key first; remove an
# old key only once every secret has been sealed again under a newer one.
";

/// The keys of the key file at `path`, generating the key and the file when it does not exist.
/// Returns whether it was created.
fn load_or_create_key_file(path: &Path) -> Result<(Vec<MasterKey>, bool), VaultError> {
    match read_key_file(path) {
        Ok(keys) => return Ok((keys, false)),
        Err(VaultError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let key = MasterKey::generate();
    if create_key_file(path, &key)? {
        return Ok((vec![key], true));
    }
    // Another Waymark started at the same moment and created the file first: use its key. The
    // file appears whole, except where it had to be written in place (see `create_key_file`),
    // so a file without a (whole) key is read again a few times.
    let mut tries = 0;
    loop {
        match read_key_file(path) {
            Err(VaultError::NoKeys { .. } | VaultError::InvalidKey { .. }) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            result => return result.map(|keys| (keys, false)),
        }
    }
}

/// Creates the key file with `key`, unless there is one already: returns whether it did.
///
/// The file is written and flushed under a temporary name, then linked to `path`, which fails
/// if `path` exists: a key file is never overwritten, and never seen half-written (by another
/// Waymark starting at the same moment, or after a crash). Where the file system has no hard
/// links, the file is created in place instead (still never overwriting one).
fn create_key_file(path: &Path, key: &MasterKey) -> Result<bool, VaultError> {
    if let Some(dir) = parent_dir(path).filter(|dir| !dir.exists()) {
        create_private_dir(dir).map_err(|source| VaultError::Io {
            path: dir.to_owned(),
            action: "create the folder of the master key file",
            source,
        })?;
    }
    let contents = Zeroizing::new(format!("{KEY_FILE_HEADER}{}\n", key.to_text().expose()));
    let temp = write_private_temp(path, contents.as_bytes())?;
    let linked = fs::hard_link(&temp, path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(_) => {
            let created = private_file_options().create_new(true).open(path);
            let mut file = match created {
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                result => result.map_err(|source| VaultError::Io {
                    path: path.to_owned(),
                    action: "create the master key file",
                    source,
                })?,
            };
            file.write_all(contents.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|source| VaultError::Io {
                    path: path.to_owned(),
                    action: "write the master key file",
                    source,
                })?;
        }
    }
    sync_dir(path);
    Ok(true)
}

/// The keys of an existing key file, after checking that only its owner can read it.
fn read_key_file(path: &Path) -> Result<Vec<MasterKey>, VaultError> {
    parse_key_file(&read_private_file(path)?, path)
}

/// The keys in a key file's text: one a line, blank lines and `#` comments skipped.
fn parse_key_file(text: &str, path: &Path) -> Result<Vec<MasterKey>, VaultError> {
    let location = path.display().to_string();
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = MasterKey::parse(line).map_err(|error| VaultError::InvalidKey {
            location: format!("{location}, line {}", number + 1),
            error,
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(VaultError::NoKeys { location });
    }
    Ok(keys)
}

/// The text of a key file, refused when group or others may read or write it.
fn read_private_file(path: &Path) -> Result<Zeroizing<String>, VaultError> {
    let io_error = |source| VaultError::Io {
        path: path.to_owned(),
        action: "read the master key file",
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    // Checked on the open file, so it is the file that is read.
    let metadata = file.metadata().map_err(io_error)?;
    if let Some(mode) = loose_mode(&metadata) {
        return Err(VaultError::KeyFileReadable {
            path: path.to_owned(),
            mode,
        });
    }
    // Room for the whole file up front, so no copy of it is left behind by a reallocation.
    let capacity = usize::try_from(metadata.len())
        .unwrap_or(0)
        .saturating_add(1);
    let mut text = Zeroizing::new(String::with_capacity(capacity));
    file.read_to_string(&mut text).map_err(io_error)?;
    Ok(text)
}

/// Puts a new key first in the key file at `path`, keeping every older key (and the comments)
/// after it, and returns the new key's id. The file is replaced atomically by one written beside
/// it, readable by its owner only.
///
/// The caller then reloads the vault and reseals every stored secret under the new key. A
/// Waymark that is already running keeps its old key ring until it is restarted, so it cannot
/// open what is sealed under the new key before then.
pub fn rotate_key_file(path: &Path) -> Result<String, VaultError> {
    let text = match read_private_file(path) {
        Err(VaultError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Err(VaultError::KeyFileMissing {
                path: path.to_owned(),
            });
        }
        result => result?,
    };
    let existing = parse_key_file(&text, path)?;
    // A key file that is a symbolic link (into a secrets mount, say) is replaced where it points.
    let target = fs::canonicalize(path).map_err(|source| VaultError::Io {
        path: path.to_owned(),
        action: "find the master key file",
        source,
    })?;
    // Two keys generated on the same day could, rarely, draw the same suffix.
    let key = loop {
        let key = MasterKey::generate();
        if existing.iter().all(|old| old.id != key.id) {
            break key;
        }
    };
    // The new key goes just before the first key line, under the file's leading comments.
    let mut contents = Zeroizing::new(String::with_capacity(text.len() + 128));
    let mut placed = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if !placed && !trimmed.is_empty() && !trimmed.starts_with('#') {
            contents.push_str(key.to_text().expose());
            contents.push('\n');
            placed = true;
        }
        contents.push_str(line);
        contents.push('\n');
    }
    replace_file(&target, contents.as_bytes())?;
    Ok(key.id)
}

/// Replaces the file at `path` with `contents` atomically: a private file is written and
/// flushed beside it, then renamed over it.
fn replace_file(path: &Path, contents: &[u8]) -> Result<(), VaultError> {
    let temp = write_private_temp(path, contents)?;
    if let Err(source) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(VaultError::Io {
            path: path.to_owned(),
            action: "replace the master key file",
            source,
        });
    }
    sync_dir(path);
    Ok(())
}

/// Writes `contents` to a new file beside `path` that only its owner can read, flushed to disk,
/// and returns its name; on failure, nothing is left behind.
fn write_private_temp(path: &Path, contents: &[u8]) -> Result<PathBuf, VaultError> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "master.key".to_owned());
    let mut suffix = [0u8; 6];
    rand::rng().fill_bytes(&mut suffix);
    let temp = path.with_file_name(format!(".{name}.{}.tmp", hex::encode(suffix)));
    let written = private_file_options()
        .create_new(true)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(contents)?;
            file.sync_all()
        });
    match written {
        Ok(()) => Ok(temp),
        Err(source) => {
            let _ = fs::remove_file(&temp);
            Err(VaultError::Io {
                path: temp,
                action: "write a new master key file",
                source,
            })
        }
    }
}

/// The folder a file is in, unless that is the current one.
fn parent_dir(path: &Path) -> Option<&Path> {
    path.parent().filter(|dir| !dir.as_os_str().is_empty())
}

/// Flushes the folder of `path`, so a created or renamed file survives a crash. Best effort:
/// the file itself is already flushed, and not every system can flush a folder.
fn sync_dir(path: &Path) {
    let dir = parent_dir(path).unwrap_or(Path::new("."));
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// Options to create a file only its owner can read and write.
fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates a folder (and its parents) only its owner can enter.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The permission bits of a file that group or others may access, or `None` if only its owner
/// may.
#[cfg(unix)]
fn loose_mode(metadata: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Elsewhere, permissions are not Unix modes and are left to the operator.
#[cfg(not(unix))]
fn loose_mode(_metadata: &fs::Metadata) -> Option<u32> {
    None
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
