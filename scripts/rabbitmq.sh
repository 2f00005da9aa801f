#!/usr/bin/env bash
# Start or stop a throwaway RabbitMQ node (Debian's rabbitmq-server) for the AMQP parity tests.
#
#   scripts/rabbitmq.sh start [DIR]   boot a node with everything under DIR (default: a new temp
#                                     folder), wait for the AMQP port, print the URL and the line
#                                     to export so the interop suite reuses it
#   scripts/rabbitmq.sh stop DIR      stop that node and its private epmd, remove DIR
#
# The pytest suite does this by itself (tests/amqp_interop/rabbitmq_node.py); this script is for
# humans who run the suite repeatedly and do not want to wait ~20 s for a boot every time:
#
#   eval "$(scripts/rabbitmq.sh start | tail -1)"
#   FIRTH_AMQP_TARGET=rabbitmq python -m pytest tests/amqp_interop -q
#
# The node uses loopback only, its own Erlang cookie (HOME=DIR), its own epmd port and none of
# /etc/rabbitmq; see rabbitmq_node.py for why each variable is set.
set -euo pipefail

SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

node_env() {
    local dir=$1
    # shellcheck disable=SC1091
    source "$dir/ports"
    export HOME="$dir" ERL_EPMD_PORT="$EPMD_PORT" ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_NODENAME="firth-test-$NODE_ID@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$NODE_PORT" RABBITMQ_DIST_PORT="$DIST_PORT"
    export RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log"
    export RABBITMQ_CONFIG_FILE="$dir/rabbitmq" RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
}

start() {
    [ -x "$SERVER" ] || { echo "install rabbitmq-server first (apt-get install -y rabbitmq-server)" >&2; exit 1; }
    local dir=${1:-$(mktemp -d /tmp/firth-rabbitmq-XXXXXX)}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    cat > "$dir/ports" <<PORTS
NODE_ID=$$
NODE_PORT=$(free_port)
DIST_PORT=$(free_port)
EPMD_PORT=$(free_port)
PORTS
    : > "$dir/rabbitmq-env.conf"
    : > "$dir/rabbitmq.conf"
    echo "[]." > "$dir/enabled_plugins"
    node_env "$dir"
    setsid "$SERVER" > "$dir/server.log" 2>&1 < /dev/null &
    echo $! > "$dir/group"
    local url="amqp://guest:guest@127.0.0.1:$RABBITMQ_NODE_PORT/"
    for _ in $(seq 450); do
        if python3 - "$RABBITMQ_NODE_PORT" <<'PY' 2>/dev/null; then
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)
s.settimeout(2)
s.sendall(b"AMQP\x00\x00\x09\x01")
data = s.recv(8)
sys.exit(0 if data[:1] == b"\x01" else 1)  # a connection.start method frame
PY
            echo "RabbitMQ node up in $dir"
            echo "stop it with: $0 stop $dir"
            echo "export FIRTH_AMQP_RABBITMQ_URL=$url"
            return 0
        fi
        if ! kill -0 "$(cat "$dir/group")" 2>/dev/null; then
            echo "rabbitmq-server exited:" >&2; tail -30 "$dir/server.log" >&2; exit 1
        fi
        sleep 0.2
    done
    echo "RabbitMQ did not answer within 90 s; log: $dir/server.log" >&2
    exit 1
}

stop() {
    local dir=${1:?usage: $0 stop DIR}
    [ -f "$dir/ports" ] || { echo "$dir holds no node started by this script" >&2; exit 1; }
    node_env "$dir"
    local group
    group=$(cat "$dir/group")
    kill -TERM -- "-$group" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 -- "-$group" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL -- "-$group" 2>/dev/null || true
    epmd -kill > /dev/null 2>&1 || true
    rm -rf "$dir"
    echo "stopped"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: $0 start [DIR] | stop DIR" >&2; exit 2 ;;
esac
