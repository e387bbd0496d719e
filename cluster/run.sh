#!/usr/bin/env bash
# make run-cluster: a local PostgreSQL, two wijgate replicas on it and a
# load balancer in front, serving the demo of `make run` on
# http://localhost:8080. Ctrl-C stops all of it.
#
#   PostgreSQL   .data/cluster/pg (Debian's postgresql package, pg_ctl),
#                a Unix socket only, in a folder of its own under /tmp
#   replica a    127.0.0.1:8081, admin localhost:2019 (the operator
#                commands' default), also serves the eHerkenning simulator
#   replica b    127.0.0.1:8082, admin localhost:2020
#   balancer     http://localhost:8080, admin localhost:2021, and the demo
#                apps on localhost:9101-9103
#
# PostgreSQL refuses to run as root; as root it runs as the postgres user
# of Debian's package.
set -euo pipefail

cd "$(dirname "$0")/.."
checkout=$PWD
bin=$checkout/bin/wijgate
data=$checkout/.data/cluster
mkdir -p "$data"

pgbin=$(dirname "$(readlink -f "$(command -v pg_ctl 2>/dev/null || true)")" 2>/dev/null || true)
if [ ! -x "$pgbin/pg_ctl" ]; then
	pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$pgbin" ] || [ ! -x "$pgbin/pg_ctl" ]; then
	echo "run-cluster: no PostgreSQL server found; install Debian's postgresql package (apt-get install postgresql)" >&2
	exit 1
fi

pgdata=$data/pg
as_postgres=()
if [ "$(id -u)" = 0 ]; then
	if ! id postgres >/dev/null 2>&1; then
		echo "run-cluster: as root, PostgreSQL runs as the postgres user of Debian's postgresql package; install it (apt-get install postgresql)" >&2
		exit 1
	fi
	as_postgres=(runuser -u postgres --)
	if ! runuser -u postgres -- test -x "$data"; then
		# The checkout is out of the postgres user's reach (under /root,
		# say): the database lives in a folder of its own, which
		# .data/cluster/pg points to.
		if [ ! -L "$pgdata" ]; then
			rm -rf "$pgdata"
			ln -s "$(mktemp -d /var/tmp/wijgate-cluster-pg.XXXXXX)" "$pgdata"
		fi
		pgdata=$(readlink "$pgdata")
	fi
fi
mkdir -p "$pgdata"
chmod 700 "$pgdata"
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$pgdata"
fi
socket=$(mktemp -d /tmp/wijgate-cluster-sock.XXXXXX)
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$socket"
fi

# pg runs one of PostgreSQL's programs, as the postgres user when we are
# root, from / (the checkout may be out of that user's reach).
pg() {
	(cd / && "${as_postgres[@]}" "$pgbin/$1" "${@:2}")
}

pids=()
stop() {
	trap - INT TERM EXIT
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if pg pg_ctl -D "$pgdata" status >/dev/null 2>&1; then
		pg pg_ctl -D "$pgdata" -w -m fast stop >/dev/null
	fi
	rm -rf "$socket"
	echo "run-cluster: stopped"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

if [ ! -f "$pgdata/PG_VERSION" ]; then
	echo "run-cluster: creating the database folder $pgdata"
	pg initdb -D "$pgdata" -U postgres -A trust -E UTF8 --no-locale >"$data/initdb.log"
fi
# No TCP port: only this machine's users who can open the socket folder
# reach the database.
pg pg_ctl -D "$pgdata" -l "$pgdata/server.log" -w -t 60 \
	-o "-k $socket -c listen_addresses=''" start >/dev/null
if [ "$(pg psql -h "$socket" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'wijgate'")" != 1 ]; then
	pg createdb -h "$socket" -U postgres wijgate
fi
echo "run-cluster: PostgreSQL $("$pgbin/pg_ctl" --version | awk '{print $3}') on $socket, data and log in $pgdata"

export WIJGATE_DATA=$data
export WIJGATE_DATABASE="postgres://postgres@/wijgate?host=$socket&sslmode=disable"

# wait_for waits until something listens on 127.0.0.1:port.
wait_for() {
	for _ in $(seq 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$2" 2>/dev/null; then
			echo "run-cluster: the process for port $1 ended; see its log above" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "run-cluster: nothing listens on port $1 after 30 s" >&2
	exit 1
}

# Each process in a process group of its own (job control): Ctrl-C
# reaches this script only, which stops them in order.
set -m
# The balancer first: the replicas load the broker's metadata through it;
# replica a before b, since a serves the simulator.
declare -A names
"$bin" run --config cluster/balancer.Caddyfile --adapter caddyfile &
pids+=($!)
names[$!]=balancer
wait_for 8080 $!
for replica in a:8081:2019 b:8082:2020; do
	IFS=: read -r name port admin <<<"$replica"
	WIJGATE_REPLICA=$name WIJGATE_PORT=$port WIJGATE_ADMIN=localhost:$admin \
		"$bin" run --config cluster/replica.Caddyfile --adapter caddyfile &
	pids+=($!)
	names[$!]="replica $name"
	wait_for "$port" $!
done

cat <<EOT
run-cluster: ready on http://localhost:8080 (the balancer), replica a
(pid ${pids[1]}) on 127.0.0.1:8081 and b (pid ${pids[2]}) on 127.0.0.1:8082;
each answer names its replica in X-Wijgate-Replica. The outbox is at
http://localhost:8080/dev/mail. Ctrl-C stops the replicas, the balancer
and PostgreSQL.
EOT
# A replica that ends (try kill -9) leaves the other serving; the demo
# ends with the balancer or the last replica.
running=("${pids[@]}")
while :; do
	ended=
	wait -n -p ended "${running[@]}" || true
	[ -n "$ended" ] || continue
	echo "run-cluster: ${names[$ended]} (pid $ended) ended"
	rest=()
	for pid in "${running[@]}"; do
		[ "$pid" = "$ended" ] || rest+=("$pid")
	done
	running=("${rest[@]}")
	if [ "${names[$ended]}" = balancer ] || [ "${#running[@]}" -le 1 ]; then
		exit 1
	fi
	echo "run-cluster: the balancer sends every request to the other replica"
done
