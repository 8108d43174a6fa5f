//! Node keys: the X25519 private key file and the base64 text form of keys.
//!
//! - Key text is standard base64 with padding (RFC 4648 §4), as WireGuard:
//!   a 32-byte key is 44 characters ending in one `=`. The decoder is
//!   strict: bad characters, bad length and non-zero padding bits
//!   (RFC 4648 §3.5, "canonical encoding") are all rejected, so every key
//!   has exactly one text form.
//! - The key file holds one line, the base64 private key and `\n`. It is
//!   written once, atomically (temporary file in the same directory,
//!   mode 0600, then linked into place) and never overwritten.
//! - The public key is the X25519 base point multiplication of the clamped
//!   private key (RFC 7748 §5, §6.1), done by `curve25519-dalek`.
//!
//! Nothing here panics on file contents; [`generate_private`] panics only
//! when the operating system has no randomness to give (see its doc).

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use curve25519_dalek::MontgomeryPoint;

/// Largest key file read (a key line is 45 bytes; leave room for CRLF and
/// stray whitespace, refuse anything that is clearly not a key file).
pub const MAX_KEY_FILE_BYTES: usize = 256;

/// Length of the base64 text of a 32-byte key.
pub const KEY_TEXT_LEN: usize = 44;

// ---------------------------------------------------------------- base64

use base64ct::{Base64, Encoding};

/// Why a base64 text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// Length not a multiple of 4, or not the expected decoded length.
    Length,
    /// A character outside the alphabet, `=` where it cannot be, or
    /// non-zero padding bits (a non-canonical encoding).
    Encoding,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Base64Error::Length => "base64 of the wrong length",
            Base64Error::Encoding => {
                "invalid base64 (a character outside A-Z a-z 0-9 + /, misplaced '=', or non-zero padding bits)"
            }
        })
    }
}

impl std::error::Error for Base64Error {}

impl From<base64ct::Error> for Base64Error {
    fn from(e: base64ct::Error) -> Self {
        match e {
            base64ct::Error::InvalidLength => Base64Error::Length,
            base64ct::Error::InvalidEncoding => Base64Error::Encoding,
        }
    }
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64_encode(data: &[u8]) -> String {
    Base64::encode_string(data)
}

/// Strict decoder of standard padded base64 (RFC 4648 §4), in constant
/// time (`base64ct`): no whitespace, padding required, padding bits must
/// be zero (§3.5).
pub fn base64_decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    Ok(Base64::decode_vec(text)?)
}

/// Decodes the base64 text of a 32-byte key straight into its array, in
/// constant time, with no intermediate copy of the secret.
fn base64_decode_key(text: &str) -> Result<[u8; 32], Base64Error> {
    if text.len() != KEY_TEXT_LEN {
        return Err(Base64Error::Length);
    }
    let mut key = [0u8; 32];
    // The length is right: whatever base64ct refuses is the encoding (it
    // reports a stray last character as a length error).
    let n = Base64::decode(text, &mut key)
        .map_err(|_| Base64Error::Encoding)?
        .len();
    if n != key.len() {
        return Err(Base64Error::Length);
    }
    Ok(key)
}

// ---------------------------------------------------------------- keys

/// Base64 text of a public key (44 characters, WireGuard style).
pub fn encode_public(key: &[u8; 32]) -> String {
    base64_encode(key)
}

/// A public key from its 44-character base64 text; `None` for anything else.
pub fn decode_public(text: &str) -> Option<[u8; 32]> {
    decode_key(text)
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    if text.len() != KEY_TEXT_LEN {
        return None;
    }
    base64_decode_key(text).ok()
}

/// X25519 clamping (RFC 7748 §5, `decodeScalar25519`).
pub fn clamp(mut key: [u8; 32]) -> [u8; 32] {
    key[0] &= 248;
    key[31] &= 127;
    key[31] |= 64;
    key
}

/// The X25519 public key: `X25519(clamp(private), 9)` (RFC 7748 §6.1).
pub fn public_key_of(private: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*private).to_bytes()
}

/// A new clamped private key from the OS random source.
pub fn try_generate_private() -> Result<[u8; 32], getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(clamp(key))
}

/// A new clamped private key from the OS random source.
///
/// # Panics
/// When the kernel cannot give random bytes at all (no `getrandom(2)` and
/// no `/dev/urandom`); nothing can be keyed safely then. Use
/// [`try_generate_private`] to handle that case.
pub fn generate_private() -> [u8; 32] {
    match try_generate_private() {
        Ok(key) => key,
        Err(e) => panic!("no randomness from the operating system: {e}"),
    }
}

// ---------------------------------------------------------------- key files

/// A key file problem; each names the path.
#[derive(Debug)]
pub enum KeyError {
    /// The file (or its directory) could not be read.
    Read { path: PathBuf, error: io::Error },
    /// The file, its directory or the temporary file could not be written.
    Write { path: PathBuf, error: io::Error },
    /// The file does not hold one base64 32-byte key.
    Malformed { path: PathBuf, reason: String },
    /// `write_private` never replaces an existing key.
    Exists { path: PathBuf },
    /// Group or others may read the private key.
    TooOpen { path: PathBuf },
    /// No randomness for a new key.
    Random {
        path: PathBuf,
        error: getrandom::Error,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Read { path, error } => {
                write!(f, "cannot read key file {}: {error}", path.display())
            }
            KeyError::Write { path, error } => {
                write!(f, "cannot write key file {}: {error}", path.display())
            }
            KeyError::Malformed { path, reason } => write!(
                f,
                "key file {}: {reason} (expected one line of {KEY_TEXT_LEN} base64 characters encoding a 32-byte key)",
                path.display()
            ),
            KeyError::Exists { path } => write!(
                f,
                "key file {} already exists; refusing to overwrite it",
                path.display()
            ),
            KeyError::TooOpen { path } => write!(
                f,
                "key file {} is readable by group or others (chmod 600 it)",
                path.display()
            ),
            KeyError::Random { path, error } => write!(
                f,
                "cannot create key file {}: no randomness from the system: {error}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Read { error, .. } | KeyError::Write { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Read a private key file: one line of base64, surrounding whitespace
/// (the trailing newline, CRLF) ignored. The key is returned as stored
/// (X25519 clamps at use).
pub fn read_private(path: &Path) -> Result<[u8; 32], KeyError> {
    let read_err = |error| KeyError::Read {
        path: path.to_path_buf(),
        error,
    };
    let file = fs::File::open(path).map_err(read_err)?;
    let mut buf = Vec::with_capacity(64);
    // Read one byte more than allowed to tell "too large" from "exactly full".
    file.take(MAX_KEY_FILE_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    let malformed = |reason: String| KeyError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    if buf.len() > MAX_KEY_FILE_BYTES {
        return Err(malformed(format!("larger than {MAX_KEY_FILE_BYTES} bytes")));
    }
    let text = std::str::from_utf8(&buf).map_err(|_| malformed("not text".into()))?;
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if text.is_empty() {
        return Err(malformed("empty".into()));
    }
    if text.len() != KEY_TEXT_LEN {
        return Err(malformed(format!(
            "{} characters instead of {KEY_TEXT_LEN}",
            text.len()
        )));
    }
    base64_decode_key(text).map_err(|e| malformed(e.to_string()))
}

/// Whether group or others may access the key file (the caller should
/// warn). `false` when the file cannot be examined.
pub fn is_too_open(path: &Path) -> bool {
    match fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o077 != 0,
        Err(_) => false,
    }
}

/// Distinguishes temporary files of one process.
static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Write a new private key file, mode 0600, creating missing parent
/// directories with mode 0700. Atomic: the key is written and synced to a
/// temporary file in the same directory, then hard-linked to `path`, which
/// fails if `path` exists ([`KeyError::Exists`]); on filesystems without
/// hard links it falls back to an existence check and `rename`.
pub fn write_private(path: &Path, key: &[u8; 32]) -> Result<(), KeyError> {
    let write_err = |error| KeyError::Write {
        path: path.to_path_buf(),
        error,
    };
    if fs::symlink_metadata(path).is_ok() {
        return Err(KeyError::Exists {
            path: path.to_path_buf(),
        });
    }
    let file_name = path.file_name().ok_or_else(|| {
        write_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path does not name a file",
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(write_err)?;

    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);

    let result = write_temp(&tmp, key).and_then(|()| link_into_place(&tmp, path));
    // The temporary name is gone after a successful rename; otherwise drop it.
    let _ = fs::remove_file(&tmp);
    match result {
        Ok(()) => {
            // Make the new directory entry durable; failure here is not fatal
            // (the key is written), and some filesystems refuse it.
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(KeyError::Exists {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(write_err(e)),
    }
}

fn write_temp(tmp: &Path, key: &[u8; 32]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    // The umask could only have removed bits; make it exactly 0600.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    let mut line = base64_encode(key);
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

fn link_into_place(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            // No hard links here (e.g. vfat): best effort without the
            // atomic no-replace guarantee.
            if fs::symlink_metadata(path).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(tmp, path)
        }
    }
}

/// What `cloudy check-config` found at the key file path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFileState {
    /// A valid key file, mode 0600 or stricter: this public key.
    Valid([u8; 32]),
    /// No file yet: the daemon's first start creates one (a reload never does).
    Missing,
}

/// Check a key file as the daemon will read it, and stricter: a
/// directory, unreadable or malformed contents, or a mode that lets group
/// or others read it are errors. A missing file is not (first start).
pub fn check_key_file(path: &Path) -> Result<KeyFileState, KeyError> {
    let malformed = |reason: &str| KeyError::Malformed {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(KeyFileState::Missing),
        Err(error) => {
            return Err(KeyError::Read {
                path: path.to_path_buf(),
                error,
            })
        }
        Ok(meta) if meta.is_dir() => return Err(malformed("is a directory")),
        Ok(_) => {}
    }
    let key = read_private(path)?;
    if is_too_open(path) {
        return Err(KeyError::TooOpen {
            path: path.to_path_buf(),
        });
    }
    Ok(KeyFileState::Valid(public_key_of(&key)))
}

/// Read the key file, or create it with a new key when it does not exist.
/// Returns the key and whether it was created now.
pub fn load_or_create(path: &Path) -> Result<([u8; 32], bool), KeyError> {
    match read_private(path) {
        Ok(key) => return Ok((key, false)),
        Err(KeyError::Read { error, .. }) if error.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let key = try_generate_private().map_err(|error| KeyError::Random {
        path: path.to_path_buf(),
        error,
    })?;
    match write_private(path, &key) {
        Ok(()) => Ok((key, true)),
        // Another process created it in between: use theirs.
        Err(KeyError::Exists { .. }) => read_private(path).map(|k| (k, false)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    use crate::testutil::TempDir;

    #[test]
    fn base64_rfc4648_vectors() {
        // RFC 4648 §10.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn base64_all_bytes_round_trip() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let enc = base64_encode(&data[..len]);
            assert_eq!(base64_decode(&enc).unwrap(), &data[..len]);
        }
    }

    #[test]
    fn base64_rejects() {
        let malformed = [
            "Zm9", "Zm9vY", "Zm9v Yg=", "Zm9-", "Zm9_", "Z===", "====", "Zg==Zm9v", "Z=g=",
            "Zm9v\n",
        ];
        // Non-zero padding bits: not canonical.
        let non_canonical = ["Zh==", "Zm9="];
        for bad in malformed.into_iter().chain(non_canonical) {
            assert!(base64_decode(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(base64_decode("Zm8="), Ok(b"fo".to_vec()));
        // A key: exactly 32 bytes, no more, no less.
        let key = [7u8; 32];
        assert_eq!(base64_decode_key(&base64_encode(&key)), Ok(key));
        assert!(base64_decode_key(&base64_encode(&[7u8; 31])).is_err());
        assert!(base64_decode_key(&base64_encode(&[7u8; 33])).is_err());
    }

    // RFC 7748 §6.1.
    const ALICE_PRIVATE: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const ALICE_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    const BOB_PRIVATE: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
    const BOB_PUBLIC: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";

    #[test]
    fn x25519_rfc7748_vectors() {
        assert_eq!(public_key_of(&hex32(ALICE_PRIVATE)), hex32(ALICE_PUBLIC));
        assert_eq!(public_key_of(&hex32(BOB_PRIVATE)), hex32(BOB_PUBLIC));
        // Clamping first changes nothing.
        assert_eq!(
            public_key_of(&clamp(hex32(ALICE_PRIVATE))),
            hex32(ALICE_PUBLIC)
        );
    }

    #[test]
    fn public_key_text() {
        let public = hex32(ALICE_PUBLIC);
        let text = encode_public(&public);
        assert_eq!(text.len(), KEY_TEXT_LEN);
        assert_eq!(text, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
        assert_eq!(decode_public(&text), Some(public));
        assert_eq!(decode_public(&text[..43]), None);
        assert_eq!(decode_public(&format!("{text}=")), None);
        assert_eq!(decode_public("Zm9vYmFy"), None);
        // 44 characters but 33 bytes is impossible; 44 chars of 2-pad is 32 bytes only.
        assert_eq!(
            decode_public("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp="),
            None,
            "non-canonical last character"
        );
        assert_eq!(decode_public(""), None);
    }

    #[test]
    fn generated_keys_are_clamped_and_differ() {
        let a = generate_private();
        let b = generate_private();
        assert_ne!(a, b);
        for k in [a, b] {
            assert_eq!(k[0] & 7, 0);
            assert_eq!(k[31] & 0x80, 0);
            assert_eq!(k[31] & 0x40, 0x40);
        }
    }

    #[test]
    fn write_then_read() {
        let dir = TempDir::new("rw");
        let path = dir.path().join("sub/deeper/key");
        let key = hex32(ALICE_PRIVATE);
        write_private(&path, &key).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", base64_encode(&key)));
        assert_eq!(read_private(&path).unwrap(), key);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!is_too_open(&path));
        let dmode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode & 0o077, 0, "new directories are private: {dmode:o}");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("key")]);
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = TempDir::new("exists");
        let path = dir.path().join("key");
        fs::write(&path, "precious\n").unwrap();
        let err = write_private(&path, &[1; 32]).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious\n");
    }

    #[test]
    fn too_open_detected() {
        let dir = TempDir::new("open");
        let path = dir.path().join("key");
        write_private(&path, &[7; 32]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(is_too_open(&path));
        assert_eq!(read_private(&path).unwrap(), [7; 32]);
        assert!(!is_too_open(&dir.path().join("missing")));
    }

    #[test]
    fn check_key_file_states() {
        let dir = TempDir::new("check");
        let path = dir.path().join("key");
        assert_eq!(check_key_file(&path).unwrap(), KeyFileState::Missing);
        write_private(&path, &[7; 32]).unwrap();
        assert_eq!(
            check_key_file(&path).unwrap(),
            KeyFileState::Valid(public_key_of(&[7; 32]))
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_key_file(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        let e = check_key_file(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        // A 40-character key (a truncated copy) is malformed.
        let short = dir.path().join("short");
        fs::write(&short, "A".repeat(40)).unwrap();
        fs::set_permissions(&short, fs::Permissions::from_mode(0o600)).unwrap();
        let e = check_key_file(&short).unwrap_err().to_string();
        assert!(e.contains("40 characters"), "{e}");
    }

    #[test]
    fn read_accepts_crlf_and_no_newline() {
        let dir = TempDir::new("crlf");
        let key = [0x42u8; 32];
        for (i, suffix) in ["", "\n", "\r\n", "\n\n"].iter().enumerate() {
            let path = dir.path().join(format!("k{i}"));
            fs::write(&path, format!("{}{suffix}", base64_encode(&key))).unwrap();
            assert_eq!(read_private(&path).unwrap(), key, "suffix {suffix:?}");
        }
    }

    #[test]
    fn read_rejects_garbage() {
        let dir = TempDir::new("bad");
        let good = base64_encode(&[9u8; 32]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", b"".to_vec(), "empty"),
            ("short", b"AAAA\n".to_vec(), "4 characters instead of 44"),
            (
                "two",
                format!("{good}\n{good}\n").into_bytes(),
                "characters instead of 44",
            ),
            (
                "chars",
                format!("{}!\n", &good[..43]).into_bytes(),
                "invalid base64",
            ),
            ("binary", vec![0xff; 45], "not text"),
            ("big", vec![b'A'; 1000], "larger than 256 bytes"),
            (
                "inner",
                format!("{} {}\n", &good[..20], &good[21..]).into_bytes(),
                "invalid base64",
            ),
        ];
        for (name, content, expect) in cases {
            let path = dir.path().join(name);
            fs::write(&path, content).unwrap();
            let err = read_private(&path).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, KeyError::Malformed { .. }), "{name}: {msg}");
            assert!(msg.contains(expect), "{name}: {msg}");
            assert!(msg.contains(&path.display().to_string()), "{name}: {msg}");
        }
        let err = read_private(&dir.path().join("missing")).unwrap_err();
        assert!(
            matches!(&err, KeyError::Read { error, .. } if error.kind() == io::ErrorKind::NotFound)
        );
        assert!(
            err.to_string().starts_with("cannot read key file "),
            "{err}"
        );
    }

    #[test]
    fn load_or_create_creates_once() {
        let dir = TempDir::new("loc");
        let path = dir.path().join("etc/cloudy/key");
        let (k1, created1) = load_or_create(&path).unwrap();
        assert!(created1);
        let (k2, created2) = load_or_create(&path).unwrap();
        assert!(!created2);
        assert_eq!(k1, k2);
        assert_eq!(k1, clamp(k1));
        // A broken key file is reported, never replaced.
        fs::write(&path, "junk\n").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(KeyError::Malformed { .. })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "junk\n");
    }

    #[test]
    fn write_into_unwritable_place_fails_cleanly() {
        let dir = TempDir::new("nowrite");
        // A regular file where a directory is needed.
        let blocker = dir.path().join("file");
        fs::write(&blocker, "x").unwrap();
        let err = write_private(&blocker.join("key"), &[1; 32]).unwrap_err();
        assert!(matches!(err, KeyError::Write { .. }), "{err}");
        assert!(
            err.to_string().starts_with("cannot write key file "),
            "{err}"
        );
    }
}
