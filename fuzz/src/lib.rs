//! The checks behind git-pair's fuzz targets, one function per target, kept in a library so that
//! `cargo test` (stable, no sanitizer) can run them on the committed seeds and on scripted
//! inputs that show the properties are not vacuous. Each `fuzz_targets/<name>.rs` only calls
//! one of these.
//!
//! Every function takes arbitrary bytes and panics exactly when a property of git-pair is
//! violated; see `README.md` for the list.

pub mod journal;
pub mod locate;
pub mod machine;
pub mod planners;
pub mod sync;

/// Test keys (public halves only), made once with `ssh-keygen`; the same ones as
/// `git_pair::ssh_files::test_keys`, which is private to git-pair's tests.
pub mod keys {
    /// `ssh-keygen -t rsa -b 2048 -C bob@rsa-host`
    pub const RSA_PUB: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQChoglD7HwulSpfdfqt4xbkEunmcNTBFUAwRdgk7Ce1Kq8qJIfh4Vc/nHNURf8BvOrhN2FdBj9ud2yEasuHSHpExoxaraHxyPUu3L3lKC73yK7H3azo3hGJAf6tbZ1par36C6e05ZSoC5GpbVIl0trPIYCfa6aUfWyyjNiUPVVqpZppnssXvy6mk8eJKLkrGLnZH8d2qpl/hlqs7OHAFkLDhS97rSuT5+ibheoM7VMaJAc7+n989DiohdgrD5pzSiZAXUr5ShopzNJGQFZEFzvBpoxnOO5elIe87FgFrZ0Q4SYM1bj53y99lUGwEbns2qlsZLm/6lQBFhRTSFoFoMbF bob@rsa-host";

    /// `ssh-keygen -t ecdsa -C carol@ec-host`
    pub const ECDSA_PUB: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBR3CJLg2/pKY2xUWRHBhh3TwpEJ8aRQOxqtMxutWUigJzcBolWMqRnJQUBHgZvgCSdOm8Y0Mbw35ywUsSyYdyE= carol@ec-host";

    /// `ssh-keygen -t ed25519 -C dave@ed-host`
    pub const ED25519_PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDZpaqOFP8Focd9pYWXxjkTE3Q0U/hZAv5ABDIwfZWjN dave@ed-host";
}

#[cfg(test)]
mod tests;
