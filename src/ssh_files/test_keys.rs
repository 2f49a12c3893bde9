//! Keys for tests: public lines made once with `ssh-keygen` (pasted, with their fingerprints
//! checked in `authorized_keys::tests::known_answer_fingerprints_of_pasted_keys`), and fresh
//! Ed25519 keys from the OS random source.

use rand_core::OsRng;
use ssh_key::{Algorithm, PrivateKey, PublicKey};

/// `ssh-keygen -t rsa -b 2048 -C bob@rsa-host`
pub const RSA_PUB: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQChoglD7HwulSpfdfqt4xbkEunmcNTBFUAwRdgk7Ce1Kq8qJIfh4Vc/nHNURf8BvOrhN2FdBj9ud2yEasuHSHpExoxaraHxyPUu3L3lKC73yK7H3azo3hGJAf6tbZ1par36C6e05ZSoC5GpbVIl0trPIYCfa6aUfWyyjNiUPVVqpZppnssXvy6mk8eJKLkrGLnZH8d2qpl/hlqs7OHAFkLDhS97rSuT5+ibheoM7VMaJAc7+n989DiohdgrD5pzSiZAXUr5ShopzNJGQFZEFzvBpoxnOO5elIe87FgFrZ0Q4SYM1bj53y99lUGwEbns2qlsZLm/6lQBFhRTSFoFoMbF bob@rsa-host";

/// `ssh-keygen -t ecdsa -C carol@ec-host`
pub const ECDSA_PUB: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBR3CJLg2/pKY2xUWRHBhh3TwpEJ8aRQOxqtMxutWUigJzcBolWMqRnJQUBHgZvgCSdOm8Y0Mbw35ywUsSyYdyE= carol@ec-host";

/// `ssh-keygen -t ed25519 -C dave@ed-host`
pub const ED25519_PUB: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDZpaqOFP8Focd9pYWXxjkTE3Q0U/hZAv5ABDIwfZWjN dave@ed-host";

pub fn ed25519_private() -> PrivateKey {
    PrivateKey::random(&mut OsRng, Algorithm::Ed25519).expect("generate an Ed25519 key")
}

pub fn ed25519_public() -> PublicKey {
    ed25519_private().public_key().clone()
}

/// A test that needs a program this machine lacks says so, and fails unless
/// skipping was asked for with GIT_PAIR_ALLOW_SKIP=1: it never passes
/// silently.
pub fn skip(reason: &str) {
    eprintln!("SKIPPED: {reason}");
    assert_eq!(
        std::env::var("GIT_PAIR_ALLOW_SKIP").as_deref(),
        Ok("1"),
        "{reason}: install openssh-client, or set GIT_PAIR_ALLOW_SKIP=1 to skip"
    );
}
