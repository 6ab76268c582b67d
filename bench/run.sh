#!/usr/bin/env bash
# Benchmarks hubgate against the upstream itself and against nginx (plain proxy_pass, and
# auth_request + proxy_cache), then writes BENCHMARKS.md. bench/README.md explains the matrix.
#
#   bench/run.sh                full matrix, BENCHMARKS.md in the repository root
#   bench/run.sh --quick        reduced matrix, report in the cargo target directory
#   options: --out FILE         where the report goes
#            --no-build         use the release binary that is already built
#            --keep             keep the temporary directory (configs, logs, raw output)
#            --only LIST        some scenarios only, e.g. --only a,g (a, b and d always run together)
#
# Needs cargo, and Debian's nginx-light, wrk, nghttp2-client (h2load) and openssl: missing
# packages are installed with apt-get when run as root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=0
ONLY=a,b,c,d,e,f,g
OUT=""
KEEP=0
BUILD=1
while (($#)); do
    case $1 in
    --quick) QUICK=1 ;;
    --out)
        OUT=${2:?--out needs a file}
        shift
        ;;
    --keep) KEEP=1 ;;
    --only)
        ONLY=${2:?--only needs a list}
        shift
        ;;
    --no-build) BUILD=0 ;;
    -h | --help)
        sed -n '2,14p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "bench/run.sh: unknown option $1 (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

T0=$SECONDS
log() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# ---------------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------------
if ((QUICK)); then
    RUNS=1          # runs per cell
    DURATION=2      # seconds per measured run (a, b, c, d, g)
    WORKERS=(1)     # proxy worker counts
    F_TOKENS=100000 # (f): distinct tokens pushed through hubgate
else
    RUNS=3
    DURATION=2
    WORKERS=(1 2)
    F_TOKENS=1000000
fi
B_TOKENS=10000   # (b): distinct cached tokens, rotating
E_CLIENTS=1000   # (e): concurrent first requests with one new token
CONNS=64         # connections for a, b, d and the flood
H2_CLIENTS=32    # (c): h2load connections ...
H2_STREAMS=8     # ... and concurrent streams on each
VICTIM_CONNS=16  # (g): the measured client's connections ...
VICTIM_THINK=5   # ... and its pause between requests (ms)
HUB_LATENCY=2ms  # every Hub probe (users/me) answers after this
E_LATENCY=100ms  # (e): a slower Hub, so that all first requests overlap the first probe
SIM_WORKERS=1    # the simulator's threads: one, so that it never preempts itself on one core
TTL=5m           # hubgate [cache] ttl = nginx proxy_cache_valid
TTL_NGINX=5m
# (d) never reuses a token: each run gets its own slice of the pool, sized for the most a run
# can do (64 connections, each waiting >= 2 ms for Hub: at most 32,000 new tokens per second).
D_SLICE=$((32000 * DURATION * 11 / 10))

# ---------------------------------------------------------------------------------------------
# Tools, build, temporary directory
# ---------------------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing packages: ${missing[*]} (apt-get install ${missing[*]}, or run as root)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } ||
        die "apt-get install ${missing[*]} failed"
fi
for tool in cargo taskset awk sort getconf; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/hubgate
if ((BUILD)); then
    log "building the release binary (cargo build --release --locked)"
    cargo build --release --locked --bin hubgate >&2
fi
[[ -x $BIN ]] || die "$BIN is missing (build with cargo build --release)"
BUILD_SECONDS=$((SECONDS - T0))
if [[ -z $OUT ]]; then
    if ((QUICK)); then OUT=$TARGET_DIR/bench/BENCHMARKS-quick.md; else OUT=$ROOT/BENCHMARKS.md; fi
fi
mkdir -p "$(dirname "$OUT")"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hubgate-bench.XXXXXX")
RESULTS=$WORK/results.tsv
COMMANDS=$WORK/commands.txt
: >"$RESULTS"
: >"$COMMANDS"
TICKS=$(getconf CLK_TCK)

PIDS=() # every process this script started and has not stopped yet
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if ((KEEP)); then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local keep=() pid
    for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

# wait_until SECONDS COMMAND...: polls every 0.1 s.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# Listening ports are chosen at run time, outside the ephemeral range.
read -r EPH_LO EPH_HI </proc/sys/net/ipv4/ip_local_port_range
TAKEN=" "
free_port() { # free_port VAR
    local used=" " hex _port lo=10000 hi=$((EPH_LO - 1))
    for hex in $(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk '$4 == "0A" { n = split($2, a, ":"); print a[n] }'); do
        used+="$((16#$hex)) "
    done
    if ((hi - lo < 1000)); then lo=$((EPH_HI + 1)) hi=65000; fi
    for _ in $(seq 500); do
        _port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        if [[ $used != *" $_port "* && $TAKEN != *" $_port "* ]]; then
            TAKEN+="$_port "
            printf -v "$1" "%s" "$_port"
            return 0
        fi
    done
    die "no free port"
}

# ---------------------------------------------------------------------------------------------
# Small HTTP client (bash /dev/tcp: no curl needed) and process accounting
# ---------------------------------------------------------------------------------------------
_http_raw() ( # ADDR PATH [HEADER...]
    exec 3<>"/dev/tcp/${1%:*}/${1##*:}"
    {
        printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n' "$2" "$1"
        shift 2
        for header in "$@"; do printf '%s\r\n' "$header"; done
        printf '\r\n'
    } >&3
    cat <&3
)

http_get() { # ADDR PATH [HEADER...]: sets HTTP_STATUS and HTTP_BODY
    local raw
    if ! raw=$(_http_raw "$@" 2>/dev/null); then
        HTTP_STATUS=000 HTTP_BODY=""
        return 1
    fi
    HTTP_STATUS=$(head -c 12 <<<"$raw" | awk '{print $2}')
    HTTP_BODY=${raw#*$'\r\n\r\n'}
}

http_ok() { http_get "$@" && [[ $HTTP_STATUS == 200 ]]; }

# Sum of the samples of a hubgate metric whose line starts with PREFIX.
metric() { # ADMIN PREFIX
    http_get "$1" /metrics || {
        echo 0
        return
    }
    awk -v p="$2" 'index($0, p) == 1 { s += $NF } END { printf "%d\n", s }' <<<"$HTTP_BODY"
}

sim_stats() { # ADDR: sets PROBES, REPEATED, ECHOES
    http_ok "$1" /sim/stats || die "no /sim/stats from the simulator at $1"
    PROBES=$(sed -n 's/.*"probes":\([0-9]*\).*/\1/p' <<<"$HTTP_BODY")
    REPEATED=$(sed -n 's/.*"repeated_probes":\([0-9]*\).*/\1/p' <<<"$HTTP_BODY")
    ECHOES=$(sed -n 's/.*"echoes":\([0-9]*\).*/\1/p' <<<"$HTTP_BODY")
}

children() { # PID: its child processes
    cat /proc/[0-9]*/stat 2>/dev/null |
        awk -v pp="$1" '{ pid = $1; sub(/^.*\) /, ""); if ($2 == pp) print pid }'
}

cpu_ticks() { # PID...: utime + stime (+ those of reaped children), summed
    local pid
    for pid in "$@"; do cat "/proc/$pid/stat" 2>/dev/null || true; done |
        awk '{ sub(/^.*\) /, ""); s += $12 + $13 + $14 + $15 } END { printf "%d\n", s }'
}

status_kb() { # FIELD PID...: VmHWM or VmRSS in kB, summed
    local field=$1 pid
    shift
    for pid in "$@"; do cat "/proc/$pid/status" 2>/dev/null || true; done |
        awk -v f="$field:" '$1 == f { s += $2 } END { printf "%d\n", s }'
}

# ---------------------------------------------------------------------------------------------
# CPU pinning
# ---------------------------------------------------------------------------------------------
NCPU=$(getconf _NPROCESSORS_ONLN)
if ((NCPU >= 4)); then
    LOAD1=0 SIM1=3 PROXY1=1 LOAD2=0 SIM2=3 PROXY2=1,2 DIRECT_SIM=1 DIRECT_LOAD=0
    PINNING="4+ cores: load tools on core 0, simulator on core 3, the proxy alone on core 1 (1 worker) or cores 1-2 (2 workers); direct: simulator on core 1, load tool on core 0."
elif ((NCPU == 3)); then
    LOAD1=0 SIM1=0 PROXY1=1 LOAD2=0 SIM2=0 PROXY2=1,2 DIRECT_SIM=1 DIRECT_LOAD=0
    PINNING="3 cores: load tools and simulator on core 0, the proxy alone on core 1 (1 worker) or cores 1-2 (2 workers); direct: simulator on core 1, load tool on core 0."
elif ((NCPU == 2)); then
    LOAD1=0 SIM1=0 PROXY1=1 LOAD2=0,1 SIM2=0,1 PROXY2=0,1 DIRECT_SIM=1 DIRECT_LOAD=0
    PINNING="2 cores: 1-worker cells put the proxy alone on core 1, and the load tool and the simulator together on core 0; 2-worker cells put everything (proxy, load tool, simulator) on both cores, shared; direct: simulator on core 1, load tool on core 0."
else
    LOAD1=0 SIM1=0 PROXY1=0 LOAD2=0 SIM2=0 PROXY2=0 DIRECT_SIM=0 DIRECT_LOAD=0
    PINNING="1 core: everything shares it."
fi

threads_for() { # CPU list -> load tool threads
    local cpus=$1
    if [[ $cpus == *,* ]]; then echo 2; else echo 1; fi
}

pin_sims() { # CPU list
    local pid
    for pid in "$SIM_PID" "$SLOW_PID"; do
        taskset -a -p -c "$1" "$pid" >/dev/null
    done
}

# ---------------------------------------------------------------------------------------------
# The simulators, the TLS certificate
# ---------------------------------------------------------------------------------------------
start_sim() { # NAME LATENCY TOKENS FILE: sets STARTED_PID, STARTED_ADDR
    local name=$1 out=$WORK/$1.out
    "$BIN" sim --listen 127.0.0.1:0 --fast --workers "$SIM_WORKERS" --hub-latency "$2" --bench-tokens "$3" \
        --bench-token-file "$4" >"$out" 2>"$WORK/$name.err" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    wait_until 300 grep -qs '^  fast mode:' "$out" ||
        die "the simulator did not start: $(cat "$WORK/$name.err")"
    STARTED_ADDR=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$out" | head -n 1)
    STARTED_ADDR=${STARTED_ADDR#http://}
}

# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------

# hubgate: the demo's configuration (`hubgate demo --print-config`: design.md's routes, both
# services, the simulator as upstream and Hub), with the bench's keys added.
hubgate_config() { # FILE LISTEN ADMIN UPSTREAM WORKERS TLS MISS_RATE MAX_ENTRIES ACCESS_LOG LEVEL
    local file=$1 listen=$2 admin=$3 sim=$4 workers=$5 tls=$6 miss=$7 entries=$8 access=$9 level=${10}
    local server
    server=$(printf 'workers = %s\nshutdown_timeout = "1s"' "$workers")
    if ((tls)); then
        server+=$(printf '\ntls_cert = "%s"\ntls_key = "%s"' "$WORK/tls/cert.pem" "$WORK/tls/key.pem")
    fi
    {
        # [server] is the first table: its keys go right below its header.
        "$BIN" demo --print-config "$sim" --listen "$listen" --admin "$admin" |
            awk -v server="$server" 'NR == 1 && $0 != "[server]" { exit 1 }
                { print } NR == 1 { print server }' ||
            die "hubgate demo --print-config did not start with [server]"
        cat <<EOF

[introspection]
client_miss_rate = $miss

[cache]
ttl = "$TTL"
max_entries = $entries

[log]
level = "$level"
access_log = $access
EOF
    } >"$file"
}

# nginx: proxy_pass with upstream keep-alive; with AUTH, auth_request to the same users/me probe
# hubgate uses, its answers cached by Authorization for the same TTL (200s only).
nginx_config() { # FILE DIR LISTEN UPSTREAM WORKERS TLS AUTH
    local file=$1 dir=$2 listen=$3 sim=$4 workers=$5 tls=$6 auth=$7 user="" ssl="" certs=""
    ((EUID == 0)) && user="user root;"
    if ((tls)); then
        ssl=" ssl http2"
        certs="ssl_certificate $WORK/tls/cert.pem;
        ssl_certificate_key $WORK/tls/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;"
    fi
    local cache="" protected=""
    if ((auth)); then
        cache="proxy_cache_path $dir/cache levels=1:2 keys_zone=hubauth:128m inactive=60m use_temp_path=off;"
        protected="
        # The YouTrack API needs a token valid for YouTrack, as hubgate's /api and /rest routes.
        location /api/ {
            auth_request /_auth;
            proxy_pass http://youtrack;
        }
        location /rest/ {
            auth_request /_auth;
            proxy_pass http://youtrack;
        }
        location = /_auth {
            internal;
            proxy_pass http://youtrack/api/users/me?fields=id,login,name,banned,guest;
            proxy_pass_request_body off;
            proxy_set_header Content-Length \"\";
            proxy_set_header Connection \"\";
            proxy_cache hubauth;
            proxy_cache_key \$http_authorization;
            proxy_cache_valid 200 $TTL_NGINX;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 5s;
        }"
    fi
    cat >"$file" <<EOF
$user
worker_processes $workers;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $(ulimit -n);
events {
    worker_connections 16384;
}
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    $cache
    upstream youtrack {
        server $sim;
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen $listen$ssl;
        $certs
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host \$http_host;
        location / {
            proxy_pass http://youtrack;
        }$protected
    }
}
EOF
}

# ---------------------------------------------------------------------------------------------
# Cells: one proxy process (or none, for direct) on its pinning
# ---------------------------------------------------------------------------------------------
TARGET="" CELL_W=0 PROXY_ADDR="" ADMIN_ADDR="" PROXY_PID="" LOAD_CPUS="" LOAD_THREADS=1
CELL_SIM=""

proxy_pids() {
    [[ -n $PROXY_PID ]] || return 0
    echo "$PROXY_PID"
    [[ $TARGET == nginx-* ]] && children "$PROXY_PID"
    return 0
}

# start_cell TARGET WORKERS KIND [UPSTREAM]: KIND plain | tls | flood | burst | memory | log
start_cell() {
    TARGET=$1 CELL_W=$2
    local kind=$3 sim=${4:-$SIM_ADDR} cpus port dir
    CELL_SIM=$sim
    if [[ $TARGET == direct ]]; then
        CELL_W=0
        pin_sims "$DIRECT_SIM"
        LOAD_CPUS=$DIRECT_LOAD PROXY_PID="" ADMIN_ADDR="" PROXY_ADDR=$sim
        LOAD_THREADS=$(threads_for "$LOAD_CPUS")
        return
    fi
    if ((CELL_W == 1)); then
        pin_sims "$SIM1"
        LOAD_CPUS=$LOAD1 cpus=$PROXY1
    else
        pin_sims "$SIM2"
        LOAD_CPUS=$LOAD2 cpus=$PROXY2
    fi
    LOAD_THREADS=$(threads_for "$LOAD_CPUS")
    [[ $kind == memory ]] && LOAD_THREADS=2
    local tls=0
    [[ $kind == tls ]] && tls=1
    free_port port
    PROXY_ADDR=127.0.0.1:$port
    dir=$(mktemp -d "$WORK/$TARGET-$CELL_W-$kind.XXXX")
    case $TARGET in
    hubgate)
        local miss=0 entries=1000000 access=false level=warn admin
        [[ $kind == flood || $kind == burst ]] && miss=20
        [[ $kind == memory ]] && entries=$((F_TOKENS + 100000))
        [[ $kind == log ]] && access=true level=info
        free_port admin
        ADMIN_ADDR=127.0.0.1:$admin
        hubgate_config "$dir/hubgate.toml" "$PROXY_ADDR" "$ADMIN_ADDR" "$sim" "$CELL_W" "$tls" \
            "$miss" "$entries" "$access" "$level"
        taskset -c "$cpus" "$BIN" run --config "$dir/hubgate.toml" 2>"$dir/hubgate.log" &
        PROXY_PID=$!
        PIDS+=("$PROXY_PID")
        wait_until 30 http_ok "$ADMIN_ADDR" /readyz ||
            die "hubgate did not start: $(cat "$dir/hubgate.log")"
        [[ -f $WORK/hubgate-$kind.toml ]] || cp "$dir/hubgate.toml" "$WORK/hubgate-$kind.toml"
        ;;
    nginx-proxy | nginx-auth)
        local auth=0
        [[ $TARGET == nginx-auth ]] && auth=1
        ADMIN_ADDR=""
        nginx_config "$dir/nginx.conf" "$dir" "$PROXY_ADDR" "$sim" "$CELL_W" "$tls" "$auth"
        taskset -c "$cpus" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>>"$dir/error.log" &
        PROXY_PID=$!
        PIDS+=("$PROXY_PID")
        local probe=http_ok
        ((tls)) && probe=port_open
        wait_until 30 "$probe" "$PROXY_ADDR" / || die "nginx did not start: $(cat "$dir/error.log")"
        [[ -f $WORK/$TARGET-$kind.conf ]] || cp "$dir/nginx.conf" "$WORK/$TARGET-$kind.conf"
        ;;
    esac
}

port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

stop_cell() {
    if [[ -n $PROXY_PID ]]; then stop_pid "$PROXY_PID"; fi
    PROXY_PID=""
}

# Several cells run side by side (idle ones cost nothing) and their runs take turns, so that
# a slow minute of a shared machine falls on every proxy alike.
declare -A CELLS=()
save_cell() {
    CELLS[$TARGET]="$TARGET|$CELL_W|$PROXY_ADDR|$ADMIN_ADDR|$PROXY_PID|$LOAD_CPUS|$LOAD_THREADS|$CELL_SIM"
}

use_cell() { # TARGET: makes its cell current and pins the simulators for it
    IFS='|' read -r TARGET CELL_W PROXY_ADDR ADMIN_ADDR PROXY_PID LOAD_CPUS LOAD_THREADS CELL_SIM \
        <<<"${CELLS[$1]}"
    if [[ $TARGET == direct ]]; then
        pin_sims "$DIRECT_SIM"
    elif ((CELL_W == 1)); then
        pin_sims "$SIM1"
    else
        pin_sims "$SIM2"
    fi
}

stop_cells() { # TARGET...
    local t
    for t in "$@"; do
        use_cell "$t"
        stop_cell
        unset "CELLS[$t]"
    done
}

# group_targets WORKERS TARGET...: the targets measured with this worker count (direct has
# no workers: it runs with the first worker count only)
group_targets() {
    local w=$1 t out=()
    shift
    for t in "$@"; do
        [[ $t == direct && $w != "${WORKERS[0]}" ]] && continue
        out+=("$t")
    done
    echo "${out[@]}"
}

# ---------------------------------------------------------------------------------------------
# Measuring one run
# ---------------------------------------------------------------------------------------------
M_CPU0=0 M_SIMCPU0=0 M_PROBES0=0 M_REPEATED0=0 M_STEAL0="0 0"

# steal and total jiffies of the whole machine (a VM's hypervisor taking CPU away)
steal_total() { awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

measure_begin() {
    M_STEAL0=$(steal_total)
    M_CPU0=$(cpu_ticks $(proxy_pids))
    M_SIMCPU0=$(cpu_ticks "$SIM_PID" "$SLOW_PID")
    sim_stats "$CELL_SIM"
    M_PROBES0=$PROBES M_REPEATED0=$REPEATED
}

# measure_end: sets M_CPU (ticks), M_SIMCPU, M_HWM (kB, whole cell so far), D_PROBES, D_REPEATED
measure_end() {
    local pids
    pids=$(proxy_pids)
    M_CPU=$(($(cpu_ticks $pids) - M_CPU0))
    M_SIMCPU=$(($(cpu_ticks "$SIM_PID" "$SLOW_PID") - M_SIMCPU0))
    M_HWM=$(status_kb VmHWM $pids)
    sim_stats "$CELL_SIM"
    D_PROBES=$((PROBES - M_PROBES0)) D_REPEATED=$((REPEATED - M_REPEATED0))
    local s0 t0 s1 t1
    read -r s0 t0 <<<"$M_STEAL0"
    read -r s1 t1 < <(steal_total)
    M_STEAL=$(awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", t ? s * 100 / t : 0 }')
}

# record SCENARIO RUN key=value...: one row of results.tsv
record() {
    local scenario=$1 run=$2
    shift 2
    printf '%s\t%s\t%s\t%s\t%s\n' "$scenario" "$TARGET" "$CELL_W" "$run" "$*" >>"$RESULTS"
}

per10k() { # TICKS REQUESTS -> CPU seconds per 10,000 requests
    awk -v t="$1" -v n="$2" -v hz="$TICKS" 'BEGIN { if (n > 0) printf "%.4f", t / hz / n * 10000; else print "NA" }'
}

note_command() { # SCENARIO COMMAND...: the first command of each scenario and target
    local key="$1 $TARGET"
    shift
    [[ $key == warm* ]] && return 0
    grep -qF -- "## $key" "$COMMANDS" 2>/dev/null && return 0
    local line="" arg
    for arg in "$@"; do
        [[ $arg == *"Bearer "* ]] && arg="${arg%%Bearer *}Bearer \$TOKEN"
        if [[ $arg == *\ * ]]; then line+="\"$arg\" "; else line+="$arg "; fi
    done
    line=${line% }
    line=${line//"$WORK"/\$TMP}
    line=${line//"$ROOT/"/}
    [[ -n $PROXY_ADDR && $PROXY_ADDR != "$CELL_SIM" ]] && line=${line//"$PROXY_ADDR"/\$PROXY}
    [[ -n $CELL_SIM ]] && line=${line//"$CELL_SIM"/\$SIM}
    printf '## %s\n%s\n' "$key" "$line" >>"$COMMANDS"
}

# wrk_run OUTFILE THREADS CONNS SECONDS SCRIPT PATH-ON-PROXY ARGS...: parses WRK_RESULT into W_*
wrk_run() {
    local out=$1 threads=$2 conns=$3 secs=$4 script=$5
    shift 5
    local cmd=(taskset -c "$LOAD_CPUS" wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s
        -s "$script" "http://$PROXY_ADDR" -- "$@")
    note_command "${SCEN:-}" "${cmd[@]}"
    "${cmd[@]}" >"$out" 2>&1 || die "wrk failed: $(tail -n 5 "$out")"
    wrk_parse "$out"
}

wrk_parse() {
    local line
    line=$(grep '^WRK_RESULT' "$1") || die "no result from wrk: $(tail -n 5 "$1")"
    eval "$(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); printf "W_%s=%s\n", kv[1], kv[2] } }' <<<"$line")"
    W_rps=$(awk -v n="$W_requests" -v us="$W_duration_us" 'BEGIN { printf "%.1f", n / us * 1e6 }')
}

# percentiles FILE COLUMN -> "p50 p99 max" of a column (µs)
percentiles() {
    awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 }
        END { if (NR == 0) { print "NA NA NA"; exit }
              i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
              i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
              print v[i50], v[i99], v[NR] }'
}

progress() { log "  $SCEN $TARGET w=$CELL_W run $1: $2"; }

# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------
HOT=$WORK/hot.txt
BPOOL=$WORK/b-tokens.txt
D_CURSOR=0

wrk_recorded() { # SCENARIO RUN TOKENFILE MODE: one measured wrk run of a, b or d
    local scen=$1 run=$2 file=$3 mode=$4 out=$WORK/wrk.out
    SCEN=$scen
    measure_begin
    wrk_run "$out" "$LOAD_THREADS" "$CONNS" "$DURATION" bench/tokens.lua "$file" "$mode" /api/issues "$LOAD_THREADS"
    measure_end
    local calls
    calls=$(awk -v p="$D_PROBES" -v n="$W_issued" 'BEGIN { printf "%.4f", n ? p / n : 0 }')
    record "$scen" "$run" rps="$W_rps" p50="$W_p50_us" p99="$W_p99_us" max="$W_max_us" \
        requests="$W_requests" non2xx="$W_non2xx" sockerr=$((W_connect + W_read + W_write + W_timeout)) \
        cpu10k="$(per10k "$M_CPU" "$W_requests")" simcpu10k="$(per10k "$M_SIMCPU" "$W_requests")" \
        hwm="$M_HWM" probes="$D_PROBES" repeated="$D_REPEATED" issued="$W_issued" \
        exhausted="$W_exhausted" calls="$calls" steal="$M_STEAL"
    progress "$run" "$W_rps req/s, p50 ${W_p50_us}us, p99 ${W_p99_us}us, non-2xx $W_non2xx, Hub calls $D_PROBES"
}

# warm_tokens FILE NEW: sends every token of FILE once; with a token-checking proxy, waits
# until NEW tokens were asked about (all of them cached), at most 60 s.
warm_tokens() {
    local file=$1 new=$2 out=$WORK/warm.out
    if [[ $TARGET != nginx-auth && $TARGET != hubgate ]]; then
        SCEN=warm wrk_run "$out" "$LOAD_THREADS" "$CONNS" 1 bench/tokens.lua "$file" rotate /api/issues "$LOAD_THREADS"
        return
    fi
    sim_stats "$CELL_SIM"
    local probes0=$PROBES t0=$SECONDS
    taskset -c "$LOAD_CPUS" wrk -t"$LOAD_THREADS" -c"$CONNS" -d120s -s bench/tokens.lua \
        "http://$PROXY_ADDR" -- "$file" once /api/issues "$LOAD_THREADS" >"$out" 2>&1 &
    local wpid=$!
    PIDS+=("$wpid")
    while sleep 0.2; do
        sim_stats "$CELL_SIM"
        ((PROBES - probes0 >= new)) && break
        if ! kill -0 "$wpid" 2>/dev/null || ((SECONDS - t0 > 60)); then
            log "  warning: only $((PROBES - probes0)) of $new new tokens were warmed"
            break
        fi
    done
    stop_pid "$wpid"
    sleep 0.2
}

# start_cells KIND WORKERS TARGET...: starts one worker count's cells, in the order they take
# turns (into the caller's `ts`); a clear-text cell gets one request with the hot token.
start_cells() {
    local kind=$1 workers=$2 t
    shift 2
    read -ra ts <<<"$(group_targets "$workers" "$@")"
    for t in "${ts[@]}"; do
        start_cell "$t" "$workers" "$kind"
        save_cell
        [[ $kind == tls ]] || http_get "$PROXY_ADDR" /api/issues "Authorization: Bearer $(cat "$HOT")" || true
    done
}

# interleaved FUNCTION: FUNCTION RUN on each cell of `ts` in turn, run after run.
interleaved() {
    local r t
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${ts[@]}"; do
            use_cell "$t"
            "$1" "$r"
        done
    done
}

# (a) one hot token, (b) 10,000 rotating cached tokens, (d) every request a new token.
scenario_plain() { # WORKERS
    local ts t r
    start_cells plain "$1" direct nginx-proxy nginx-auth hubgate
    for t in "${ts[@]}"; do
        use_cell "$t"
        SCEN=warm wrk_run "$WORK/warm.out" "$LOAD_THREADS" "$CONNS" 1 bench/tokens.lua "$HOT" rotate /api/issues "$LOAD_THREADS"
    done
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${ts[@]}"; do
            use_cell "$t"
            wrk_recorded a "$r" "$HOT" rotate
        done
    done

    for t in "${ts[@]}"; do
        use_cell "$t"
        warm_tokens "$BPOOL" $((B_TOKENS - 1))
    done
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${ts[@]}"; do
            use_cell "$t"
            wrk_recorded b "$r" "$BPOOL" rotate
        done
    done

    local first slice=$WORK/d-slice.txt
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${ts[@]}"; do
            use_cell "$t"
            first=$((B_TOKENS + 2))
            if [[ $TARGET == nginx-auth || $TARGET == hubgate ]]; then
                first=$((B_TOKENS + 2 + D_CURSOR * D_SLICE))
                D_CURSOR=$((D_CURSOR + 1))
            fi
            sed -n "${first},$((first + D_SLICE - 1))p" "$POOL" >"$slice"
            wrk_recorded d "$r" "$slice" once
        done
    done
    stop_cells "${ts[@]}"
}

# (c) HTTP/2 over TLS, one cached token (direct: the simulator has neither TLS nor HTTP/2,
# so its row is HTTP/1.1 in clear text with as many connections as (c) has streams).
scenario_tls() { # WORKERS
    local ts
    start_cells tls "$1" direct nginx-proxy nginx-auth hubgate
    interleaved tls_run
    stop_cells "${ts[@]}"
}

tls_run() { # RUN
    local r=$1 out=$WORK/h2load.out logf=$WORK/h2load.log cmd
    SCEN=c
    if [[ $TARGET == direct ]]; then
        cmd=(taskset -c "$LOAD_CPUS" h2load --h1 -c $((H2_CLIENTS * H2_STREAMS)) -m 1 -t "$LOAD_THREADS"
            -D "$DURATION" --warm-up-time 500ms --log-file "$logf"
            -H "authorization: Bearer $(cat "$HOT")" "http://$PROXY_ADDR/api/issues")
    else
        cmd=(taskset -c "$LOAD_CPUS" h2load -c "$H2_CLIENTS" -m "$H2_STREAMS" -t "$LOAD_THREADS"
            -D "$DURATION" --warm-up-time 500ms --log-file "$logf"
            -H "authorization: Bearer $(cat "$HOT")" "https://$PROXY_ADDR/api/issues")
    fi
    note_command c "${cmd[@]}"
    rm -f "$logf"
    measure_begin
    "${cmd[@]}" >"$out" 2>&1 || die "h2load failed: $(tail -n 5 "$out")"
    measure_end
    local rps done ok non2xx p50 p99 max cipher
    rps=$(awk '/^finished in/ { gsub(",", ""); print $4 }' "$out")
    done=$(awk '/^requests:/ { print $6 }' "$out")
    ok=$(awk '/^status codes:/ { print $3 }' "$out")
    non2xx=$((done - ok))
    read -r p50 p99 max < <(percentiles "$logf" 3)
    cipher=$(awk '/^TLS Protocol:/ { p = $3 } /^Cipher:/ { c = $2 } END { if (p != "") print p "/" c; else print "none" }' "$out")
    record c "$r" rps="$rps" p50="$p50" p99="$p99" max="$max" requests="$done" non2xx="$non2xx" \
        cpu10k="$(per10k "$M_CPU" "$done")" simcpu10k="$(per10k "$M_SIMCPU" "$done")" hwm="$M_HWM" \
        probes="$D_PROBES" tls="$cipher" steal="$M_STEAL"
    progress "$r" "$rps req/s, p50 ${p50}us, p99 ${p99}us, non-2xx $non2xx ($cipher)"
}

# (e) E_CLIENTS connections each send one request with the same new token, against a Hub
# that answers after E_LATENCY.
scenario_burst() { # TARGET WORKERS
    start_cell "$1" "$2" burst "$SLOW_ADDR"
    local r out=$WORK/h2load.out logf=$WORK/h2load.log token cmd
    SCEN=e
    for ((r = 1; r <= RUNS; r++)); do
        token=$(sed -n "${BURST_NEXT}p" "$SLOW_TOKENS")
        BURST_NEXT=$((BURST_NEXT + 1))
        cmd=(taskset -c "$LOAD_CPUS" h2load --h1 -n "$E_CLIENTS" -c "$E_CLIENTS" -t 1 --log-file "$logf"
            -H "authorization: Bearer $token" "http://$PROXY_ADDR/api/issues")
        note_command e "${cmd[@]}"
        rm -f "$logf"
        local coalesced0=0 coalesced=0
        [[ $TARGET == hubgate ]] && coalesced0=$(metric "$ADMIN_ADDR" 'hubgate_cache_lookups_total{result="coalesced"}')
        measure_begin
        "${cmd[@]}" >"$out" 2>&1 || die "h2load failed: $(tail -n 5 "$out")"
        measure_end
        [[ $TARGET == hubgate ]] && coalesced=$(($(metric "$ADMIN_ADDR" 'hubgate_cache_lookups_total{result="coalesced"}') - coalesced0))
        local done ok p50 p99 max
        done=$(awk '/^requests:/ { print $6 }' "$out")
        ok=$(awk '/^status codes:/ { print $3 }' "$out")
        read -r p50 p99 max < <(percentiles "$logf" 3)
        record e "$r" requests="$done" ok="$ok" hubcalls="$D_PROBES" p50="$p50" p99="$p99" max="$max" \
            coalesced="$coalesced" hwm="$M_HWM"
        progress "$r" "$ok of $E_CLIENTS answered 200, Hub calls $D_PROBES, p50 ${p50}us, max ${max}us"
    done
    stop_cell
}

# (g) a flood of random tokens from one client while another client's cached traffic (one
# token, VICTIM_CONNS connections pausing VICTIM_THINK ms between requests) is measured.
scenario_flood() { # WORKERS
    local ts
    start_cells flood "$1" nginx-auth hubgate
    interleaved victim_run
    interleaved flood_run
    stop_cells "${ts[@]}"
}

victim_run() { # RUN
    local r=$1 out=$WORK/victim.out
    SCEN=g
    measure_begin
    wrk_run "$out" 1 "$VICTIM_CONNS" "$DURATION" bench/victim.lua "$HOT" rotate /api/issues 1 "$VICTIM_THINK"
    measure_end
    record g-alone "$r" rps="$W_rps" p50="$W_p50_us" p99="$W_p99_us" max="$W_max_us" \
        requests="$W_requests" non2xx="$W_non2xx" hwm="$M_HWM" steal="$M_STEAL"
    progress "$r" "victim alone: $W_rps req/s, p99 ${W_p99_us}us"
}

flood_run() { # RUN
    local r=$1 out=$WORK/victim.out fout=$WORK/flood.out fpid
    SCEN=g
    local fcmd=(nice -n 10 taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d"$((DURATION + 1))s" --timeout 10s
        -s bench/flood.lua "http://$PROXY_ADDR" -- /api/issues)
    note_command g-flood "${fcmd[@]}"
    measure_begin
    "${fcmd[@]}" >"$fout" 2>&1 &
    fpid=$!
    PIDS+=("$fpid")
    sleep 0.5
    wrk_run "$out" 1 "$VICTIM_CONNS" "$DURATION" bench/victim.lua "$HOT" rotate /api/issues 1 "$VICTIM_THINK"
    local v_rps=$W_rps v_p50=$W_p50_us v_p99=$W_p99_us v_max=$W_max_us v_req=$W_requests v_non2xx=$W_non2xx
    wait "$fpid" || true
    forget_pid "$fpid"
    measure_end
    wrk_parse "$fout"
    local calls
    calls=$(awk -v p="$D_PROBES" -v n="$W_requests" 'BEGIN { printf "%.3f", n ? p / n : 0 }')
    record g-flood "$r" rps="$v_rps" p50="$v_p50" p99="$v_p99" max="$v_max" requests="$v_req" \
        non2xx="$v_non2xx" hwm="$M_HWM" flood_rps="$W_rps" flood_requests="$W_requests" \
        flood_non2xx="$W_non2xx" flood_calls="$calls" steal="$M_STEAL"
    progress "$r" "victim with flood: $v_rps req/s, p99 ${v_p99}us; flood $W_rps req/s, Hub calls per flood request $calls"
}

# (f) RSS growth per cached token after F_TOKENS distinct tokens (hubgate only).
scenario_memory() {
    start_cell hubgate 2 memory
    SCEN=f
    local out=$WORK/fill.out file=$WORK/f-tokens.txt
    sed -n "2,$((F_TOKENS + 1))p" "$POOL" >"$file"
    http_get "$PROXY_ADDR" /api/issues "Authorization: Bearer $(cat "$HOT")" || true
    SCEN=warm wrk_run "$WORK/warm.out" 2 "$CONNS" 1 bench/tokens.lua "$HOT" rotate /api/issues 2
    sleep 1
    local rss0 entries0 probes0 t0 rss1 entries1 hwm
    rss0=$(status_kb VmRSS "$PROXY_PID")
    entries0=$(metric "$ADMIN_ADDR" 'hubgate_cache_entries{kind="positive"}')
    sim_stats "$CELL_SIM"
    probes0=$PROBES
    local cmd=(taskset -c "$LOAD_CPUS" wrk -t2 -c"$CONNS" -d600s --timeout 10s -s bench/tokens.lua
        "http://$PROXY_ADDR" -- "$file" once /api/issues 2)
    note_command f "${cmd[@]}"
    t0=$SECONDS
    "${cmd[@]}" >"$out" 2>&1 &
    local wpid=$!
    PIDS+=("$wpid")
    # Done when every token was asked about, or when nothing moved for 3 s (wrk stops a thread
    # once its share is sent; a request it had under way may never be finished).
    local done=0 last=-1 still=0 secs=0
    while ((SECONDS - t0 < 400)); do
        sleep 1
        sim_stats "$CELL_SIM"
        done=$((PROBES - probes0))
        if ((done > last)); then
            last=$done still=0 secs=$((SECONDS - t0))
        else
            still=$((still + 1))
        fi
        ((done >= F_TOKENS || still >= 3)) && break
        kill -0 "$wpid" 2>/dev/null || break
        ((SECONDS % 10 == 0)) && log "  f hubgate: $done of $F_TOKENS tokens checked"
    done
    stop_pid "$wpid"
    sleep 2
    entries1=$(metric "$ADMIN_ADDR" 'hubgate_cache_entries{kind="positive"}')
    rss1=$(status_kb VmRSS "$PROXY_PID")
    hwm=$(status_kb VmHWM "$PROXY_PID")
    local per
    per=$(awk -v a="$rss0" -v b="$rss1" -v n="$((entries1 - entries0))" 'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1024 / n; else print "NA" }')
    record f 1 tokens="$done" entries0="$entries0" entries="$entries1" rss0="$rss0" rss="$rss1" hwm="$hwm" \
        bytes="$per" seconds="$secs" repeated=$((REPEATED))
    log "  f hubgate: $((entries1 - entries0)) entries, RSS ${rss0} kB -> ${rss1} kB: $per bytes per entry"
    stop_cell
}

# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
log "temporary directory: $WORK"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STEAL_RUN0=$(steal_total)
mkdir -p "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >/dev/null 2>&1 ||
    die "openssl could not make a certificate"

AUTH_D_RUNS=$((2 * ${#WORKERS[@]} * RUNS))
POOL_SIZE=$((B_TOKENS + 1 + AUTH_D_RUNS * D_SLICE))
((POOL_SIZE < F_TOKENS + 1)) && POOL_SIZE=$((F_TOKENS + 1))
POOL=$WORK/tokens.txt
log "starting the simulator (Hub latency $HUB_LATENCY, minting $POOL_SIZE tokens)"
start_sim sim "$HUB_LATENCY" "$POOL_SIZE" "$POOL"
SIM_PID=$STARTED_PID SIM_ADDR=$STARTED_ADDR
SLOW_TOKENS=$WORK/slow-tokens.txt
start_sim slow "$E_LATENCY" 64 "$SLOW_TOKENS"
SLOW_PID=$STARTED_PID SLOW_ADDR=$STARTED_ADDR
BURST_NEXT=1
head -n 1 "$POOL" >"$HOT"
head -n "$B_TOKENS" "$POOL" >"$BPOOL"
log "simulators on $SIM_ADDR (Hub $HUB_LATENCY) and $SLOW_ADDR (Hub $E_LATENCY, for e)"

cells() { # TARGET...: "target workers" lines (direct once)
    local t w
    for t in "$@"; do
        if [[ $t == direct ]]; then
            echo "direct 0"
        else
            for w in "${WORKERS[@]}"; do echo "$t $w"; done
        fi
    done
}

want() { [[ ,$ONLY, == *,$1,* ]]; }

if want a || want b || want d; then
    log "scenarios a, b, d (HTTP/1.1, wrk)"
    for w in "${WORKERS[@]}"; do scenario_plain "$w"; done
fi
if want c; then
    log "scenario c (HTTP/2 over TLS, h2load)"
    for w in "${WORKERS[@]}"; do scenario_tls "$w"; done
fi
if want e; then
    log "scenario e ($E_CLIENTS concurrent first requests)"
    while read -r t w; do scenario_burst "$t" "$w"; done < <(cells nginx-auth hubgate)
fi
if want g; then
    log "scenario g (random-token flood)"
    for w in "${WORKERS[@]}"; do scenario_flood "$w"; done
fi
if want f; then
    log "scenario f (memory per cached token, $F_TOKENS tokens)"
    scenario_memory
fi
if want a; then
    log "extra: scenario a with hubgate's access log on"
    start_cell hubgate 1 log
    http_get "$PROXY_ADDR" /api/issues "Authorization: Bearer $(cat "$HOT")" || true
    TARGET=hubgate-access-log
    for ((r = 1; r <= RUNS; r++)); do wrk_recorded a "$r" "$HOT" rotate; done
    TARGET=hubgate
    stop_cell
fi

ELAPSED=$((SECONDS - T0 - BUILD_SECONDS))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
read -r _s0 _t0 <<<"$STEAL_RUN0"
read -r _s1 _t1 < <(steal_total)
STEAL_RUN=$(awk -v s=$((_s1 - _s0)) -v t=$((_t1 - _t0)) 'BEGIN { printf "%.1f", t ? s * 100 / t : 0 }')
log "measurements done in ${ELAPSED}s; writing $OUT"
. "$ROOT/bench/report.sh"
write_report >"$OUT"
log "wrote $OUT"
