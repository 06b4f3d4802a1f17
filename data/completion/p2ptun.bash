# bash completion for p2ptun-agent, p2ptun-signal and p2ptun-relay: commands,
# and the options each program's (or command's) --help lists, so that the
# completion never lags behind the program.

# The long options that "PROGRAM [COMMAND] --help" lists.
_p2ptun_help_options()
{
    LC_ALL=C "$@" --help 2>/dev/null |
        sed -n 's/^ *\(-[A-Za-z0-9], \)\{0,1\}\(--[a-z][a-z0-9-]*\).*/\2/p' | sort -u
}

_p2ptun_complete()
{
    local cur prev prog=$1 commands="" command="" i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    case $prog in
    p2ptun-agent) commands="id serve pair enroll csr status" ;;
    p2ptun-signal) commands="enroll peers revoke tokens policy" ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        case " $commands " in
        *" ${COMP_WORDS[i]} "*) command=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $prev in
    --config|-c|--state-dir|-d|--cert|--key|--tls-cert|--tls-key|--secret-file|\
    --turn-secret-file|--client-ca)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return ;;
    --log-level)
        COMPREPLY=($(compgen -W "error warning message info debug" -- "$cur"))
        return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_p2ptun_help_options "$prog" $command)" -- "$cur"))
    elif [[ -z $command && -n $commands ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
}

complete -F _p2ptun_complete p2ptun-agent p2ptun-signal p2ptun-relay
