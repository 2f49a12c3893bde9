//! The ssh keys of a pairing: this side's login key for the peer (a fresh
//! ed25519 key per pairing, or an existing one given with `--key`) and the
//! sshd host keys this side advertises for the peer to pin.
//!
//! Generated private keys live only in memory until setup writes them
//! (mode 0600, never overwriting); ssh-key zeroizes them on drop.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rand_core::OsRng;
use ssh_key::{Algorithm, HashAlg, PrivateKey, PublicKey};

/// Where sshd keeps its host keys.
pub const HOST_KEY_DIR: &str = "/etc/ssh";

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is a public key: give --key the private key file (the one `ssh -i` takes); its .pub file is read beside it")]
    PublicGiven { path: PathBuf },
    #[error("{path} is not an OpenSSH private key: give --key a key made by ssh-keygen, or leave --key out to use a dedicated key")]
    NotAKey {
        path: PathBuf,
        #[source]
        source: ssh_key::Error,
    },
    #[error("{public} does not match the private key {path}: regenerate it with `ssh-keygen -y -f {path}`")]
    Mismatch { path: PathBuf, public: PathBuf },
    #[error("{path} is not an OpenSSH public key")]
    BadHostKey {
        path: PathBuf,
        #[source]
        source: ssh_key::Error,
    },
    #[error("no sshd host keys found ({HOST_KEY_DIR}/ssh_host_*_key.pub): is openssh-server installed on this machine? Or name them with --host-key")]
    NoHostKeys,
    #[error("cannot generate an ssh key")]
    Generate(#[source] ssh_key::Error),
}

/// The key this side logs in to the peer with.
#[derive(Debug)]
pub enum LoginKey {
    /// A dedicated key made for this pairing, written at setup.
    Generated(Box<PrivateKey>),
    /// A key pair the user already has, only referenced.
    Existing { path: PathBuf, public: PublicKey },
}

impl LoginKey {
    /// A fresh ed25519 key.
    pub fn generate(comment: &str) -> Result<LoginKey, KeyError> {
        let mut key =
            PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(KeyError::Generate)?;
        key.set_comment(comment);
        Ok(LoginKey::Generated(Box::new(key)))
    }

    /// The key pair at `path` (`--key`): any type ssh-key parses, encrypted
    /// or not, since only its public half is needed here.
    pub fn load(path: &Path) -> Result<LoginKey, KeyError> {
        let path = fs::canonicalize(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = fs::read_to_string(&path).map_err(|source| KeyError::Read {
            path: path.clone(),
            source,
        })?;
        if PublicKey::from_openssh(text.trim()).is_ok() {
            return Err(KeyError::PublicGiven { path });
        }
        let pub_path = PathBuf::from(format!("{}.pub", path.display()));
        let from_private = PrivateKey::from_openssh(&text).map(|k| k.public_key().clone());
        let from_pub = fs::read_to_string(&pub_path)
            .ok()
            .and_then(|t| PublicKey::from_openssh(t.trim()).ok());
        let public = match (from_private, from_pub) {
            (Ok(private), Some(public)) if private.key_data() != public.key_data() => {
                return Err(KeyError::Mismatch {
                    path,
                    public: pub_path,
                });
            }
            (Ok(private), _) => private,
            // Older PEM private keys do not parse, but their .pub does.
            (Err(_), Some(public)) if text.contains("PRIVATE KEY-----") => public,
            (Err(source), _) => return Err(KeyError::NotAKey { path, source }),
        };
        Ok(LoginKey::Existing { path, public })
    }

    /// The public half, as sent to the peer.
    pub fn public(&self) -> PublicKey {
        match self {
            LoginKey::Generated(k) => k.public_key().clone(),
            LoginKey::Existing { public, .. } => public.clone(),
        }
    }
}

/// The advertised sshd host keys: the named files, or every
/// `/etc/ssh/ssh_host_*_key.pub`.
pub fn host_keys(named: &[PathBuf]) -> Result<Vec<PublicKey>, KeyError> {
    let files: Vec<PathBuf> = if named.is_empty() {
        let mut found: Vec<PathBuf> = fs::read_dir(HOST_KEY_DIR)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("ssh_host_") && n.ends_with("_key.pub"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    } else {
        named.to_vec()
    };
    let mut keys = Vec::new();
    for path in files {
        let text = fs::read_to_string(&path).map_err(|source| KeyError::Read {
            path: path.clone(),
            source,
        })?;
        let key = PublicKey::from_openssh(text.trim())
            .map_err(|source| KeyError::BadHostKey { path, source })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(KeyError::NoHostKeys);
    }
    Ok(keys)
}

/// A key's fingerprint as ssh-keygen prints it (`SHA256:...`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// A public key as one OpenSSH line, without its comment (the peer's
/// comments are not ours to store).
pub fn openssh_line(key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("git-pair-keys-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn generated_keys_are_ed25519_and_their_debug_hides_the_secret() {
        let LoginKey::Generated(k) = LoginKey::generate("git-pair test").unwrap() else {
            panic!()
        };
        assert_eq!(k.algorithm(), Algorithm::Ed25519);
        let pem = k.to_openssh(ssh_key::LineEnding::LF).unwrap();
        let body: String = pem.lines().nth(1).unwrap().chars().take(40).collect();
        let dbg = format!("{:?}", LoginKey::Generated(k));
        assert!(!dbg.contains(&body), "Debug shows private key material");
    }

    #[test]
    fn load_accepts_a_private_key_and_refuses_other_files() {
        let dir = tmp("load");
        let LoginKey::Generated(k) = LoginKey::generate("me@host").unwrap() else {
            panic!()
        };
        let private = dir.join("id_test");
        fs::write(
            &private,
            k.to_openssh(ssh_key::LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        fs::write(
            dir.join("id_test.pub"),
            k.public_key().to_openssh().unwrap(),
        )
        .unwrap();
        let loaded = LoginKey::load(&private).unwrap();
        assert_eq!(loaded.public().key_data(), k.public_key().key_data());

        assert!(matches!(
            LoginKey::load(&dir.join("id_test.pub")),
            Err(KeyError::PublicGiven { .. })
        ));
        let junk = dir.join("junk");
        fs::write(&junk, "hello\n").unwrap();
        assert!(matches!(
            LoginKey::load(&junk),
            Err(KeyError::NotAKey { .. })
        ));
        assert!(matches!(
            LoginKey::load(&dir.join("missing")),
            Err(KeyError::Read { .. })
        ));

        let LoginKey::Generated(other) = LoginKey::generate("x").unwrap() else {
            panic!()
        };
        fs::write(
            dir.join("id_test.pub"),
            other.public_key().to_openssh().unwrap(),
        )
        .unwrap();
        assert!(matches!(
            LoginKey::load(&private),
            Err(KeyError::Mismatch { .. })
        ));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn host_keys_are_read_from_named_files() {
        let dir = tmp("host");
        let LoginKey::Generated(k) = LoginKey::generate("root@host").unwrap() else {
            panic!()
        };
        let f = dir.join("ssh_host_ed25519_key.pub");
        fs::write(&f, k.public_key().to_openssh().unwrap()).unwrap();
        let keys = host_keys(std::slice::from_ref(&f)).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(fingerprint(&keys[0]).starts_with("SHA256:"));
        assert!(!openssh_line(&keys[0]).contains("root@host"));
        fs::write(&f, "nonsense").unwrap();
        assert!(matches!(host_keys(&[f]), Err(KeyError::BadHostKey { .. })));
        fs::remove_dir_all(dir).unwrap();
    }
}
