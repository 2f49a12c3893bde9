# Generated from git-pair's command line (src/cli.rs, src/completions.rs); do not edit.
# Network interfaces, for --interface.
function __fish_git_pair_interfaces
    for f in /sys/class/net/*
        string replace -r '.*/' '' -- $f
    end
end

# The remotes git pair made in this repository, for remove, refresh and sync.
function __fish_git_pair_remotes
    git config --get-regexp '^remote\..*\.pair-alias$' 2>/dev/null | string replace -rf '^remote\.(.*)\.pair-alias .*' '$1'
end

# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_git_pair_global_optspecs
    string join \n code-file= interface= port= timeout= name= ssh-port= host-key= key= peer= no-scan no-ssh-config json verify h/help V/version
end

function __fish_git_pair_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_git_pair_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_git_pair_using_subcommand
    set -l cmd (__fish_git_pair_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c git-pair -n "__fish_git_pair_needs_command" -l code-file -d 'Read the code from FILE (\'-\': the first line of standard input). Any phrase both sides type is accepted here' -r -F
complete -c git-pair -n "__fish_git_pair_needs_command" -l interface -d 'Use only this network interface (repeatable). By default every interface that is up, multicast-capable and not loopback is used; lo is used only when named' -r -f -a "(__fish_git_pair_interfaces)"
complete -c git-pair -n "__fish_git_pair_needs_command" -l port -d 'UDP port of the exchange; both sides must use the same one. [default: 28620, or git config pair.port]' -r
complete -c git-pair -n "__fish_git_pair_needs_command" -l timeout -d 'Give up after this many seconds without a verified peer' -r
complete -c git-pair -n "__fish_git_pair_needs_command" -l name -d 'Name of the new remote. By default it derives from the peer\'s host name, with a suffix if that name is taken' -r
complete -c git-pair -n "__fish_git_pair_needs_command" -l ssh-port -d 'Port on which this machine\'s sshd listens, told to the peer. git pair checks that it accepts a connection before it starts' -r
complete -c git-pair -n "__fish_git_pair_needs_command" -l host-key -d 'This machine\'s sshd public host key to advertise for the peer to pin (repeatable). [default: /etc/ssh/ssh_host_*_key.pub]' -r -F
complete -c git-pair -n "__fish_git_pair_needs_command" -l key -d 'Log in to the peer with this existing private key (its .pub beside it), instead of a dedicated ed25519 key generated for this pairing' -r -F
complete -c git-pair -n "__fish_git_pair_needs_command" -l peer -d 'Also greet this host by unicast (repeatable), for networks that drop multicast: Wi-Fi client isolation, multicast filtering, VLANs, VPNs. One side is enough' -r
complete -c git-pair -n "__fish_git_pair_needs_command" -l no-scan -d 'Do not probe the local IPv4 subnet by unicast when no peer answers multicast. [default: probe after 3 s; git config pair.scan]'
complete -c git-pair -n "__fish_git_pair_needs_command" -l no-ssh-config -d 'Do not add the Include line for git pair\'s ssh configuration to ~/.ssh/config (for a read-only one, e.g. made by home-manager); git pair\'s own files under ~/.ssh/git-pair/ are written as usual. ssh finds the new alias once the line git pair prints is in your ssh configuration. [default: git config pair.sshConfig, true]'
complete -c git-pair -n "__fish_git_pair_needs_command" -l json -d 'Print machine-readable events on standard output, one JSON object per line (see JSON EVENTS in the man page). Nothing else goes to stdout'
complete -c git-pair -n "__fish_git_pair_needs_command" -l verify -d 'Before anything is written, ask whether the check code shown on both machines is the same (y to go on). With --json, the sas event says "verify": true and the answer is one line {"verify": true} on standard input. No, no answer within 120 s, or the end of the input writes nothing on either machine'
complete -c git-pair -n "__fish_git_pair_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_needs_command" -s V -l version -d 'Print version'
complete -c git-pair -n "__fish_git_pair_needs_command" -a "join" -d 'Join the pairing shown on the other machine: type its code at a prompt'
complete -c git-pair -n "__fish_git_pair_needs_command" -a "list" -d 'List the pairings of this repository'
complete -c git-pair -n "__fish_git_pair_needs_command" -a "remove" -d 'Undo a pairing on this machine'
complete -c git-pair -n "__fish_git_pair_needs_command" -a "refresh" -d 'Find paired peers again after an address changed, and point their ssh aliases there'
complete -c git-pair -n "__fish_git_pair_needs_command" -a "watch" -d 'Answer locate queries, so that paired peers find this machine after its address changed'
complete -c git-pair -n "__fish_git_pair_needs_command" -a "sync" -d 'Sync this repository with its paired peers, without ever merging'
complete -c git-pair -n "__fish_git_pair_needs_command" -a "hooks" -d 'Install or uninstall the hooks that run `git pair sync` after each commit'
complete -c git-pair -n "__fish_git_pair_needs_command" -a "serve" -d 'The forced command in authorized_keys; sshd runs it, people do not'
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l interface -d 'Use only this network interface (repeatable). By default every interface that is up, multicast-capable and not loopback is used; lo is used only when named' -r -f -a "(__fish_git_pair_interfaces)"
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l port -d 'UDP port of the exchange; both sides must use the same one. [default: 28620, or git config pair.port]' -r
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l timeout -d 'Give up after this many seconds without a verified peer' -r
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l name -d 'Name of the new remote. By default it derives from the peer\'s host name, with a suffix if that name is taken' -r
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l ssh-port -d 'Port on which this machine\'s sshd listens, told to the peer. git pair checks that it accepts a connection before it starts' -r
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l host-key -d 'This machine\'s sshd public host key to advertise for the peer to pin (repeatable). [default: /etc/ssh/ssh_host_*_key.pub]' -r -F
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l key -d 'Log in to the peer with this existing private key (its .pub beside it), instead of a dedicated ed25519 key generated for this pairing' -r -F
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l peer -d 'Also greet this host by unicast (repeatable), for networks that drop multicast: Wi-Fi client isolation, multicast filtering, VLANs, VPNs. One side is enough' -r
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l no-scan -d 'Do not probe the local IPv4 subnet by unicast when no peer answers multicast. [default: probe after 3 s; git config pair.scan]'
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l no-ssh-config -d 'Do not add the Include line for git pair\'s ssh configuration to ~/.ssh/config (for a read-only one, e.g. made by home-manager); git pair\'s own files under ~/.ssh/git-pair/ are written as usual. ssh finds the new alias once the line git pair prints is in your ssh configuration. [default: git config pair.sshConfig, true]'
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l json -d 'Print machine-readable events on standard output, one JSON object per line (see JSON EVENTS in the man page). Nothing else goes to stdout'
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -l verify -d 'Before anything is written, ask whether the check code shown on both machines is the same (y to go on). With --json, the sas event says "verify": true and the answer is one line {"verify": true} on standard input. No, no answer within 120 s, or the end of the input writes nothing on either machine'
complete -c git-pair -n "__fish_git_pair_using_subcommand join" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_using_subcommand list" -l json -d 'Print a JSON array, one object per pairing (see LIST JSON in the man page)'
complete -c git-pair -n "__fish_git_pair_using_subcommand list" -l check -d 'Also log in to each peer with the paired key (ssh in batch mode through the pairing\'s alias, running `true`) and say whether it lets this side in. Exit status 1 if a peer does not'
complete -c git-pair -n "__fish_git_pair_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_using_subcommand remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_using_subcommand refresh" -l interface -d 'Send locate queries only on this network interface (repeatable), as for pairing' -r -f -a "(__fish_git_pair_interfaces)"
complete -c git-pair -n "__fish_git_pair_using_subcommand refresh" -l peer -d 'Also send locate queries to this host by unicast (repeatable), for networks that drop multicast' -r
complete -c git-pair -n "__fish_git_pair_using_subcommand refresh" -l port -d 'UDP port of the locate protocol; the peer\'s watch must use the same' -r
complete -c git-pair -n "__fish_git_pair_using_subcommand refresh" -l timeout -d 'Give up on a peer after this many seconds of locate queries' -r
complete -c git-pair -n "__fish_git_pair_using_subcommand refresh" -l no-scan -d 'Do not send locate queries to every address of the local IPv4 subnets when multicast gets no answer'
complete -c git-pair -n "__fish_git_pair_using_subcommand refresh" -l json -d 'Print machine-readable events on standard output, one JSON object per line (see JSON EVENTS in the man page)'
complete -c git-pair -n "__fish_git_pair_using_subcommand refresh" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_using_subcommand watch" -l interface -d 'Answer only on this network interface (repeatable). By default every interface that is up, multicast-capable and not loopback, as for pairing' -r -f -a "(__fish_git_pair_interfaces)"
complete -c git-pair -n "__fish_git_pair_using_subcommand watch" -l port -d 'UDP port of the locate protocol' -r
complete -c git-pair -n "__fish_git_pair_using_subcommand watch" -l json -d 'Print machine-readable events on standard output, one JSON object per line (see JSON EVENTS in the man page)'
complete -c git-pair -n "__fish_git_pair_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_using_subcommand sync" -l json -d 'Print JSON events on standard output, one per line (see JSON EVENTS in the man page)'
complete -c git-pair -n "__fish_git_pair_using_subcommand sync" -l hook -d 'What git pair\'s hooks run, in the background: print nothing, run one sync at a time, let commits made in quick succession coalesce into one sync, and log to .git/git-pair/sync.log. Does nothing in a repository without pairings'
complete -c git-pair -n "__fish_git_pair_using_subcommand sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall" -f -a "install" -d 'Install the hooks; installing again changes nothing'
complete -c git-pair -n "__fish_git_pair_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall" -f -a "uninstall" -d 'Uninstall the hooks and put back, byte for byte, the hooks that were there before'
complete -c git-pair -n "__fish_git_pair_using_subcommand hooks; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "__fish_git_pair_using_subcommand serve" -l repo -d 'The one repository the peer may fetch from and push to' -r -F
complete -c git-pair -n "__fish_git_pair_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-pair -n "not __fish_seen_subcommand_from join list remove refresh watch sync hooks serve" -l interface -r -f -a "(__fish_git_pair_interfaces)"
complete -c git-pair -n "__fish_git_pair_using_subcommand list" -f -a "(__fish_git_pair_remotes)"
complete -c git-pair -n "__fish_git_pair_using_subcommand remove" -f -a "(__fish_git_pair_remotes)"
complete -c git-pair -n "__fish_git_pair_using_subcommand refresh" -f -a "(__fish_git_pair_remotes)"
complete -c git-pair -n "__fish_git_pair_using_subcommand sync" -f -a "(__fish_git_pair_remotes)"
