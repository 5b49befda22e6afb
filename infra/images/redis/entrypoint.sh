#!/bin/sh
# redis-server with ACL users and no anonymous access (docs/security.md): admin (everything), projector (reads and
# writes the read models; no admin commands, no FLUSHALL/FLUSHDB), reader (reads only: the CLI and the API). Their
# passwords come from REDIS_<USER>_PASSWORD or the file REDIS_<USER>_PASSWORD_FILE names; all three are required.
set -eu

password() {
    eval "value=\${REDIS_${1}_PASSWORD:-}"
    eval "file=\${REDIS_${1}_PASSWORD_FILE:-}"
    if [ -z "$value" ] && [ -n "$file" ]; then value="$(tr -d '[:space:]' <"$file")"; fi
    if [ -z "$value" ]; then
        echo "redis entrypoint: set REDIS_${1}_PASSWORD or REDIS_${1}_PASSWORD_FILE (Redis admits no anonymous client)" >&2
        exit 64
    fi
    printf '%s' "$value"
}

umask 077
acl=/tmp/users.acl
{
    # off, so no client acts as it, yet with every permission: Redis replays the AOF as the default user and drops
    # each MULTI/EXEC it may not run (redis/redis#14541), the projector's scripts' writes among them
    echo "user default off ~* &* +@all"
    echo "user admin on >$(password ADMIN) ~* &* +@all"
    echo "user projector on >$(password PROJECTOR) ~* &* +@all -@admin -flushall -flushdb"
    echo "user reader on >$(password READER) ~* &* -@all +@read +@connection +multi +exec +discard +eval_ro +evalsha_ro +script|load +script|exists"
} >"$acl"

exec redis-server --bind 0.0.0.0 --port "${REDIS_PORT:-6379}" --protected-mode no --dir /data \
    --daemonize no --logfile '' --aclfile "$acl" "$@"
