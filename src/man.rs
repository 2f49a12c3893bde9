//! The man page, generated from the clap definition in [`crate::cli`] plus
//! the sections clap cannot know: the protocol, the files, the JSON events,
//! the exit statuses. `tests/man.rs` fails when the checked-in
//! `man/git-pair.1` differs from what this renders.

use clap::CommandFactory;
use roff::{bold, italic, roman, Inline, Roff};

use crate::cli::Cli;
use crate::events::{self, Reason};
use crate::exit::Exit;
use crate::protocol::codec::{MAX_DATAGRAM, VERSION as WIRE_VERSION};
use crate::protocol::locate;
use crate::protocol::machine::{
    AMPLIFICATION, CODES_DIFFER_AFTER, FLAT_RETRANSMITS, HELLO_INITIAL, HELLO_MAX, HELLO_STEADY,
    MAX_FAILURES, OUTCOME_MAX, OUTCOME_QUIET, RTO_INITIAL, RTO_MAX, RTO_MIN, RTT_FACTOR,
    SCAN_AFTER, SCAN_PACE, TYPED_PEERS_AFTER, VERIFY_GRACE, VERIFY_WITHIN,
};
use crate::transport::neighbour::MIRROR_AFTER;
use crate::transport::{DEFAULT_PORT, GROUP_V4, GROUP_V6};

fn ms(d: std::time::Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn section(roff: &mut Roff, title: &str) {
    roff.control("SH", [title]);
}

fn para(roff: &mut Roff, text: &str) {
    roff.control("PP", []).text([roman(text)]);
}

fn item(roff: &mut Roff, tag: Vec<Inline>, text: &str) {
    roff.control("TP", []).text(tag).text([roman(text)]);
}

fn code(roff: &mut Roff, lines: &[&str]) {
    roff.control("PP", [])
        .control("RS", ["4"])
        .control("nf", []);
    for l in lines {
        roff.text([roman(*l)]);
    }
    roff.control("fi", []).control("RE", []);
}

/// The whole page.
pub fn render() -> Vec<u8> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd)
        .title("GIT-PAIR")
        .section("1")
        .source(format!("git-pair {}", env!("CARGO_PKG_VERSION")))
        .manual("Git Manual");
    let mut out = Vec::new();
    type Render = fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>;
    let head: [Render; 2] = [
        clap_mangen::Man::render_title,
        clap_mangen::Man::render_name_section,
    ];
    let body: [Render; 2] = [
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
    ];
    for render in head {
        render(&man, &mut out).expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(synopsis().render().as_bytes());
    for render in body {
        render(&man, &mut out).expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(extra().render().as_bytes());
    out
}

/// One argument as the SYNOPSIS and COMMANDS show it: `--long VALUE`, optional in brackets,
/// `...` when it may be repeated; a positional as its value name.
fn usage_of(a: &clap::Arg) -> Vec<Inline> {
    let value = a
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
    let repeated = matches!(a.get_action(), clap::ArgAction::Append);
    let mut out = Vec::new();
    let optional = !a.is_required_set();
    if optional {
        out.push(roman("["));
    }
    match a.get_long() {
        None => out.push(italic(value)),
        Some(long) => {
            out.push(bold(format!("--{long}")));
            if a.get_action().takes_values() {
                out.push(roman(" "));
                out.push(italic(value));
            }
        }
    }
    if optional {
        out.push(roman("]"));
    }
    if repeated {
        out.push(roman("..."));
    }
    out
}

/// The pairing options shared by `git pair` and `git pair join`, in SYNOPSIS form.
fn pairing_options() -> Vec<Inline> {
    let mut out = Vec::new();
    for a in Cli::command().get_arguments() {
        let id = a.get_id().as_str();
        if a.is_positional() || matches!(id, "help" | "version" | "code_file") {
            continue;
        }
        out.push(roman(" "));
        out.extend(usage_of(a));
    }
    out
}

/// SYNOPSIS: each way to run git pair on its own line, with the values options take (clap's
/// own synopsis shows neither, and lists the commands as `[subcommands]`).
fn synopsis() -> Roff {
    let mut r = Roff::new();
    section(&mut r, "SYNOPSIS");
    let line = |r: &mut Roff, words: Vec<Inline>| {
        r.control("br", []).text(words);
    };
    let options = || vec![roman(" ["), italic("options"), roman("]")];
    let mut first = vec![bold("git pair")];
    first.extend(pairing_options());
    line(&mut r, first);
    let mut join = vec![bold("git pair join")];
    join.extend(options());
    line(&mut r, join);
    let mut with_code = vec![bold("git pair")];
    with_code.extend(options());
    with_code.extend([roman(" "), italic("CODE")]);
    line(&mut r, with_code);
    let mut with_file = vec![bold("git pair")];
    with_file.extend(options());
    with_file.extend([roman(" "), bold("--code-file"), roman(" "), italic("FILE")]);
    line(&mut r, with_file);
    for (name, sub) in listed_commands() {
        if name == "join" {
            continue;
        }
        let mut w = vec![bold(format!("git pair {name}"))];
        for a in sub.get_arguments().filter(|a| a.get_id() != "help") {
            w.push(roman(" "));
            w.extend(usage_of(a));
        }
        line(&mut r, w);
    }
    r
}

/// The commands with their names; one with commands of its own (`git pair hooks`) is listed
/// as each of them (`hooks install`, `hooks uninstall`).
fn listed_commands() -> Vec<(String, clap::Command)> {
    let mut out = Vec::new();
    for sub in Cli::command().get_subcommands() {
        let nested: Vec<_> = sub
            .get_subcommands()
            .map(|n| (format!("{} {}", sub.get_name(), n.get_name()), n.clone()))
            .collect();
        if nested.is_empty() {
            out.push((sub.get_name().to_string(), sub.clone()));
        } else {
            out.extend(nested);
        }
    }
    out
}

/// The subcommands, described here rather than as separate pages.
fn commands(r: &mut Roff) {
    section(r, "COMMANDS");
    for (name, sub) in listed_commands() {
        let mut tag = vec![bold(format!("git pair {name}"))];
        if name == "join" {
            tag.push(roman(" ["));
            tag.push(italic("options"));
            tag.push(roman("]"));
        } else {
            for a in sub.get_arguments().filter(|a| a.get_id() != "help") {
                tag.push(roman(" "));
                tag.extend(usage_of(a));
            }
        }
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(|s| s.to_string())
            .unwrap_or_default();
        item(r, tag, &about);
    }
}

fn extra() -> Roff {
    let mut r = Roff::new();
    commands(&mut r);

    section(&mut r, "EXAMPLES");
    para(&mut r, "On the first machine, in the repository:");
    code(
        &mut r,
        &[
            "$ git pair",
            "  pairing code:  535 - bulb - fog - baby",
            "  On the other machine, run:  git pair join",
        ],
    );
    para(
        &mut r,
        "On the second machine, in its repository, type the code at the prompt (Tab completes each \
         word after three letters):",
    );
    code(
        &mut r,
        &[
            "$ git pair join",
            "Code from the other machine (Tab completes words): 535-bulb-fog-baby",
            "Paired. Try: git fetch laptop",
        ],
    );
    para(
        &mut r,
        "On a network that drops multicast, one side names the other:",
    );
    code(&mut r, &["$ git pair join --peer server.lan"]);
    para(
        &mut r,
        "A program driving git-pair, with the code kept out of the process list:",
    );
    code(
        &mut r,
        &["$ printf '%s' \"$code\" | git pair --code-file - --json"],
    );
    para(
        &mut r,
        "Asking the user to compare the check code before anything is written, and later checking that \
         the peer still lets this side in:",
    );
    code(
        &mut r,
        &[
            "$ git pair join --verify",
            "Verified bob@desk:/home/bob/notes at 10.0.0.2 (check code on both machines: 123 456)",
            "Do the check codes match on both machines? Type y and Enter if they do (anything else: stop, write nothing):",
            "y",
            "Paired. Try: git fetch desk",
            "$ git pair list --check desk",
        ],
    );
    para(
        &mut r,
        "git pair CODE also works, for scripts, but the code is then in the process list of this \
         machine (ps, /proc/PID/cmdline) for as long as git pair runs, and in the shell's history: \
         any other user of the machine can read it, and race to join the other side first. Prefer \
         git pair join, --code-file or GIT_PAIR_CODE. A CODE on the command line must have the shape \
         of a code (its number, then its words); any other word is refused with the nearest command, \
         so that a mistyped command never starts a pairing.",
    );

    section(&mut r, "HOW IT WORKS");
    para(
        &mut r,
        "A pairing code is a public channel number and secret words, e.g. 535-bulb-fog-baby: \
         the words of a generated code are three of 1024, 30 bits. Only machines announcing the same \
         channel number try to verify each other. Any other phrase both sides type works too; its \
         leading number, if any, is the channel.",
    );
    para(
        &mut r,
        "Both sides run the same symmetric protocol; neither is the initiator. Each announces a random \
         16-byte session id on its channel. For every new peer on the channel a side starts a fresh SPAKE2 \
         run (Ed25519 group, symmetric mode; the password is the code's words and the identity is \
         \"git-pair/v3 channel=N\"). From the SPAKE2 key, HKDF-SHA256 with both session ids as salt derives \
         separate keys for each direction's confirmation, payload, end message and acknowledgement tags, a \
         short authentication string, and a long-term pair secret. Each side sends its payload in pieces, each sealed on its own \
         with ChaCha20-Poly1305, so that a forged piece is dropped without spoiling the real ones. When the \
         peer's payload has opened, git-pair checks that the peer's sshd answers a TCP connection (its \
         SYN-ACK; the connection is reset before the handshake ends, so the sshd starts nothing for it); only then \
         does it send its confirmation: HMAC-SHA256 under its own direction's key over both session ids, \
         both SPAKE2 messages and both payloads, its own first. A side is verified when it has checked the \
         peer's confirmation in constant time; nothing is written before that.",
    );
    para(
        &mut r,
        &format!(
            "Then the pairing ends in two phases. Each side (with --verify, once its user confirmed that the \
             check strings match) takes the lock on ~/.ssh/git-pair, picks the remote's name from the \
             remotes the repository has at that moment, writes everything, and tells the other how that went \
             in an end message sealed under the session's end keys: ready, declined (the user did not \
             confirm), or failed with the reason. A side keeps its setup once the peer said ready; if the \
             peer declined or failed, it undoes its own setup too (see FILES) and says why. \
             If the peer goes quiet for {} s (or {} s pass in all) without saying, the setup is kept and git \
             pair says plainly that the other side may not be set up and how to check (git pair list --check \
             NAME). A refusal before verification (the peer's sshd does not answer, its key already opens \
             another repository here) is such a sealed end as well. Only the holder of the code can seal one: \
             nothing an outsider sends ends a session, and the peer's words are shown only from a sealed end.",
            OUTCOME_QUIET.as_secs(),
            OUTCOME_MAX.as_secs()
        ),
    );
    para(
        &mut r,
        &format!(
            "A recording of the exchange allows no offline test of a guessed code. Each session in which a \
             side sends key-derived data gives the other end one guess; at most {MAX_FAILURES} such sessions \
             may fail (or be pending) per run, after which git pair stops with \"someone may be guessing your \
             code\". A session that got key material must verify within {} s, and one from which nothing but \
             datagrams that do not open (another code, or forgeries) arrived for {} s has failed. When every \
             machine that answered has failed and no new one appears for {} s, both sides stop: the codes \
             differ.",
            VERIFY_WITHIN.as_secs(),
            VERIFY_GRACE.as_secs(),
            CODES_DIFFER_AFTER.as_secs()
        ),
    );

    section(&mut r, "PROTOCOL");
    para(
        &mut r,
        "The full specification, complete enough to implement a peer that pairs with git pair (the \
         code's normalization, every datagram's encoding, SPAKE2, the key schedule, nonces and associated \
         data, the MAC's layout, the end messages, the payload's schema and limits, the timers, the locate \
         protocol), with recorded exchanges to test against, is doc/PROTOCOL.md in git-pair's source \
         (/usr/share/doc/git-pair/PROTOCOL.md in the Debian package). In short:",
    );
    item(
        &mut r,
        vec![bold("Discovery")],
        &format!(
            "UDP port {DEFAULT_PORT} (--port, git config pair.port). Multicast group {GROUP_V4} (TTL 1) and \
             {GROUP_V6} (hop limit 1), joined and sent on each chosen interface explicitly. Announcements go \
             out at once, then after {}, doubling to every {} (a side given its code keeps its first \
             {HELLO_STEADY} intervals at {}). When nothing has been heard for {} s, git pair \
             also greets every address of each interface's IPv4 subnet (at most a /24 per interface) by \
             unicast, one every {}, and again every 10 s (--no-scan, pair.scan=false turn this off). --peer \
             hosts are greeted by unicast from the start. Replies go by unicast to the source of what was heard; \
             while this machine's kernel has not resolved that address on the link (ARP, IPv6 neighbour \
             discovery: a lost request is sent again only after a second) {} after the first reply to it, \
             each reply is also copied to the group on that address's interface, from the same socket, so \
             every host on the LAN sees those copies (all of them sealed or, for the SPAKE2 message, safe to \
             see).",
            ms(HELLO_INITIAL),
            ms(HELLO_MAX),
            ms(HELLO_INITIAL),
            SCAN_AFTER.as_secs(),
            ms(SCAN_PACE),
            ms(MIRROR_AFTER)
        ),
    );
    item(
        &mut r,
        vec![bold("Messages")],
        &format!(
            "One JSON object per datagram, at most {MAX_DATAGRAM} bytes, with \"v\":{WIRE_VERSION}: hello, \
             pake (SPAKE2, symmetric mode, Ed25519), data (the payload in pieces, each sealed on its own with \
             ChaCha20-Poly1305), confirm (HMAC-SHA256 over the whole transcript), ack, and end (how a side \
             ended: ready, refused, declined or failed, sealed). Every directed message acknowledges what its \
             sender has, with a tag under the session keys once the sender has them (an acknowledgement \
             without a valid tag is not believed, so nobody who merely sees the session ids can stop a \
             resend), and each side resends what is missing after a timeout, doubling up to {} (before a \
             measurement and on a LAN only after the first {FLAT_RETRANSMITS} retransmissions): {} until \
             a round trip is measured, then {RTT_FACTOR} times the shortest measured, at least {} and at most \
             {}. The TCP check of the peer's sshd opens fresh connections paced by the same timeout. Version \
             2 replaced version 1's forgeable abort message with the sealed end, and version 3 added the \
             acknowledgement tags; the versions do not talk to each other, and a run that finds no peer but \
             heard a side of another version on its channel says so. \
             An address that has not shown that it receives (by echoing this side's SPAKE2 message) gets at \
             most {AMPLIFICATION} times the bytes it sent. A hello says whether its side generated the code: \
             a side that generated its code runs no SPAKE2 with another that did, and a side given its code \
             runs one with another side given its code only {} after it started (many pairings at once on \
             one channel would otherwise spend each other's guesses).",
            ms(RTO_MAX),
            ms(RTO_INITIAL),
            ms(RTO_MIN),
            ms(RTO_INITIAL),
            ms(TYPED_PEERS_AFTER)
        ),
    );
    item(
        &mut r,
        vec![bold("Ending")],
        &format!(
            "A verified side that lacks the peer's end waits while the peer keeps sending; if the peer goes \
             quiet for {} s (or after {} s in all), git pair keeps its own setup and says that the peer may \
             not be set up.",
            OUTCOME_QUIET.as_secs(),
            OUTCOME_MAX.as_secs()
        ),
    );
    item(
        &mut r,
        vec![bold("Locate")],
        &format!(
            "git pair refresh and git pair watch use UDP port {} (--port) and the same multicast groups, with \
             binary queries and answers authenticated with HMAC-SHA256 under keys derived from the pair \
             secret. Answers bind the query's fresh nonce, and queries do not name the pairing.",
            locate::PORT
        ),
    );
    item(
        &mut r,
        vec![bold("Payload")],
        "user, host, path (the absolute repository path), user_key (the OpenSSH public key the sender logs in \
         with), host_keys (its sshd host keys), ssh_port, addresses, and, when the repository is a git-annex \
         repository, annex_uuid and annex_shell (whether git-annex-shell is installed on the sender). The \
         sealed plaintext is the payload's JSON, a zero byte, and the eight 32-byte re-pair proofs (see \
         SECURITY).",
    );

    section(&mut r, "FILES");
    item(
        &mut r,
        vec![bold("~/.ssh/authorized_keys")],
        "One line per paired peer: restrict,command=\"<git-pair> serve --repo <repository>\" <peer key> \
         git-pair:<marker> <peer>. Every other line is kept byte for byte; re-pairing the same two \
         repositories replaces the line.",
    );
    item(
        &mut r,
        vec![bold("~/.ssh/config")],
        "Gets one line, Include ~/.ssh/git-pair/config, at the top (an Include after a Host line would only \
         apply to that host). Nothing else in it changes. Removing the last pairing takes the two lines \
         out again, unless they were moved or edited. When the line is already there (added by hand or by \
         a tool such as home-manager) the file is not written at all. A ~/.ssh/config git pair may not \
         write (a symlink into a read-only store) stops a pairing before the network, with the line to \
         add; --no-ssh-config (or pair.sshConfig false) pairs without touching it and prints the line.",
    );
    item(
        &mut r,
        vec![bold("~/.ssh/git-pair/config")],
        "One Host block per pair, named git-pair-<host>-<id> (the peer's host name reduced to letters, \
         digits, - and _, and eight random hex digits chosen on this machine): HostName, Port, User, IdentityFile, \
         IdentitiesOnly yes, HostKeyAlias, UserKnownHostsFile ~/.ssh/git-pair/known_hosts, \
         StrictHostKeyChecking yes. The first git fetch is therefore verified without a prompt. Comment \
         lines in the block (# git-pair-repo, # git-pair-remote, # git-pair-marker) record which \
         repository and remote it belongs to, so that git pair list and git pair remove find a pairing \
         even after its remote was deleted by hand. git pair refresh adds # git-pair-refreshed <time> \
         <method>: when it last found the peer, and how (mdns, address or locate).",
    );
    item(
        &mut r,
        vec![bold("~/.ssh/git-pair/known_hosts")],
        "The peer's pinned sshd host keys, under the pair's alias.",
    );
    item(
        &mut r,
        vec![bold("~/.ssh/git-pair/id_<alias>, id_<alias>.pub")],
        "The dedicated ed25519 key of a pairing (mode 0600), unless --key named another.",
    );
    item(
        &mut r,
        vec![bold("~/.ssh/git-pair/secret_<alias>")],
        "The pairing's pair secret (mode 0600): 32 bytes both sides derived from the SPAKE2 key, with this \
         side's role in the pairing and its sshd port. git pair refresh and git pair watch prove the pairing \
         with it when a peer has to be found again. It is never written into a repository or shown; git pair \
         remove deletes it. Pairings made by a git pair that did not store it have none.",
    );
    item(
        &mut r,
        vec![bold("remote.<name>.*")],
        "In the repository's config: url (<alias>:<peer path>), fetch, and the pairing's records \
         pair-alias, pair-peer (user@host:path), pair-key (the peer key's SHA256 fingerprint), \
         pair-host-keys, pair-address, pair-identity and pair-time. Between two git-annex repositories \
         also annex-uuid (the peer's) and annex-cost 175 (unless already set): cheaper than an \
         ordinary ssh remote, as git-annex's own pairing did.",
    );
    para(
        &mut r,
        &format!(
            "Files under ~/.ssh are written atomically (temporary file, fsync, rename) under a lock \
             (~/.ssh/git-pair/.lock), with mode 0600 (0700 for directories git pair creates). Everything a \
             pairing writes, the repository's config included, is written as one unit, journaled (see \
             ~/.ssh/git-pair/journal): if any step fails, or Ctrl-C arrives, every file is restored byte for \
             byte. The lock is held only while writing (the names, the remote's among \
             them, are chosen under it), never while waiting for the peer; another git pair of the same \
             user waits for it at most {} s. If the peer then says that its side failed or was declined, \
             the pairing is undone under the lock again: a file that still holds what it wrote gets its \
             exact bytes back (the repository's config too), and one that another pairing changed since \
             loses only this pairing's lines. The code is never written anywhere.",
            crate::commands::pair::LOCK_WITHIN.as_secs()
        ),
    );
    item(
        &mut r,
        vec![bold("~/.ssh/git-pair/journal")],
        "Exists only while a pairing (or a removal) is being written: before the first file changes, the \
         previous bytes and mode of every file it touches, and a digest of the new bytes, are fsynced here \
         (mode 0600; it may hold a key or pair secret that the change replaces, as those files did). The \
         commit deletes it. If git pair is killed, or the machine stops, before that, the next git pair \
         command (any but serve) puts back every file that still holds what the interrupted run wrote, \
         removes its temporary files (.<name>.git-pair-<hex>.tmp) and private keys left without their \
         .pub, and says so on stderr. A file that someone changed after the interruption is left as it is, \
         with a warning naming it (git pair list and git pair remove deal with what is left). A journal \
         that cannot be read is moved aside to journal.unreadable-<time>, never acted upon. The lock is a \
         flock, which ends with the process that held it: a killed run never blocks the next one. The \
         repository's config is changed the way git changes it (config.lock, then rename), so a git \
         command writing it at the same moment makes the pairing fail cleanly instead of losing either \
         change.",
    );

    section(&mut r, "PAIRS OVER TIME");
    para(
        &mut r,
        "Pairing the same two repositories again replaces the old pairing: the remote keeps its name, its \
         fetch settings and its remote-tracking branches and gets the new address and keys; the old ssh \
         alias, pinned host keys, pair secret, key files and authorized_keys line are replaced in the same \
         transaction, so \
         no duplicate is left. \"The same\" is proven, not claimed: the peer must prove the old pairing's \
         pair secret, or its sshd a host key pinned for the old pairing (see SECURITY); a peer that cannot \
         gets a new pairing beside the old one, and git pair says so. A peer that reinstalled its sshd \
         (new host keys) still proves the pair secret; one that also lost it (or paired before git pair \
         stored pair secrets) gets a new pairing: git pair remove the old one. One repository may be paired with several peers, and several repositories on \
         one machine with the same peer: each pairing has its own key, alias and authorized_keys line. A \
         login key can open only one repository (sshd uses the first matching authorized_keys line), so a \
         peer that offers, with --key, a key already paired with another repository here is refused before \
         anything is written.",
    );
    para(
        &mut r,
        "git pair remove NAME undoes one pairing on this machine: the peer's authorized_keys line, the ssh \
         alias and its pinned host keys, the pair secret, the pairing's own key files (unless another \
         pairing uses them) and \
         the remote. Run it on both machines. A pairing whose remote was deleted by hand is listed by git \
         pair list as orphaned and removed the same way; removing what is already gone is not an error.",
    );
    para(
        &mut r,
        "Bare repositories are supported: the peer's remote points at the bare repository itself, and the \
         forced command serves it like any other.",
    );
    section(&mut r, "FINDING A PEER AGAIN");
    para(
        &mut r,
        "A pairing stores the peer's address once, as HostName in its ssh alias. When the peer gets \
         another address (a new DHCP lease), git fetch fails until git pair refresh finds it again. It \
         tries, in this order: the peer's host name under .local, which resolves where nss-mdns or avahi \
         answers multicast DNS, and then keeps working wherever the peer goes; the HostName the alias has \
         now; and locate queries, which git pair watch on the peer answers with its current addresses. \
         Queries and answers are authenticated with the pair secret both machines derived when they \
         paired, so no one else can answer for the peer. Whatever is found must then hold the pinned host \
         key: git pair runs ssh with the pairing's known_hosts and StrictHostKeyChecking yes, and \
         changes HostName (and Port, if the peer's sshd moved) only when ssh verified the key; nothing \
         else in the alias changes. A peer that proves the pair secret but whose sshd shows another host \
         key is refused (exit status 4): a changed address never changes trust. git pair list shows where \
         each alias points and when and how it was last refreshed.",
    );
    para(
        &mut r,
        "git pair watch runs in the foreground for one user and answers for every pairing of that user \
         (the pair secrets in ~/.ssh/git-pair), noticing pairings made or removed while it runs. To run \
         it whenever you are logged in, enable the systemd user unit installed with git pair:",
    );
    code(
        &mut r,
        &[
            "$ systemctl --user enable --now git-pair-watch.service",
            "$ loginctl enable-linger \"$USER\"    # optional: also while you are not logged in",
        ],
    );
    para(
        &mut r,
        "It listens on every interface that is up and multicast-capable; to choose, run systemctl --user \
         edit git-pair-watch.service and add a line ExecStart= (which clears the unit's) and then \
         ExecStart=/usr/local/bin/git-pair watch --interface IFACE (the path scripts/install used). On a host \
         where several users run it, multicast queries reach each of them, but a unicast query (--peer, \
         the subnet probe) reaches only one. An attacker on the LAN can flood it or drop its datagrams, \
         and so delay a refresh, but cannot make it answer, use more memory, or do more than the rate \
         limit's work. Pairings made by a git pair that did not store pair secrets cannot be located: pair \
         them again.",
    );
    section(&mut r, "GIT-ANNEX");
    para(
        &mut r,
        "In a git-annex repository (one with annex.uuid), the payload carries the annex UUID, and a remote \
         paired with another git-annex repository gets remote.<name>.annex-uuid and annex-cost. git annex \
         sync --content, get, copy and whereis then work over the paired remote at once. When git-annex-shell \
         is missing on the peer, git pair says so and how to install it; git annex needs it on both \
         machines. git-annex-shell records changes in git on the machine that serves, so that machine \
         needs a git identity (git config --global user.email) as for any commit. The peer reaches \
         git-annex-shell only in a repository that already is a git-annex repository: a plain \
         repository stays plain whatever the peer pushes (run git annex init in it first to use \
         git-annex over the pairing).",
    );
    sync_sections(&mut r);
    section(&mut r, "LIST JSON");
    para(
        &mut r,
        "git pair list --json prints one JSON array, with one object per pairing, on one line. The fields are \
         stable; new ones may be added. When it fails (not in a repository, an unreadable file), stdout \
         instead holds one JSON object, the failed event of git pair --json: {\"v\":1, \"event\":\"failed\", \
         \"reason\", \"message\"}. The fields of a pairing:",
    );
    for (name, text) in crate::commands::list::JSON_FIELDS {
        item(&mut r, vec![bold(name)], text);
    }
    section(&mut r, "JSON EVENTS");
    para(
        &mut r,
        &format!(
            "git pair --json is a versioned protocol for programs that drive git pair as an external helper \
             (the git-annex assistant, a GUI, a script). Standard output carries one JSON object per line and \
             nothing else; human messages go to standard error. Every object has \"v\":{} (the protocol \
             version: fields may be added within a version, never changed or removed) and \"event\". Strings \
             that came from the peer are sanitized. Give the code with --code-file - on standard input, or \
             GIT_PAIR_CODE, so that it never shows in the process list. A successful pairing prints, in \
             order:",
            events::VERSION
        ),
    );
    for (name, text) in [
        ("code", "{\"code\"}: only when git pair generated the code; show it to the other user."),
        ("listening", "{\"interfaces\", \"port\", \"groups\"}."),
        ("peer", "{\"address\"}: a machine on the same channel answered; not yet verified. Once per peer."),
        ("verified", "{\"peer\": {\"user\", \"host\", \"path\"}, \"address\"}: the peer holds the code; address is its sshd."),
        ("sas", "{\"sas\", \"verify\"}: a six-digit check string, the same on both machines. With --verify, \"verify\" is true and git pair now reads the answer from standard input, one JSON line: {\"verify\": true} when the user confirmed that the strings match, {\"verify\": false} when not. Anything else, the end of the input, or no answer within 120 s counts as false: nothing is written on either machine (reason declined here, peer_declined there). With --code-file -, the code is the first line of standard input and the answer the next one."),
        ("remote", "{\"name\", \"url\", \"alias\"}: the remote was added; with \"replaced\" (the remote of the earlier pairing it replaced in place, when the peer proved it is the same) and \"not_replaced\" ({\"remotes\", \"reason\"}: earlier pairings that claim the same peer and were left as they are, because it did not prove it) when they apply."),
        ("paired", "{\"remote\", \"alias\", \"peer\", \"address\"} and, as in remote, \"replaced\" and \"not_replaced\": the last line of a success."),
    ] {
        item(&mut r, vec![bold(name)], text);
    }
    para(&mut r, "Other events:");
    item(
        &mut r,
        vec![bold("verify_failed")],
        "{\"address\", \"failures\", \"limit\"}: a peer's code differs (or someone guessed); the run goes on.",
    );
    item(
        &mut r,
        vec![bold("timeout")],
        "{\"seconds\"}: no peer before --timeout; followed by failed.",
    );
    item(
        &mut r,
        vec![bold("failed")],
        "{\"reason\", \"message\"}: the last line of a failure. Reasons:",
    );
    r.control("RS", []);
    for (_, name, text) in Reason::ALL {
        item(&mut r, vec![italic(name)], text);
    }
    r.control("RE", []);
    para(
        &mut r,
        "git pair refresh --json prints, for each pairing: host_key_differs when an address answers with \
         another host key (not used); listening when it starts sending locate queries; located when a \
         peer's watch answered; then refreshed or not_refreshed. A failure ends with failed, as above.",
    );
    for (name, text) in [
        ("host_key_differs", "{\"remote\", \"alias\", \"address\"}: an sshd there does not hold the pinned host key."),
        ("located", "{\"remote\", \"alias\", \"address\", \"addresses\", \"ssh_port\"}: an authenticated answer, sent from address, listing the peer's addresses and sshd port."),
        ("refreshed", "{\"remote\", \"alias\", \"host_name\", \"port\", \"method\", \"changed\"}: the alias reaches the peer at host_name; method is mdns, address or locate; changed says whether the alias was changed."),
        ("not_refreshed", "{\"remote\", \"alias\", \"reason\", \"message\"}: the alias was left as it was; reason is no_peer, host_key_changed, no_pair_secret or error."),
    ] {
        item(&mut r, vec![bold(name)], text);
    }
    para(
        &mut r,
        "git pair watch --json prints watching {\"interfaces\", \"port\", \"groups\", \"pairings\"} when it \
         starts, pairings {\"pairings\"} when the pairings it answers for change, answered {\"alias\", \
         \"address\"} for each answer, and stopped {\"received\", \"answered\", \"dropped\", \
         \"rate_limited\", \"unauthenticated\"} when a signal stops it.",
    );
    sync_events(&mut r);

    section(&mut r, "EXIT STATUS");
    for (exit, text) in Exit::ALL {
        item(&mut r, vec![bold(exit.code().to_string())], text);
    }

    section(&mut r, "ENVIRONMENT");
    item(
        &mut r,
        vec![bold("GIT_PAIR_CODE")],
        "The code, when neither CODE nor --code-file is given.",
    );
    item(
        &mut r,
        vec![bold("HOME")],
        "Where ~/.ssh is; it should be the home directory in the passwd database, which ssh reads.",
    );
    item(
        &mut r,
        vec![bold("SSH_ORIGINAL_COMMAND")],
        "Read by git pair serve: the command the peer asked sshd to run.",
    );
    item(
        &mut r,
        vec![bold(crate::sync::git::SYNC_ENV)],
        "Set to 1 in everything git pair sync runs; git pair's hooks start no sync when they \
         see it (a fast-forward runs post-merge, git annex sync commits).",
    );
    item(
        &mut r,
        vec![bold("GIT_SSH_COMMAND, GIT_SSH")],
        &format!(
            "git pair sync runs ssh as GIT_SSH_COMMAND (or core.sshCommand, or ssh) followed by {}. \
             A GIT_SSH program is used as it is.",
            crate::sync::git::SSH_OPTIONS
        ),
    );

    section(&mut r, "CONFIGURATION");
    item(
        &mut r,
        vec![bold("pair.port")],
        "The UDP port, when --port is not given.",
    );
    item(
        &mut r,
        vec![bold("pair.scan")],
        "false turns the unicast subnet probe off, like --no-scan.",
    );
    item(
        &mut r,
        vec![bold("pair.sshConfig")],
        "false pairs without adding the Include line to ~/.ssh/config, like --no-ssh-config (for a \
         configuration managed by another tool, e.g. home-manager).",
    );
    item(
        &mut r,
        vec![bold("annex.synccontent")],
        "In a git-annex repository, true makes git pair sync run git annex sync --content. As for \
         git-annex itself, the repository's git config wins over git annex config.",
    );

    section(&mut r, "SECURITY");
    para(
        &mut r,
        "git pair protects against an attacker on the LAN who sees, sends, drops and replays datagrams but \
         does not know the code: no offline guessing, at most three online guesses per run, nothing written \
         before both sides verified, payloads encrypted, sshd host keys pinned instead of trusted on first \
         use, and the peer confined to the one repository. Nothing it forges ends a session or is shown as \
         the peer's words, forged payload pieces cost nothing, and it cannot make git pair send a spoofed \
         address more than three times what it sent. Such an attacker can stop a pairing, never complete \
         one. Compare the check string (sas) on both machines for extra assurance, or let --verify ask \
         for it before anything is written.",
    );
    para(
        &mut r,
        "A verified peer is still a stranger. It can reach its one repository through git and git-annex, \
         and nothing else on this machine: no configuration, no hooks, no other pairing, no file of ours \
         and no terminal. Every name a pairing is written under (ssh alias, key files, pinned host keys, \
         pair secret, authorized_keys marker) is chosen from this machine's randomness, never from the \
         peer, and git pair refuses to overwrite what belongs to another pairing. A peer key that \
         authorized_keys already lets in, on another pairing's line or on a line git pair did not write, \
         is refused on both sides before anything is written; git pair never drops or edits a line it did \
         not write. A peer that claims the same user@host:path as an earlier pairing replaces it only when \
         it proves that pairing's pair secret (an HMAC-SHA256 under the secret over \"git-pair re-pair \
         proof v1\" and both session ids, sender first, in its encrypted payload; each side sends eight \
         such values, one per pair secret of its repository's pairings and the rest random), or when its \
         sshd proves, in a real ssh key exchange at its address checked by ssh itself with that \
         pairing's pinned known_hosts, that it holds a host key pinned for that pairing (and the new \
         pairing pins it again); otherwise the new pairing is made beside the old one, under its own remote name, \
         and git pair says so (the remote and paired events carry not_replaced). Peer strings with control \
         characters, peer addresses that are this machine (0.0.0.0, ::) and a peer annex UUID equal to \
         this repository's own are refused, naming the field.",
    );
    para(
        &mut r,
        &format!(
            "The peer's key runs only git pair serve, which allows git-upload-pack, git-receive-pack, \
             git-upload-archive and, in a git-annex repository (one that has annex.uuid in its own \
             config when the request arrives), git-annex-shell's content commands ({}) on the paired \
             repository, never through a shell and always with git-pair's canonical path. \
             git-annex-shell also runs under GIT_ANNEX_SHELL_DIRECTORY and GIT_ANNEX_SHELL_LIMITED, \
             and its options and fields are checked against the ones git-annex sends; gcryptsetup, \
             which rewrites the repository's config, is refused, and so is every git-annex-shell \
             command in a plain repository, which git-annex-shell would otherwise make a git-annex \
             repository, with hooks and settings from a branch the peer pushed. git and \
             git-annex-shell start with an empty environment plus HOME, PATH, USER, LOGNAME, SHELL, \
             LANG, LC_*, TZ and GIT_PROTOCOL (only as version=N), so that no variable an sshd's \
             AcceptEnv lets through (XDG_CONFIG_HOME, LD_PRELOAD, GIT_DIR, ...) changes what they \
             read or run. The command \"true\", which git-annex sends to warm its ssh connection \
             cache, succeeds without running anything. Everything else is refused.",
            crate::commands::serve::allowed_annex_commands().join(", ")
        ),
    );

    section(&mut r, "SEE ALSO");
    para(
        &mut r,
        "git-remote(1), ssh(1), sshd(8), ssh_config(5), git-annex(1)",
    );
    r
}

/// SYNC and HOOKS: what `git pair sync` does, its hooks, queue and log.
fn sync_sections(r: &mut Roff) {
    use crate::sync::{git, hooks, queue};
    section(r, "SYNC");
    para(
        r,
        "git pair sync keeps a repository in step with its paired peers the way git annex sync does, \
         but never merges. For the checked-out branch B and all paired peers at once (or only NAME):",
    );
    for (tag, text) in [
        (
            "1.",
            "fetch every branch of the peer into refs/remotes/<peer>/;",
        ),
        (
            "2.",
            "fast-forward B to the newest of the peers' B and synced/B that contains it (when two \
             peers are ahead on different lines, the first one's), if the work tree has no \
             uncommitted changes to tracked files; git itself refuses to overwrite an untracked \
             file. A bare repository's B moves only if it did not move meanwhile;",
        ),
        (
            "3.",
            "push B to refs/heads/synced/B on each peer, never forced. The peer's own B, checked \
             out there, is never touched: the peer's next sync fast-forwards it;",
        ),
        ("4.", "print one line per peer with its outcome."),
    ] {
        item(r, vec![roman(tag)], text);
    }
    para(
        r,
        "Histories that have diverged are reported and left alone on both sides: merge or rebase, \
         then sync again. A detached HEAD, a branch without commits and a synced/ branch are \
         refused with a message. In a git-annex repository (one with annex.uuid) git pair sync first \
         checks which peers answer (git ls-remote), then runs git annex sync with those remotes, \
         with --content when annex.synccontent is true; git-annex merges as it always does.",
    );
    para(
        r,
        &format!(
            "ssh runs in batch mode with a {} s connect timeout, so a peer that is off costs seconds. \
             A peer that cannot be reached is refreshed once, as git pair refresh NAME would (its .local \
             name, the alias's address, then locate queries by multicast for at most {} s, without the \
             subnet sweep; see FINDING A PEER AGAIN), and tried again when found; otherwise it is \
             reported as unreachable and the other peers are synced all the same. Outcomes, in the \
             text and in the sync_peer event:",
            git::CONNECT_TIMEOUT_SECS,
            crate::commands::sync::REFRESH_TIMEOUT.as_secs()
        ),
    );
    r.control("RS", []);
    for (_, name, text) in crate::sync::plan::Outcome::ALL {
        item(r, vec![italic(name)], text);
    }
    r.control("RE", []);

    section(r, "HOOKS");
    para(
        r,
        &format!(
            "git pair hooks install puts {} into the directory git runs hooks from (core.hooksPath, \
             else .git/hooks); their scripts are the project's git-hooks/ folder, built into the \
             binary, with the path of the installing git-pair binary filled in. Each starts git pair \
             sync --hook in the background and returns at once: a commit never waits for a sync and \
             never fails because of one, and nothing is printed. post-checkout does so only on a \
             switch of branch.",
            hooks::HOOKS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    para(
        r,
        &format!(
            "A hook already there is renamed to <hook>{suffix} (its bytes, mode and symlink kept) and \
             git pair's hook runs it first, with the same arguments, and exits with its status. \
             Installing again changes nothing. git pair hooks uninstall removes git pair's hooks and \
             renames the earlier ones back, byte for byte. A git pair hook edited by hand is left \
             alone, with a message. git pair remove of the last pairing offers to uninstall them (at a \
             terminal) or says how.",
            suffix = hooks::SAVED_SUFFIX
        ),
    );
    para(
        r,
        &format!(
            "git pair sync --hook leaves a request in .git/git-pair/sync.pending and takes the lock \
             .git/git-pair/sync.lock if it is free; otherwise the process holding it sees the request. \
             The holder waits until no request has come for {} ms (at most {} s), syncs, and loops \
             while requests came in meanwhile, so commits made in quick succession share one sync and \
             the last commit always gets one. A git pair sync run by hand waits for it. Each run logs \
             timestamped lines to .git/git-pair/{} in the common git directory; past {} MiB the log \
             is started afresh and the old one kept as sync.log.old. Text from peers and from git is \
             sanitized there too.",
            queue::QUIET.as_millis(),
            queue::MAX_WAIT.as_secs(),
            queue::LOG,
            queue::LOG_LIMIT >> 20
        ),
    );
}

/// The JSON events of `git pair sync --json`.
fn sync_events(r: &mut Roff) {
    para(
        r,
        "git pair sync --json prints one sync_peer event per peer, then sync_done; or failed \
         (reason usage or error) when it could not sync at all:",
    );
    item(
        r,
        vec![bold("sync_peer")],
        "{\"remote\", \"outcome\" (see SYNC), \"pushed\": whether commits were pushed to the peer's \
         synced branch, \"fast_forwarded\": whether this branch was fast-forwarded to the peer's \
         commit, \"message\": the line a person would read}.",
    );
    item(
        r,
        vec![bold("sync_done")],
        "{\"branch\", \"commit\": the branch's commit now, \"annex\": whether git annex sync ran, \
         \"status\": the exit status}: the last line.",
    );
}
