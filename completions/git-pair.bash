# Generated from git-pair's command line (src/cli.rs, src/completions.rs); do not edit.
# Network interfaces, for --interface.
__git_pair_interfaces() {
    local f
    for f in /sys/class/net/*; do
        [ -e "$f" ] && printf '%s\n' "${f##*/}"
    done
}

# The remotes git pair made in this repository, for remove, refresh and sync.
__git_pair_remotes() {
    git config --get-regexp '^remote\..*\.pair-alias$' 2>/dev/null |
        sed -n 's/^remote\.\(.*\)\.pair-alias .*/\1/p'
}

_gitpair() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="gitpair"
                ;;
            gitpair,hooks)
                cmd="gitpair__subcmd__hooks"
                ;;
            gitpair,join)
                cmd="gitpair__subcmd__join"
                ;;
            gitpair,list)
                cmd="gitpair__subcmd__list"
                ;;
            gitpair,refresh)
                cmd="gitpair__subcmd__refresh"
                ;;
            gitpair,remove)
                cmd="gitpair__subcmd__remove"
                ;;
            gitpair,serve)
                cmd="gitpair__subcmd__serve"
                ;;
            gitpair,sync)
                cmd="gitpair__subcmd__sync"
                ;;
            gitpair,watch)
                cmd="gitpair__subcmd__watch"
                ;;
            gitpair__subcmd__hooks,install)
                cmd="gitpair__subcmd__hooks__subcmd__install"
                ;;
            gitpair__subcmd__hooks,uninstall)
                cmd="gitpair__subcmd__hooks__subcmd__uninstall"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        gitpair)
            opts="-h -V --code-file --interface --port --timeout --name --ssh-port --host-key --key --peer --no-scan --no-ssh-config --json --verify --help --version join list remove refresh watch sync hooks serve"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --code-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --interface)
                    COMPREPLY=($(compgen -W "$(__git_pair_interfaces)" -- "${cur}"))
                    return 0
                    ;;
                --port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ssh-port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --host-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --peer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__hooks)
            opts="-h --help install uninstall"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__hooks__subcmd__install)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__hooks__subcmd__uninstall)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__join)
            opts="-h --interface --port --timeout --name --ssh-port --host-key --key --peer --no-scan --no-ssh-config --json --verify --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --interface)
                    COMPREPLY=($(compgen -W "$(__git_pair_interfaces)" -- "${cur}"))
                    return 0
                    ;;
                --port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ssh-port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --host-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --peer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__list)
            opts="-h --json --check --help $(__git_pair_remotes)"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__refresh)
            opts="-h --interface --peer --port --timeout --no-scan --json --help $(__git_pair_remotes)"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --interface)
                    COMPREPLY=($(compgen -W "$(__git_pair_interfaces)" -- "${cur}"))
                    return 0
                    ;;
                --peer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__remove)
            opts="-h --help $(__git_pair_remotes)"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__serve)
            opts="-h --repo --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --repo)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__sync)
            opts="-h --json --hook --help $(__git_pair_remotes)"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        gitpair__subcmd__watch)
            opts="-h --interface --port --json --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --interface)
                    COMPREPLY=($(compgen -W "$(__git_pair_interfaces)" -- "${cur}"))
                    return 0
                    ;;
                --port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _gitpair -o nosort -o bashdefault -o default git-pair
else
    complete -F _gitpair -o bashdefault -o default git-pair
fi

# `git pair <TAB>`: git's completion (which loads this file as the completion of git-pair)
# calls _git_pair with its own words; hand them to _gitpair as if git-pair was typed.
_git_pair() {
    local at=${__git_cmd_idx:-}
    if [ -z "$at" ]; then
        for ((at = 1; at < ${#words[@]}; at++)); do
            [ "${words[at]}" = pair ] && break
        done
    fi
    local COMP_WORDS=("git-pair" "${words[@]:at+1}")
    local COMP_CWORD=$((cword - at))
    _gitpair git-pair "$cur" "${COMP_WORDS[COMP_CWORD-1]}"
    # git's completion runs with -o nospace: end each whole word with a space, as git's own
    # completions do (not directories, which go on with a /).
    local i
    for i in "${!COMPREPLY[@]}"; do
        [ -d "${COMPREPLY[i]}" ] || COMPREPLY[i]+=" "
    done
}
