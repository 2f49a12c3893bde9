//! ssh client configuration: the `Include` line git-pair puts at the top of `~/.ssh/config`, and
//! git-pair's own `~/.ssh/git-pair/config` with one `Host <alias>` block per pairing.
//!
//! Reading follows `ssh_config(5)` as OpenSSH parses it: keywords are case-insensitive and end at
//! whitespace or `=`; arguments are split on whitespace, honour `"…"` and `'…'` quoting, and stop
//! at an unquoted `#`. A `Host` or `Match` line starts a block that lasts until the next one, and
//! there is no way back to the top level, which is why the `Include` must come first.
//!
//! Writing is deliberately narrow: values from the peer (host name, user) must match a strict
//! allowlist, paths are written as `~/…` when under the home directory, with `%` doubled where
//! ssh expands `%` tokens, and quoted when they hold anything but plain characters.

use std::ops::Range;
use std::path::Path;

use super::{
    line_content, lines, terminate_last_line, validate_alias, Error, Identity, PairSetup, SshDir,
};

/// The comment line written above git-pair's `Include`.
pub const INCLUDE_COMMENT: &str =
    "# Added by git pair. Keep it first: below a Host or Match line it would apply to that block only.";

/// One pairing's `Host` block in git-pair's config, validated at construction so that writing
/// it cannot fail or inject anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBlock {
    alias: String,
    host_name: String,
    port: u16,
    user: String,
    identity_file: String,
    known_hosts_file: String,
    record: Option<BlockRecord>,
}

/// Which repository and remote a `Host` block belongs to, written as comments inside the block
/// so that `git pair list` and `git pair remove` can still find a pairing whose remote was
/// deleted by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    /// The local repository's absolute path.
    pub repo: String,
    /// The remote's name in that repository.
    pub remote: String,
    /// The marker of the pairing's `authorized_keys` line.
    pub marker: String,
}

/// The comment prefixes of a [`BlockRecord`], each followed by one space and the value, which
/// runs to the end of the line (a path may hold spaces).
pub const RECORD_REPO: &str = "# git-pair-repo";
pub const RECORD_REMOTE: &str = "# git-pair-remote";
pub const RECORD_MARKER: &str = "# git-pair-marker";
/// The comment `git pair refresh` writes into a block: `<RFC 3339 time> <method>`, when and how
/// it last found the peer.
pub const RECORD_REFRESHED: &str = "# git-pair-refreshed";

/// One single-alias `Host` block of git-pair's config, as read back by [`pair_blocks`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FoundBlock {
    pub alias: String,
    pub repo: Option<String>,
    pub remote: Option<String>,
    pub marker: Option<String>,
    /// `IdentityFile` as written (`~/…` or absolute, maybe quoted).
    pub identity_file: Option<String>,
    pub host_name: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    /// The refresh record: `<RFC 3339 time> <method>`.
    pub refreshed: Option<String>,
}

impl HostBlock {
    /// Validates and renders the values: `alias` (see [`validate_alias`]); `host_name` from
    /// `A-Z a-z 0-9 . : % _ -` (an IP, an IPv6 address with a `%scope`, or a DNS name); `user`
    /// from `A-Z a-z 0-9 . _ @ -`; a non-zero `port`; absolute, UTF-8 paths without control
    /// characters, `"`, `\` or `${`. `home` decides which paths are written as `~/…`.
    pub fn new(
        alias: &str,
        host_name: &str,
        port: u16,
        user: &str,
        identity_file: &Path,
        known_hosts_file: &Path,
        home: &Path,
    ) -> Result<Self, Error> {
        validate_alias(alias)?;
        check_word("HostName", host_name, 253, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'%' | b'_' | b'-')
        })?;
        check_word("User", user, 64, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-')
        })?;
        if port == 0 {
            return Err(Error::InvalidValue {
                what: "Port",
                value: "0".to_owned(),
                reason: "it must be between 1 and 65535",
            });
        }
        Ok(HostBlock {
            alias: alias.to_owned(),
            // HostName expands %-tokens: an IPv6 scope "%veth0" must be written "%%veth0".
            host_name: host_name.replace('%', "%%"),
            port,
            user: user.to_owned(),
            identity_file: render_path("IdentityFile", identity_file, home, true)?,
            known_hosts_file: render_path("UserKnownHostsFile", known_hosts_file, home, true)?,
            record: None,
        })
    }

    /// The block with `record` written into it. The repository path must be an absolute path
    /// without control characters, the remote name a plain word, the marker a valid marker.
    pub fn with_record(mut self, record: BlockRecord) -> Result<Self, Error> {
        super::plain_path("repository path", Path::new(&record.repo))?;
        check_word("remote name", &record.remote, 64, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
        })?;
        super::authorized_keys::validate_marker(&record.marker)?;
        self.record = Some(record);
        Ok(self)
    }

    /// `IdentityFile` as this block writes it, to compare with other blocks'.
    pub fn identity_file(&self) -> &str {
        &self.identity_file
    }

    /// The block for `setup`, with paths from `dir`.
    pub fn for_setup(dir: &SshDir, setup: &PairSetup) -> Result<Self, Error> {
        validate_alias(&setup.alias)?;
        let identity_file = match &setup.identity {
            Identity::Generated(_) => dir.identity(&setup.alias),
            Identity::Existing(path) => path.clone(),
        };
        let block = HostBlock::new(
            &setup.alias,
            &setup.host_name,
            setup.port,
            &setup.user,
            &identity_file,
            &dir.pair_known_hosts(),
            dir.tilde(),
        )?;
        match &setup.record {
            Some(record) => block.with_record(record.clone()),
            None => Ok(block),
        }
    }

    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The block's text, ending with a blank line (which [`plan_host`] replaces with the block,
    /// so blocks stay separated).
    pub fn render(&self) -> String {
        let port = self.port.to_string();
        let settings: [(&str, &str); 10] = [
            ("HostName", &self.host_name),
            ("Port", &port),
            ("User", &self.user),
            ("IdentityFile", &self.identity_file),
            ("IdentitiesOnly", "yes"),
            ("HostKeyAlias", &self.alias),
            ("UserKnownHostsFile", &self.known_hosts_file),
            ("StrictHostKeyChecking", "yes"),
            ("UpdateHostKeys", "no"),
            ("PreferredAuthentications", "publickey"),
        ];
        let mut out = format!("Host {}\n", self.alias);
        if let Some(r) = &self.record {
            out.push_str(&format!("    {RECORD_REPO} {}\n", r.repo));
            out.push_str(&format!("    {RECORD_REMOTE} {}\n", r.remote));
            out.push_str(&format!("    {RECORD_MARKER} {}\n", r.marker));
        }
        for (keyword, value) in settings {
            out.push_str(&format!("    {keyword} {value}\n"));
        }
        out.push('\n');
        out
    }
}

fn check_word(
    what: &'static str,
    value: &str,
    max_len: usize,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidValue {
        what,
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() || value.len() > max_len {
        return Err(invalid("it is empty or too long"));
    }
    if !value.bytes().all(allowed) {
        return Err(invalid("it contains a character not allowed there"));
    }
    if value.starts_with('-') {
        return Err(invalid("it must not start with '-'"));
    }
    Ok(())
}

/// A path as an ssh_config argument: `~/rel` under `home`, else absolute; `%` doubled if the
/// keyword expands %-tokens; double-quoted unless made only of plain characters.
fn render_path(
    what: &'static str,
    path: &Path,
    home: &Path,
    percent_tokens: bool,
) -> Result<String, Error> {
    let invalid = |reason| Error::InvalidPath {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let text = super::plain_path(what, path)?;
    if text.contains(['"', '\\']) {
        return Err(invalid(
            "it contains a double quote or a backslash, which ssh_config cannot hold unambiguously",
        ));
    }
    if text.contains("${") {
        return Err(invalid(
            "it contains \"${\", which ssh would expand as an environment variable",
        ));
    }
    let mut shown = home_relative(path, home).unwrap_or_else(|| text.to_owned());
    if percent_tokens {
        shown = shown.replace('%', "%%");
    }
    let plain = shown.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'.' | b'_' | b'/' | b'~' | b'+' | b',' | b':' | b'@' | b'%' | b'-'
            )
    });
    Ok(if plain { shown } else { format!("\"{shown}\"") })
}

/// `path` as a block of `dir` writes it after `IdentityFile`, to compare with
/// [`FoundBlock::identity_file`].
pub fn identity_file_text(dir: &SshDir, path: &Path) -> Result<String, Error> {
    render_path("IdentityFile", path, dir.tilde(), true)
}

/// `~/rel` for a UTF-8 path strictly under an absolute `home`.
fn home_relative(path: &Path, home: &Path) -> Option<String> {
    if !home.is_absolute() {
        return None;
    }
    let rel = path.strip_prefix(home).ok()?.to_str()?;
    (!rel.is_empty()).then(|| format!("~/{rel}"))
}

/// The new `~/.ssh/config` (`existing` is `None` if there is none), or `None` if it already
/// includes `include_target` at the top level (before any `Host`/`Match` line, keyword in any
/// case, the path written with `~/`, absolute, or relative to `~/.ssh` as ssh allows).
///
/// Otherwise [`INCLUDE_COMMENT`] and `Include <path>` become the first two lines and the old
/// bytes follow unchanged. `<path>` is `~/…` if `include_target` is under `home`, else
/// absolute (double-quoted if it has spaces). Paths with `%`, `*`, `?`, `[` (expanded by
/// Include) or anything [`HostBlock::new`] refuses are refused.
pub fn plan_include(
    existing: Option<&[u8]>,
    include_target: &Path,
    home: &Path,
) -> Result<Option<Vec<u8>>, Error> {
    if let Some(text) = include_target.to_str() {
        if text.contains(['%', '*', '?', '[']) {
            return Err(Error::InvalidPath {
                what: "Include",
                path: include_target.to_path_buf(),
                reason: "it contains one of % * ? [, which ssh would expand",
            });
        }
    }
    let rendered = render_path("Include", include_target, home, false)?;
    let mut forms: Vec<Vec<u8>> = vec![include_target.as_os_str().as_encoded_bytes().to_vec()];
    if let Some(tilde) = home_relative(include_target, home) {
        forms.push(tilde.into_bytes());
    }
    // ssh reads a relative Include in a user config as relative to ~/.ssh.
    if let Some(rel) = home_relative(include_target, &home.join(".ssh")) {
        forms.push(rel.trim_start_matches("~/").as_bytes().to_vec());
    }
    if let Some(old) = existing {
        for line in lines(old) {
            let Some((keyword, args)) = parse_config_line(line_content(line)) else {
                continue;
            };
            if is_block_start(keyword) {
                break;
            }
            if keyword.eq_ignore_ascii_case(b"include") && args.iter().any(|a| forms.contains(a)) {
                return Ok(None);
            }
        }
    }
    let mut out = format!("{INCLUDE_COMMENT}\nInclude {rendered}\n").into_bytes();
    out.extend_from_slice(existing.unwrap_or_default());
    Ok(Some(out))
}

/// The `Include` line [`plan_include`] adds, for a person to add by hand where git pair may not
/// write (a read-only `~/.ssh/config`).
pub fn include_line(include_target: &Path, home: &Path) -> Result<String, Error> {
    Ok(format!(
        "Include {}",
        render_path("Include", include_target, home, false)?
    ))
}

/// `~/.ssh/config` without what [`plan_include`] added: its two lines exactly as it writes
/// them, at the top of the file. `None` when they are not there (a user who moved or edited
/// them owns them now). Every other byte is kept, so undoing the last pairing gives back the
/// file as it was.
pub fn plan_remove_include(
    existing: &[u8],
    include_target: &Path,
    home: &Path,
) -> Result<Option<Vec<u8>>, Error> {
    let rendered = render_path("Include", include_target, home, false)?;
    let ours = format!("{INCLUDE_COMMENT}\nInclude {rendered}\n");
    Ok(existing.strip_prefix(ours.as_bytes()).map(<[u8]>::to_vec))
}

/// git-pair's config with `block` in it: the existing block(s) for the alias (from a
/// `Host <alias>` line up to the next `Host`/`Match` line or the end) replaced by it, or, if
/// there is none, the block appended (after a `\n` if the file does not end with one). All other
/// bytes are kept.
pub fn plan_host(existing: &[u8], block: &HostBlock) -> Vec<u8> {
    let ranges = host_block_ranges(existing, &block.alias);
    let rendered = block.render();
    let mut out = Vec::with_capacity(existing.len() + rendered.len() + 1);
    if ranges.is_empty() {
        out.extend_from_slice(existing);
        terminate_last_line(&mut out);
        out.extend_from_slice(rendered.as_bytes());
        return out;
    }
    let mut at = 0;
    for (i, range) in ranges.iter().enumerate() {
        out.extend_from_slice(&existing[at..range.start]);
        if i == 0 {
            out.extend_from_slice(rendered.as_bytes());
        }
        at = range.end;
    }
    out.extend_from_slice(&existing[at..]);
    out
}

/// git-pair's config without the block(s) for `alias`; all other bytes kept.
pub fn plan_remove_host(existing: &[u8], alias: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(existing.len());
    let mut at = 0;
    for range in host_block_ranges(existing, alias) {
        out.extend_from_slice(&existing[at..range.start]);
        at = range.end;
    }
    out.extend_from_slice(&existing[at..]);
    out
}

/// Where `git pair refresh` found a pairing's peer, for [`plan_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh<'a> {
    /// The new `HostName`: an address (`10.0.0.9`, `fe80::9%eth0`) or a name (`desk.local`).
    pub host_name: &'a str,
    pub port: u16,
    /// When (RFC 3339, UTC).
    pub time: &'a str,
    /// How: `mdns`, `address` or `locate`.
    pub method: &'a str,
}

/// git-pair's config with `alias`'s block pointed at `refresh.host_name` and `refresh.port`,
/// and its [`RECORD_REFRESHED`] comment set; every other byte kept.
///
/// Only the first block for the alias (the one ssh reads) changes: its first `HostName` line
/// is rewritten with the new value (keeping the line's indentation and line ending), its first
/// `Port` line only when the port differs, and its refresh record replaced (or added after the
/// other record comments). A block without such a line gets one. The values are checked as
/// [`HostBlock::new`] checks them. Fails when there is no block for the alias.
pub fn plan_refresh(existing: &[u8], alias: &str, refresh: &Refresh<'_>) -> Result<Vec<u8>, Error> {
    validate_alias(alias)?;
    check_word("HostName", refresh.host_name, 253, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'%' | b'_' | b'-')
    })?;
    if refresh.port == 0 {
        return Err(Error::InvalidValue {
            what: "Port",
            value: "0".to_owned(),
            reason: "it must be between 1 and 65535",
        });
    }
    check_word("refresh time", refresh.time, 40, |b| {
        b.is_ascii_digit() || matches!(b, b'T' | b'Z' | b':' | b'-')
    })?;
    check_word("refresh method", refresh.method, 16, |b| {
        b.is_ascii_lowercase()
    })?;
    let Some(range) = host_block_ranges(existing, alias).into_iter().next() else {
        return Err(Error::NoHostBlock {
            alias: alias.to_owned(),
        });
    };
    let block = &existing[range.clone()];
    let host_name = refresh.host_name.replace('%', "%%");
    let port = refresh.port.to_string();
    let mut lines_in = lines(block);
    let host_line = lines_in.next().unwrap_or_default();
    let eol: &[u8] = if host_line.ends_with(b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    let record = [
        b"    ",
        RECORD_REFRESHED.as_bytes(),
        b" ",
        refresh.time.as_bytes(),
        b" ",
        refresh.method.as_bytes(),
        eol,
    ]
    .concat();
    let mut out = Vec::with_capacity(existing.len() + 128);
    out.extend_from_slice(&existing[..range.start]);
    out.extend_from_slice(host_line);
    if !host_line.ends_with(b"\n") {
        out.extend_from_slice(eol);
    }
    let mut rest: Vec<&[u8]> = lines_in.collect();
    // The record goes after the last record comment at the top of the block, or first.
    let records_end = rest
        .iter()
        .take_while(|l| trim_start(line_content(l)).starts_with(b"# git-pair-"))
        .count();
    let (mut saw_host_name, mut saw_port) = (false, false);
    let mut body: Vec<u8> = Vec::new();
    for (i, line) in rest.drain(..).enumerate() {
        if i == records_end {
            body.extend_from_slice(&record);
        }
        let content = line_content(line);
        if trim_start(content).starts_with(RECORD_REFRESHED.as_bytes()) {
            continue;
        }
        let ending = &line[content.len()..];
        let indent = &content[..content.len() - trim_start(content).len()];
        let rewrite = |keyword: &str, value: &str, body: &mut Vec<u8>| {
            body.extend_from_slice(indent);
            body.extend_from_slice(format!("{keyword} {value}").as_bytes());
            body.extend_from_slice(if ending.is_empty() { eol } else { ending });
        };
        match parse_config_line(content) {
            Some((keyword, _)) if !saw_host_name && keyword.eq_ignore_ascii_case(b"hostname") => {
                saw_host_name = true;
                rewrite("HostName", &host_name, &mut body);
            }
            Some((keyword, args)) if !saw_port && keyword.eq_ignore_ascii_case(b"port") => {
                saw_port = true;
                if args.first().map(Vec::as_slice) == Some(port.as_bytes()) {
                    body.extend_from_slice(line);
                } else {
                    rewrite("Port", &port, &mut body);
                }
            }
            _ => body.extend_from_slice(line),
        }
    }
    if records_end >= body_lines(block) {
        body.extend_from_slice(&record);
    }
    let mut missing = Vec::new();
    if !saw_host_name {
        missing.extend_from_slice(format!("    HostName {host_name}").as_bytes());
        missing.extend_from_slice(eol);
    }
    if !saw_port {
        missing.extend_from_slice(format!("    Port {port}").as_bytes());
        missing.extend_from_slice(eol);
    }
    // Missing settings go right after the records, where the block's own settings start.
    let insert_at = position_after_records(&body);
    body.splice(insert_at..insert_at, missing);
    out.extend_from_slice(&body);
    out.extend_from_slice(&existing[range.end..]);
    Ok(out)
}

/// Lines of a block after its `Host` line.
fn body_lines(block: &[u8]) -> usize {
    lines(block).count().saturating_sub(1)
}

/// The byte offset in `body` after its leading `# git-pair-` comment lines.
fn position_after_records(body: &[u8]) -> usize {
    let mut at = 0;
    for line in lines(body) {
        if !trim_start(line_content(line)).starts_with(b"# git-pair-") {
            break;
        }
        at += line.len();
    }
    at
}

/// The aliases of the single-pattern `Host` blocks in a config, in order (for `git pair list`).
pub fn host_aliases(existing: &[u8]) -> Vec<String> {
    lines(existing)
        .filter_map(|line| {
            let (keyword, args) = parse_config_line(line_content(line))?;
            match args.as_slice() {
                [alias] if keyword.eq_ignore_ascii_case(b"host") => {
                    String::from_utf8(alias.clone()).ok()
                }
                _ => None,
            }
        })
        .collect()
}

/// Every single-alias `Host` block, with its record comments and the settings `list` and
/// `remove` need. Blocks git-pair did not write are returned too; callers match on aliases and
/// records.
pub fn pair_blocks(existing: &[u8]) -> Vec<FoundBlock> {
    let mut blocks: Vec<FoundBlock> = Vec::new();
    let mut current: Option<FoundBlock> = None;
    for line in lines(existing) {
        let content = line_content(line);
        let trimmed = trim_start(content);
        if trimmed.starts_with(b"#") {
            if let (Some(block), Ok(text)) = (current.as_mut(), std::str::from_utf8(trimmed)) {
                for (prefix, slot) in [
                    (RECORD_REPO, &mut block.repo),
                    (RECORD_REMOTE, &mut block.remote),
                    (RECORD_MARKER, &mut block.marker),
                    (RECORD_REFRESHED, &mut block.refreshed),
                ] {
                    if let Some(value) = text.strip_prefix(prefix).and_then(|v| v.strip_prefix(' '))
                    {
                        *slot = Some(value.to_owned());
                    }
                }
            }
            continue;
        }
        let Some((keyword, args)) = parse_config_line(content) else {
            continue;
        };
        if is_block_start(keyword) {
            blocks.extend(current.take());
            if let [alias] = args.as_slice() {
                if keyword.eq_ignore_ascii_case(b"host") {
                    current = String::from_utf8(alias.clone())
                        .ok()
                        .map(|alias| FoundBlock {
                            alias,
                            ..FoundBlock::default()
                        });
                }
            }
            continue;
        }
        let (Some(block), [value]) = (current.as_mut(), args.as_slice()) else {
            continue;
        };
        let value = String::from_utf8_lossy(value).into_owned();
        let slot = if keyword.eq_ignore_ascii_case(b"identityfile") {
            &mut block.identity_file
        } else if keyword.eq_ignore_ascii_case(b"hostname") {
            &mut block.host_name
        } else if keyword.eq_ignore_ascii_case(b"port") {
            &mut block.port
        } else if keyword.eq_ignore_ascii_case(b"user") {
            &mut block.user
        } else {
            continue;
        };
        // ssh uses the first value of a keyword.
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    blocks.extend(current);
    blocks
}

fn trim_start(content: &[u8]) -> &[u8] {
    let start = content
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(content.len());
    &content[start..]
}

/// Byte ranges of the blocks whose `Host` line names exactly `alias` (ssh compares host names
/// case-insensitively).
fn host_block_ranges(existing: &[u8], alias: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut open: Option<usize> = None;
    let mut offset = 0;
    for line in lines(existing) {
        if let Some((keyword, args)) = parse_config_line(line_content(line)) {
            if is_block_start(keyword) {
                if let Some(start) = open.take() {
                    ranges.push(start..offset);
                }
                let ours = keyword.eq_ignore_ascii_case(b"host")
                    && matches!(args.as_slice(), [a] if a.eq_ignore_ascii_case(alias.as_bytes()));
                if ours {
                    open = Some(offset);
                }
            }
        }
        offset += line.len();
    }
    if let Some(start) = open {
        ranges.push(start..existing.len());
    }
    ranges
}

fn is_block_start(keyword: &[u8]) -> bool {
    keyword.eq_ignore_ascii_case(b"host") || keyword.eq_ignore_ascii_case(b"match")
}

/// Keyword and arguments of a config line, or `None` for blank and comment lines.
fn parse_config_line(content: &[u8]) -> Option<(&[u8], Vec<Vec<u8>>)> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t');
    let start = content.iter().position(|b| !is_space(b))?;
    let text = &content[start..];
    if text.starts_with(b"#") {
        return None;
    }
    let end = text
        .iter()
        .position(|b| is_space(b) || *b == b'=')
        .unwrap_or(text.len());
    let keyword = &text[..end];
    let mut rest = &text[end..];
    while rest.first().is_some_and(is_space) {
        rest = &rest[1..];
    }
    if let Some(after) = rest.strip_prefix(b"=") {
        rest = after;
    }
    Some((keyword, split_args(rest)))
}

/// OpenSSH's `argv_split` with comments: whitespace-separated words, `"…"`/`'…'` quoting,
/// backslash escaping `"`, `'`, `\` (and a space outside quotes); an unquoted `#` starting a
/// word ends the line.
fn split_args(s: &[u8]) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && matches!(s[i], b' ' | b'\t') {
            i += 1;
        }
        if i >= s.len() || s[i] == b'#' {
            return args;
        }
        let mut arg = Vec::new();
        let mut quote = None;
        while i < s.len() {
            let c = s[i];
            let next = s.get(i + 1).copied();
            if quote.is_none() && matches!(c, b' ' | b'\t') {
                break;
            }
            if c == b'\\'
                && (matches!(next, Some(b'\'' | b'"' | b'\\'))
                    || (quote.is_none() && next == Some(b' ')))
            {
                i += 1;
                arg.push(s[i]);
            } else if quote.is_none() && matches!(c, b'"' | b'\'') {
                quote = Some(c);
            } else if quote == Some(c) {
                quote = None;
            } else {
                arg.push(c);
            }
            i += 1;
        }
        args.push(arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh_files::io_tests::TempHome;
    use proptest::prelude::*;
    use std::path::PathBuf;

    const HOME: &str = "/home/alice";

    fn block(alias: &str) -> HostBlock {
        HostBlock::new(
            alias,
            "fe80::2%veth0",
            2222,
            "bob",
            Path::new("/home/alice/.ssh/git-pair/id_x"),
            Path::new("/home/alice/.ssh/git-pair/known_hosts"),
            Path::new(HOME),
        )
        .unwrap()
    }

    fn target() -> PathBuf {
        PathBuf::from("/home/alice/.ssh/git-pair/config")
    }

    #[test]
    fn records_are_written_inside_the_block_and_read_back() {
        let b = block("git-pair-desk-1")
            .with_record(BlockRecord {
                repo: "/home/alice/my notes".into(),
                remote: "desk".into(),
                marker: "0123abcd".into(),
            })
            .unwrap();
        let text = plan_host(b"Host other\n  IdentityFile ~/x\n", &b);
        let found = pair_blocks(&text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].alias, "other");
        assert_eq!(found[0].repo, None);
        assert_eq!(found[0].identity_file.as_deref(), Some("~/x"));
        let ours = &found[1];
        assert_eq!(ours.repo.as_deref(), Some("/home/alice/my notes"));
        assert_eq!(ours.remote.as_deref(), Some("desk"));
        assert_eq!(ours.marker.as_deref(), Some("0123abcd"));
        assert_eq!(ours.host_name.as_deref(), Some("fe80::2%%veth0"));
        assert_eq!(ours.port.as_deref(), Some("2222"));
        assert_eq!(ours.identity_file.as_deref(), Some(b.identity_file()));
        // Removing the block removes its record with it.
        assert_eq!(
            plan_remove_host(&text, "git-pair-desk-1"),
            b"Host other\n  IdentityFile ~/x\n"
        );
    }

    #[test]
    fn records_that_could_inject_are_refused() {
        let record = |repo: &str, remote: &str, marker: &str| BlockRecord {
            repo: repo.into(),
            remote: remote.into(),
            marker: marker.into(),
        };
        for bad in [
            record("relative", "desk", "m"),
            record("/a\nHost *", "desk", "m"),
            record("/a", "de sk", "m"),
            record("/a", "desk\n", "m"),
            record("/a", "desk", "m m"),
        ] {
            assert!(block("a").with_record(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_include_comes_out_exactly_as_it_went_in() {
        for old in [None, Some(&b"Host *\r\n  User me\r\n\xe9"[..]), Some(b"")] {
            let with = plan_include(old, &target(), Path::new(HOME))
                .unwrap()
                .unwrap();
            let without = plan_remove_include(&with, &target(), Path::new(HOME))
                .unwrap()
                .unwrap();
            assert_eq!(without, old.unwrap_or_default());
        }
        // Moved by the user: theirs now.
        let moved = format!("Host x\n{INCLUDE_COMMENT}\nInclude ~/.ssh/git-pair/config\n");
        assert_eq!(
            plan_remove_include(moved.as_bytes(), &target(), Path::new(HOME)).unwrap(),
            None
        );
    }

    fn refresh<'a>(host_name: &'a str, port: u16) -> Refresh<'a> {
        Refresh {
            host_name,
            port,
            time: "2026-11-30T10:00:00Z",
            method: "locate",
        }
    }

    fn recorded_block(alias: &str) -> HostBlock {
        block(alias)
            .with_record(BlockRecord {
                repo: "/home/alice/notes".into(),
                remote: "desk".into(),
                marker: "0123abcd".into(),
            })
            .unwrap()
    }

    #[test]
    fn plan_refresh_changes_only_host_name_and_the_record() {
        let ours = recorded_block("git-pair-x");
        let old = plan_host(b"Host a\n  HostName 10.9.9.9\n\n", &ours);
        let old = plan_host(&old, &block("git-pair-y"));
        let new = plan_refresh(&old, "git-pair-x", &refresh("10.0.0.9", 2222)).unwrap();
        let expected = String::from_utf8(old.clone()).unwrap().replacen(
            "    # git-pair-marker 0123abcd\n    HostName fe80::2%%veth0\n",
            "    # git-pair-marker 0123abcd\n    # git-pair-refreshed 2026-11-30T10:00:00Z locate\n    HostName 10.0.0.9\n",
            1,
        );
        assert_eq!(String::from_utf8(new.clone()).unwrap(), expected);
        let found = pair_blocks(&new);
        let x = found.iter().find(|b| b.alias == "git-pair-x").unwrap();
        assert_eq!(x.host_name.as_deref(), Some("10.0.0.9"));
        assert_eq!(x.port.as_deref(), Some("2222"));
        assert_eq!(x.user.as_deref(), Some("bob"));
        assert_eq!(x.refreshed.as_deref(), Some("2026-11-30T10:00:00Z locate"));
        assert_eq!(x.remote.as_deref(), Some("desk"));
        // Again, later, elsewhere: one record, the latest.
        let again = plan_refresh(
            &new,
            "git-pair-x",
            &Refresh {
                host_name: "desk.local",
                port: 2222,
                time: "2026-12-01T08:00:00Z",
                method: "mdns",
            },
        )
        .unwrap();
        let text = String::from_utf8(again).unwrap();
        assert_eq!(text.matches(RECORD_REFRESHED).count(), 1, "{text}");
        assert!(text
            .contains("# git-pair-refreshed 2026-12-01T08:00:00Z mdns\n    HostName desk.local\n"));
        // The same refresh twice changes nothing more.
        assert_eq!(
            plan_refresh(&new, "git-pair-x", &refresh("10.0.0.9", 2222)).unwrap(),
            new
        );
    }

    #[test]
    fn plan_refresh_keeps_the_lines_style_and_writes_a_scope_escaped() {
        let old = b"# mine\r\nHost git-pair-x\r\n\thostname=10.0.0.2\r\n\tPort 22\r\n\tUser bob\r\nHost other\r\n  HostName keep\r\n";
        let new = plan_refresh(old, "GIT-PAIR-X", &refresh("fe80::9%eth0", 22)).unwrap();
        assert_eq!(
            String::from_utf8(new).unwrap(),
            "# mine\r\nHost git-pair-x\r\n    # git-pair-refreshed 2026-11-30T10:00:00Z locate\r\n\tHostName fe80::9%%eth0\r\n\tPort 22\r\n\tUser bob\r\nHost other\r\n  HostName keep\r\n"
        );
    }

    #[test]
    fn plan_refresh_changes_the_port_only_when_it_moved_and_adds_missing_lines() {
        let old = b"Host git-pair-x\n  Port 22\n  HostName a\n";
        let new = plan_refresh(old, "git-pair-x", &refresh("b", 2200)).unwrap();
        assert_eq!(
            String::from_utf8(new).unwrap(),
            "Host git-pair-x\n    # git-pair-refreshed 2026-11-30T10:00:00Z locate\n  Port 2200\n  HostName b\n"
        );
        let bare = b"Host git-pair-x";
        let new = plan_refresh(bare, "git-pair-x", &refresh("b", 22)).unwrap();
        assert_eq!(
            String::from_utf8(new).unwrap(),
            "Host git-pair-x\n    # git-pair-refreshed 2026-11-30T10:00:00Z locate\n    HostName b\n    Port 22\n"
        );
        // Only the first block of a duplicated alias (the one ssh reads) changes.
        let dup = b"Host git-pair-x\n  HostName a\nHost git-pair-x\n  HostName old\n";
        let new = plan_refresh(dup, "git-pair-x", &refresh("b", 22)).unwrap();
        assert!(String::from_utf8(new)
            .unwrap()
            .ends_with("Host git-pair-x\n  HostName old\n"));
    }

    #[test]
    fn plan_refresh_refuses_unsafe_values_and_a_missing_block() {
        let old = plan_host(b"", &block("git-pair-x"));
        for host in [
            "",
            "a b",
            "a\nProxyCommand x",
            "-oProxyCommand",
            "a\"b",
            "[::1]",
        ] {
            assert!(
                matches!(
                    plan_refresh(&old, "git-pair-x", &refresh(host, 22)),
                    Err(Error::InvalidValue { .. })
                ),
                "{host:?}"
            );
        }
        assert!(plan_refresh(&old, "git-pair-x", &refresh("a", 0)).is_err());
        let bad_method = Refresh {
            method: "x y",
            ..refresh("a", 22)
        };
        assert!(plan_refresh(&old, "git-pair-x", &bad_method).is_err());
        assert!(matches!(
            plan_refresh(&old, "git-pair-gone", &refresh("a", 22)),
            Err(Error::NoHostBlock { .. })
        ));
        assert!(plan_refresh(&old, "../x", &refresh("a", 22)).is_err());
    }

    #[test]
    fn render_exact_text() {
        assert_eq!(
            block("git-pair-laptop-3f9a1c2e").render(),
            "Host git-pair-laptop-3f9a1c2e\n\
             \x20   HostName fe80::2%%veth0\n\
             \x20   Port 2222\n\
             \x20   User bob\n\
             \x20   IdentityFile ~/.ssh/git-pair/id_x\n\
             \x20   IdentitiesOnly yes\n\
             \x20   HostKeyAlias git-pair-laptop-3f9a1c2e\n\
             \x20   UserKnownHostsFile ~/.ssh/git-pair/known_hosts\n\
             \x20   StrictHostKeyChecking yes\n\
             \x20   UpdateHostKeys no\n\
             \x20   PreferredAuthentications publickey\n\
             \n"
        );
    }

    #[test]
    fn paths_outside_home_are_absolute_quoted_and_percent_escaped() {
        let b = HostBlock::new(
            "a",
            "10.0.0.2",
            22,
            "bob",
            Path::new("/srv/my keys/id 100%"),
            Path::new("/home/alice/with space/kh"),
            Path::new(HOME),
        )
        .unwrap();
        let text = b.render();
        assert!(
            text.contains("    IdentityFile \"/srv/my keys/id 100%%\"\n"),
            "{text}"
        );
        assert!(
            text.contains("    UserKnownHostsFile \"~/with space/kh\"\n"),
            "{text}"
        );
        // A home that is a prefix of the path as a string but not as a path: absolute.
        let b = HostBlock::new(
            "a",
            "h",
            22,
            "u",
            Path::new("/home/alice2/k"),
            Path::new("/home/alice/kh"),
            Path::new(HOME),
        )
        .unwrap();
        assert!(b.render().contains("IdentityFile /home/alice2/k\n"));
    }

    #[test]
    fn host_block_refuses_unsafe_values() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let ok = Path::new("/k");
        let new = |alias: &str, host: &str, port: u16, user: &str, id: &Path| {
            HostBlock::new(alias, host, port, user, id, ok, Path::new(HOME))
        };
        assert!(new("a", "h", 22, "u", ok).is_ok());
        for host in [
            "",
            "a b",
            "a\nb",
            "a\"b",
            "-oProxyCommand",
            "a#b",
            "a/b",
            "é.lan",
            "[::1]",
        ] {
            assert!(
                matches!(new("a", host, 22, "u", ok), Err(Error::InvalidValue { .. })),
                "{host:?}"
            );
        }
        for user in ["", "a b", "a\nb", "-l", "a%u", "a'b", "a\\b", "a=b"] {
            assert!(
                matches!(new("a", "h", 22, user, ok), Err(Error::InvalidValue { .. })),
                "{user:?}"
            );
        }
        assert!(new("a", "h", 0, "u", ok).is_err());
        assert!(new("a b", "h", 22, "u", ok).is_err());
        let bad_paths: [&Path; 6] = [
            Path::new("relative/key"),
            Path::new("/a\nIdentityFile /etc/x"),
            Path::new("/a\"b"),
            Path::new("/a\\b"),
            Path::new("/a/${HOME}/k"),
            Path::new(OsStr::from_bytes(b"/a/\xff")),
        ];
        for path in bad_paths {
            assert!(
                matches!(new("a", "h", 22, "u", path), Err(Error::InvalidPath { .. })),
                "{path:?}"
            );
        }
    }

    #[test]
    fn plan_host_appends_and_keeps_other_bytes() {
        let b = block("git-pair-x");
        assert_eq!(plan_host(b"", &b), b.render().into_bytes());
        let old = b"# mine\r\nHost other\r\n  User me\r\n\xff\xfe odd";
        let out = plan_host(old, &b);
        let mut expected = old.to_vec();
        expected.push(b'\n');
        expected.extend_from_slice(b.render().as_bytes());
        assert_eq!(out, expected);
    }

    #[test]
    fn plan_host_replaces_the_block_in_place_whatever_its_spelling() {
        let new = block("git-pair-x");
        for host_line in [
            "Host git-pair-x",
            "host=git-pair-x",
            "  HOST  \"git-pair-x\"  # old",
            "Host GIT-PAIR-X",
        ] {
            let old = format!(
                "Host a\n  User a\n\n{host_line}\r\n  HostName old\n# trailing comment\n\nMatch host b\n  User b\nHost c"
            );
            let out = plan_host(old.as_bytes(), &new);
            let expected = format!(
                "Host a\n  User a\n\n{}Match host b\n  User b\nHost c",
                new.render()
            );
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{host_line}");
        }
    }

    #[test]
    fn plan_host_ignores_lookalikes_and_merges_duplicates() {
        let new = block("git-pair-x");
        // Not the alias's own block: several patterns, a prefix, a comment, a value.
        let old = "Host git-pair-x other\n  User 1\nHost git-pair-xy\n  User 2\n# Host git-pair-x\n  ProxyJump git-pair-x\n";
        let out = plan_host(old.as_bytes(), &new);
        assert_eq!(out, format!("{old}{}", new.render()).into_bytes());
        // Two blocks for the alias: the first is replaced, the second removed.
        let old = "Host git-pair-x\n  User 1\nHost b\nHost git-pair-x\n  User 2\n";
        let out = plan_host(old.as_bytes(), &new);
        assert_eq!(out, format!("{}Host b\n", new.render()).into_bytes());
    }

    #[test]
    fn plan_host_is_idempotent_and_remove_undoes_it() {
        let new = block("git-pair-x");
        let old = b"Host a\n  User a\n".to_vec();
        let once = plan_host(&old, &new);
        assert_eq!(plan_host(&once, &new), once);
        assert_eq!(plan_remove_host(&once, "git-pair-x"), old);
        assert_eq!(plan_remove_host(&old, "git-pair-x"), old);
        let two = plan_host(&once, &block("git-pair-y"));
        assert_eq!(host_aliases(&two), vec!["a", "git-pair-x", "git-pair-y"]);
        assert_eq!(
            plan_remove_host(&two, "git-pair-x"),
            plan_host(&old, &block("git-pair-y"))
        );
    }

    #[test]
    fn include_is_inserted_first_with_old_bytes_unchanged() {
        let out = plan_include(None, &target(), Path::new(HOME))
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{INCLUDE_COMMENT}\nInclude ~/.ssh/git-pair/config\n")
        );
        let old: &[u8] = b"Host *\r\n  Include ~/.ssh/git-pair/config\r\n\xff no final newline";
        let out = plan_include(Some(old), &target(), Path::new(HOME))
            .unwrap()
            .unwrap();
        let prefix = format!("{INCLUDE_COMMENT}\nInclude ~/.ssh/git-pair/config\n");
        assert_eq!(&out[..prefix.len()], prefix.as_bytes());
        assert_eq!(&out[prefix.len()..], old);
        assert_eq!(
            plan_include(Some(&out), &target(), Path::new(HOME)).unwrap(),
            None
        );
    }

    #[test]
    fn equivalent_include_at_top_level_is_recognised() {
        for line in [
            "Include ~/.ssh/git-pair/config",
            "include ~/.ssh/git-pair/config",
            "  INCLUDE=/home/alice/.ssh/git-pair/config",
            "Include \"git-pair/config\"",
            "Include ~/.ssh/other git-pair/config # comment",
            "Include\t'~/.ssh/git-pair/config'\r",
        ] {
            let old = format!("# x\n\nUser me\n{line}\nHost a\n  User a\n");
            assert_eq!(
                plan_include(Some(old.as_bytes()), &target(), Path::new(HOME)).unwrap(),
                None,
                "{line}"
            );
        }
        for old in [
            "# Include ~/.ssh/git-pair/config\n",
            "Include ~/.ssh/git-pair/config.d\n",
            "Host a\nInclude ~/.ssh/git-pair/config\n",
            "Match all\nInclude ~/.ssh/git-pair/config\n",
            "IdentityFile ~/.ssh/git-pair/config\n",
        ] {
            assert!(
                plan_include(Some(old.as_bytes()), &target(), Path::new(HOME))
                    .unwrap()
                    .is_some(),
                "{old}"
            );
        }
    }

    #[test]
    fn include_outside_home_is_absolute_and_quoted_when_needed() {
        let out = plan_include(None, Path::new("/srv/ssh pair/config"), Path::new(HOME))
            .unwrap()
            .unwrap();
        assert!(out.ends_with(b"\nInclude \"/srv/ssh pair/config\"\n"));
        for bad in ["/srv/*/config", "/srv/100%/config", "relative", "/a\nb"] {
            assert!(
                plan_include(None, Path::new(bad), Path::new(HOME)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn split_args_mirrors_openssh() {
        let args = |s: &str| -> Vec<String> {
            split_args(s.as_bytes())
                .into_iter()
                .map(|a| String::from_utf8(a).unwrap())
                .collect()
        };
        assert_eq!(args("a b\t c"), vec!["a", "b", "c"]);
        assert_eq!(args("\"a b\" 'c d' e\\ f"), vec!["a b", "c d", "e f"]);
        assert_eq!(args("\"a\\\"b\" x\\y"), vec!["a\"b", "x\\y"]);
        assert_eq!(args("a #b c"), vec!["a"]);
        assert_eq!(args("\"#a\" b#c"), vec!["#a", "b#c"]);
        assert_eq!(args(""), Vec::<String>::new());
    }

    /// Runs ssh -G (which prints the configuration ssh would use, without connecting) on a user
    /// config holding Host blocks, and our Include of git-pair's config inserted at the top.
    /// Skipped, with a message, where ssh is missing.
    #[test]
    fn ssh_reads_our_include_and_host_block() {
        let tmp = TempHome::new();
        let pair_config = tmp.path().join("pair config");
        let known = tmp.path().join("known_hosts");
        let id = tmp.path().join("id 50%");
        // `home` is elsewhere, so every path is written absolute and can be checked as such.
        let home = Path::new("/nonexistent-home");
        let b = HostBlock::new(
            "git-pair-x",
            "fe80::2%veth0",
            2222,
            "bob",
            &id,
            &known,
            home,
        )
        .unwrap();
        std::fs::write(&pair_config, plan_host(b"Host other\n  User nobody\n", &b)).unwrap();
        let user_config = tmp.path().join("config");
        let old = b"Host *\n    User wronguser\n    Port 1\n    StrictHostKeyChecking no\n";
        let with_include = plan_include(Some(old), &pair_config, home)
            .unwrap()
            .unwrap();
        std::fs::write(&user_config, with_include).unwrap();
        let out = match std::process::Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(&user_config)
            .arg("git-pair-x")
            .output()
        {
            Ok(out) => out,
            Err(err) => {
                crate::ssh_files::test_keys::skip(&format!("ssh is not runnable ({err})"));
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let has = |line: &str| stdout.lines().any(|l| l == line);
        for line in [
            "hostname fe80::2%veth0".to_owned(),
            "port 2222".to_owned(),
            "user bob".to_owned(),
            // -G shows IdentityFile before %-expansion, which happens when the key is loaded.
            format!(
                "identityfile {}",
                id.display().to_string().replace('%', "%%")
            ),
            "identitiesonly yes".to_owned(),
            "hostkeyalias git-pair-x".to_owned(),
            format!("userknownhostsfile {}", known.display()),
            "stricthostkeychecking true".to_owned(),
            "updatehostkeys false".to_owned(),
            "preferredauthentications publickey".to_owned(),
        ] {
            assert!(has(&line), "missing {line:?} in\n{stdout}");
        }
    }

    fn alias_free(old: &[u8]) -> bool {
        host_block_ranges(old, "git-pair-x").is_empty()
    }

    proptest! {
        /// Property: for all `old` that is empty or ends with '\n' and has no block for the
        /// alias, `plan_remove_host(plan_host(old, b), alias) == old`, and `plan_host` is
        /// idempotent.
        #[test]
        fn host_then_remove_gives_back_old(mut old in prop::collection::vec(any::<u8>(), 0..400)) {
            if !old.is_empty() && !old.ends_with(b"\n") {
                old.push(b'\n');
            }
            prop_assume!(alias_free(&old));
            let b = block("git-pair-x");
            let added = plan_host(&old, &b);
            prop_assert_eq!(plan_host(&added, &b), added.clone());
            prop_assert_eq!(plan_remove_host(&added, "git-pair-x"), old);
        }

        /// Same on config-like text (Host/Match lines, comments, CRLF, odd spacing).
        #[test]
        fn host_then_remove_on_config_like_text(parts in prop::collection::vec(
            prop::sample::select(vec![
                "Host a\n", "host=b c\n", "Match user x\n", "  User me\r\n", "# Host git-pair-x\n",
                "\n", "\t\n", "Host git-pair-xy\n", "IdentityFile \"~/my key\"\n", "Include x\n",
                "\u{e9}\n", "HostName git-pair-x\n",
            ]), 0..20)) {
            let old: Vec<u8> = parts.concat().into_bytes();
            prop_assert!(alias_free(&old));
            let b = block("git-pair-x");
            let added = plan_host(&old, &b);
            prop_assert_eq!(plan_remove_host(&added, "git-pair-x"), old);
        }

        /// A refresh changes nothing outside the alias's block, whatever surrounds it.
        #[test]
        fn refresh_changes_nothing_outside_the_block(
            before in prop::collection::vec(prop::sample::select(vec![
                "Host a\n", "host=b c\n", "Match user x\n", "  User me\r\n", "# Host git-pair-x\n",
                "\n", "Host git-pair-xy\n", "HostName git-pair-x\n", "\u{e9}\n",
            ]), 0..10),
            after in prop::collection::vec(prop::sample::select(vec![
                "  User me\r\n", "\n", "Host git-pair-xy\n", "  HostName 1.2.3.4\n", "Port 1\n",
            ]), 0..10),
        ) {
            let prefix = before.concat();
            let suffix = format!("Host zzz\n{}", after.concat());
            let mut old = prefix.clone().into_bytes();
            old.extend_from_slice(recorded_block("git-pair-x").render().as_bytes());
            old.extend_from_slice(suffix.as_bytes());
            let new = plan_refresh(&old, "git-pair-x", &refresh("10.0.0.9", 2222)).unwrap();
            prop_assert!(new.starts_with(prefix.as_bytes()));
            prop_assert!(new.ends_with(suffix.as_bytes()));
            prop_assert_eq!(
                plan_refresh(&new, "git-pair-x", &refresh("10.0.0.9", 2222)).unwrap(),
                new
            );
        }

        /// For any old file: the Include goes first, the old bytes follow unchanged, and a
        /// second run finds it.
        #[test]
        fn include_prefixes_and_is_idempotent(old in prop::collection::vec(any::<u8>(), 0..400)) {
            let home = Path::new(HOME);
            if let Some(out) = plan_include(Some(&old), &target(), home).unwrap() {
                let prefix = format!("{INCLUDE_COMMENT}\nInclude ~/.ssh/git-pair/config\n");
                prop_assert_eq!(&out[..prefix.len()], prefix.as_bytes());
                prop_assert_eq!(&out[prefix.len()..], &old[..]);
                prop_assert_eq!(plan_include(Some(&out), &target(), home).unwrap(), None);
            }
        }
    }
}
