# Sourced by bench/run.sh: turns $RESULTS (one row per run) into BENCHMARKS.md.
# Rows: scenario <TAB> target <TAB> workers <TAB> run <TAB> key=value ...

# vals SCENARIO TARGET WORKERS KEY: the values of KEY, one per run.
vals() {
    awk -F'\t' -v s="$1" -v t="$2" -v w="$3" -v k="$4" '
        $1 == s && $2 == t && $3 == w {
            n = split($5, kv, " ")
            for (i = 1; i <= n; i++) {
                j = index(kv[i], "=")
                if (substr(kv[i], 1, j - 1) == k && substr(kv[i], j + 1) != "NA") print substr(kv[i], j + 1)
            }
        }' "$RESULTS"
}

# stat SCENARIO TARGET WORKERS KEY -> "median min max sum count" (NA when there is no run)
stat() {
    vals "$@" | sort -g | awk '{ v[NR] = $1; s += $1 }
        END {
            if (NR == 0) { print "NA NA NA NA 0"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            print m, v[1], v[NR], s, NR
        }'
}

med() { stat "$@" | awk '{ print $1 }'; }

# calc EXPR [name=value...]: awk arithmetic, NA when an input is NA
calc() {
    local expr=$1
    shift
    local args=() kv
    for kv in "$@"; do
        [[ ${kv#*=} == NA || -z ${kv#*=} ]] && {
            echo NA
            return
        }
        args+=(-v "$kv")
    done
    awk "${args[@]}" "BEGIN { print $expr }"
}

int() { [[ $1 == NA ]] && echo NA || printf '%.0f' "$1"; }
ms() { [[ $1 == NA ]] && echo NA || awk -v u="$1" 'BEGIN { printf (u < 10000 ? "%.2f" : "%.1f"), u / 1000 }'; }
mb() { [[ $1 == NA ]] && echo NA || awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
x2() { [[ $1 == NA ]] && echo NA || printf '%.2f' "$1"; }

label() {
    case $1 in
    direct) echo "direct (no proxy)" ;;
    nginx-proxy) echo "nginx proxy" ;;
    nginx-auth) echo "nginx auth" ;;
    hubgate) echo "**hubgate**" ;;
    hubgate-access-log) echo "hubgate, access log on" ;;
    *) echo "$1" ;;
    esac
}

cells_for() { # SCENARIO -> "target workers" present in the results, in table order
    local t w
    for t in direct nginx-proxy nginx-auth hubgate hubgate-access-log; do
        for w in 0 1 2; do
            awk -F'\t' -v s="$1" -v t="$t" -v w="$w" '$1 == s && $2 == t && $3 == w { f = 1 } END { exit !f }' "$RESULTS" &&
                echo "$t $w"
        done
    done
    return 0
}

# verdict OK(1/0) TEXT
verdict() { if [[ $1 == 1 ]]; then echo "met"; else echo "**missed**"; fi; }

ge() { [[ $1 != NA && $2 != NA ]] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
le() { [[ $1 != NA && $2 != NA ]] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
lt() { [[ $1 != NA && $2 != NA ]] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

machine_section() {
    local model mem os
    model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    os=$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || echo unknown)
    local commit="unknown" dirty=""
    if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
        # The report itself is being written (the shell has already truncated it): not a change.
        local spec=(.)
        [[ $OUT == "$ROOT"/* ]] && spec+=(":(exclude)${OUT#"$ROOT"/}")
        [[ -n $(git -C "$ROOT" status --porcelain -- "${spec[@]}" 2>/dev/null) ]] &&
            dirty=" (with uncommitted changes)"
    fi
    cat <<EOF
## Machine and versions

| | |
|---|---|
| CPU | ${model:-unknown}, $NCPU online cores |
| memory | $mem |
| OS, kernel | $os, Linux $(uname -r) |
| hubgate | $("$BIN" --version), commit $commit$dirty, \`cargo build --release\` (thin LTO) |
| Rust | $(rustc --version 2>/dev/null || echo unknown) |
| nginx | $(nginx -v 2>&1 | sed 's/^nginx version: //') (Debian nginx-light) |
| wrk | $(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }') |
| h2load | $(h2load --version 2>&1 | head -n 1) |
| OpenSSL | $(openssl version) |
| load average | $LOAD_BEFORE before the run, $LOAD_AFTER after; $STEAL_RUN % of all CPU time stolen by the hypervisor during the run |

EOF
}

setup_section() {
    cat <<EOF
## What was measured

- **direct**: the load tool straight to the simulator's YouTrack echo — the limit.
- **nginx proxy**: nginx \`proxy_pass\` with upstream keep-alive, no token check.
- **nginx auth**: nginx \`auth_request\` to the same \`/api/users/me\` probe hubgate uses, the
  probe's answers kept in \`proxy_cache\` keyed on \`\$http_authorization\` (200 only, for
  \`$TTL_NGINX\`, \`proxy_cache_lock on\` so that concurrent first requests wait for one probe),
  upstream keep-alive. \`/api/\` and \`/rest/\` are protected, as in hubgate's routes.
- **hubgate**: \`hubgate run\` with the routes of \`hubgate demo\`, \`[cache] ttl = "$TTL"\`.

Upstream and Hub are one simulator process with one thread,
\`hubgate sim --fast --workers $SIM_WORKERS --hub-latency $HUB_LATENCY\`:
the YouTrack echo answers a fixed 28-byte JSON body, every \`users/me\` probe answers after
$HUB_LATENCY; token checks are those of the normal simulator. Scenario (e) uses a second
simulator process whose Hub answers after $E_LATENCY (so that all first requests overlap the
first probe). Load: wrk (HTTP/1.1 keep-alive; a Lua \`request()\` builds every request, the
same script for one token or many), h2load (HTTP/2 over TLS, and the burst of e).

Settings worth knowing:

- hubgate \`[log] access_log = false\` (nginx: \`access_log off\`); one extra row of (a) has
  hubgate's access log on (written to a file). \`[log] level = "warn"\`.
- hubgate \`introspection.client_miss_rate = 0\` in a, b, c, d, f: all load comes from one
  address (127.0.0.1), and warming 10,000 tokens, or (d)'s stream of new tokens, is exactly
  what the per-client budget exists to refuse. (e) and (g) keep the default (20 per second).
- hubgate \`[server] workers\` = nginx \`worker_processes\` = the "workers" column.
- (f): \`cache.max_entries = $((F_TOKENS + 100000))\` so that all $F_TOKENS tokens stay cached.
- nginx: \`keepalive_requests 1000000\` (clients and upstream), \`keepalive 256\` upstream
  connections, \`worker_connections 16384\`; TLS for both: the same self-signed P-256
  certificate, TLS 1.3 negotiated by h2load.

Pinning (\`taskset\`): $PINNING The second simulator (e) follows the first.
In (g) the flooding wrk runs at \`nice 10\`, so that the measured client is not starved by the
attacker's tool on the shared core (on a real network they would be different machines).

Each cell: $RUNS run(s) of $DURATION s after a warm-up; the tables show the median and, in
brackets, min–max. The proxies of one worker count run side by side (an idle one costs
nothing) and take turns run by run — run 1 of every proxy, then run 2, … — so that a slow
stretch of a shared machine falls on all of them alike. Latencies are wrk's (or, for h2load, computed from its per-request log).
CPU is utime + stime from \`/proc/PID/stat\` of the proxy (nginx: master and every worker,
cache manager and loader), per 10,000 answered requests. Peak RSS is \`VmHWM\` (nginx: summed
over its processes, shared memory counted in each) since the proxy process started; a, b and
d run in that order in one process per proxy and worker count, c and g in processes of their own.

EOF
}

main_table() {
    echo "## Throughput and latency (a–d)"
    echo
    echo "Scenarios: (a) one hot cached token, $CONNS connections; (b) $B_TOKENS distinct cached"
    echo "tokens rotating, $CONNS connections; (c) HTTP/2 over TLS, one cached token, $H2_CLIENTS"
    echo "connections × $H2_STREAMS streams; (d) every request a new valid token (the miss"
    echo "path), Hub answering after $HUB_LATENCY, $CONNS connections."
    echo
    echo "| scenario | proxy | workers | req/s | p50 ms | p99 ms | CPU s / 10k req | peak RSS MB | notes |"
    echo "|---|---|---|---|---|---|---|---|---|"
    local s t w
    for s in a b c d; do
        while read -r t w; do
            local rps p50 p99 cpu hwm notes="" n2 sim
            read -r rps rmin rmax _ <<<"$(stat "$s" "$t" "$w" rps)"
            read -r p99 pmin pmax _ <<<"$(stat "$s" "$t" "$w" p99)"
            p50=$(med "$s" "$t" "$w" p50)
            cpu=$(med "$s" "$t" "$w" cpu10k)
            hwm=$(stat "$s" "$t" "$w" hwm | awk '{ print $3 }')
            n2=$(stat "$s" "$t" "$w" non2xx | awk '{ print $4 }')
            [[ $n2 != NA && $n2 != 0 ]] && notes+="non-2xx: $(int "$n2"); "
            if [[ $t == direct ]]; then
                sim=$(med "$s" "$t" "$w" simcpu10k)
                cpu="—"
                hwm="—"
                notes+="simulator CPU $sim s/10k; "
                [[ $s == c ]] && notes+="HTTP/1.1 clear text, $((H2_CLIENTS * H2_STREAMS)) connections (no TLS/h2 in the simulator); "
            else
                hwm=$(mb "$hwm")
            fi
            if [[ $s == d && ($t == hubgate || $t == nginx-auth) ]]; then
                notes+="Hub calls per request $(med d "$t" "$w" calls), repeated calls $(stat d "$t" "$w" repeated | awk '{ print $4 }'); "
                [[ $(stat d "$t" "$w" exhausted | awk '{ print $4 }') != 0 ]] && notes+="token slice ran out (req/s understated); "
            fi
            local steal
            steal=$(stat "$s" "$t" "$w" steal | awk '{ print $3 }')
            ge "$steal" 1 && notes+="up to $steal % CPU stolen by the hypervisor; "
            if [[ $s == c && $t != direct ]]; then
                notes+="$(vals c "$t" "$w" tls | head -n 1); "
            fi
            [[ $w == 0 ]] && w="—"
            echo "| $s | $(label "$t") | $w | $(int "$rps") ($(int "$rmin")–$(int "$rmax")) | $(ms "$p50") | $(ms "$p99") ($(ms "$pmin")–$(ms "$pmax")) | $cpu | $hwm | ${notes%; } |"
        done < <(cells_for "$s")
    done
    echo
}

ratio_table() {
    echo "## Ratios (medians)"
    echo
    echo "| scenario | workers | hubgate / nginx auth req/s | hubgate / nginx auth p99 | hubgate / nginx proxy req/s | hubgate / direct req/s | hubgate / nginx auth CPU per request |"
    echo "|---|---|---|---|---|---|---|"
    local s w
    for s in a b c d; do
        for w in "${WORKERS[@]}"; do
            local h na np d hp np99 hc nc
            h=$(med "$s" hubgate "$w" rps)
            na=$(med "$s" nginx-auth "$w" rps)
            np=$(med "$s" nginx-proxy "$w" rps)
            d=$(med "$s" direct 0 rps)
            hp=$(med "$s" hubgate "$w" p99)
            np99=$(med "$s" nginx-auth "$w" p99)
            hc=$(med "$s" hubgate "$w" cpu10k)
            nc=$(med "$s" nginx-auth "$w" cpu10k)
            echo "| $s | $w | $(x2 "$(calc 'h / n' h="$h" n="$na")") | $(x2 "$(calc 'h / n' h="$hp" n="$np99")") | $(x2 "$(calc 'h / n' h="$h" n="$np")") | $(x2 "$(calc 'h / n' h="$h" n="$d")") | $(x2 "$(calc 'h / n' h="$hc" n="$nc")") |"
        done
    done
    echo
    echo "(c)'s direct row is HTTP/1.1 in clear text, so hubgate / direct there is not like for like."
    echo
}

burst_table() {
    echo "## (e) $E_CLIENTS concurrent first requests with one new token"
    echo
    echo "h2load opens $E_CLIENTS HTTP/1.1 connections and sends one request on each, all with"
    echo "the same token the proxy has never seen; Hub answers after $E_LATENCY. One new token per run."
    echo
    echo "| proxy | workers | Hub calls per run | answered 200 | p50 ms | p99 ms | max ms | notes |"
    echo "|---|---|---|---|---|---|---|---|"
    local t w
    while read -r t w; do
        local calls ok notes=""
        calls=$(vals e "$t" "$w" hubcalls | paste -sd, -)
        ok=$(vals e "$t" "$w" ok | paste -sd, -)
        [[ $t == hubgate ]] && notes="coalesced onto the first call: $(vals e "$t" "$w" coalesced | paste -sd, -) (the rest were cache hits)"
        [[ $t == nginx-auth ]] && notes="waiters poll the cache lock every 500 ms"
        echo "| $(label "$t") | $w | $calls | $ok of $E_CLIENTS | $(ms "$(med e "$t" "$w" p50)") | $(ms "$(med e "$t" "$w" p99)") | $(ms "$(med e "$t" "$w" max)") | $notes |"
    done < <(cells_for e)
    echo
}

memory_table() {
    echo "## (f) Memory per cached token (hubgate)"
    echo
    local tokens entries0 entries rss0 rss hwm bytes secs
    tokens=$(med f hubgate 2 tokens)
    entries0=$(med f hubgate 2 entries0)
    entries=$(med f hubgate 2 entries)
    rss0=$(med f hubgate 2 rss0)
    rss=$(med f hubgate 2 rss)
    hwm=$(med f hubgate 2 hwm)
    bytes=$(med f hubgate 2 bytes)
    secs=$(med f hubgate 2 seconds)
    echo "$(int "$tokens") distinct valid tokens sent once each (wrk, 2 threads, $CONNS connections, hubgate with 2 workers),"
    echo "each checked with Hub ($HUB_LATENCY) and cached; RSS read from \`/proc/PID/status\` before and after."
    echo
    echo "| cached verdicts before → after | VmRSS before → after | bytes of RSS per cached token | peak RSS | fill time (misses per second) |"
    echo "|---|---|---|---|---|"
    echo "| $(int "$entries0") → $(int "$entries") | $(mb "$rss0") MB → $(mb "$rss") MB | **$bytes** | $(mb "$hwm") MB | $secs s ($(int "$(calc 'n / s' n="$tokens" s="$secs")")/s) |"
    echo
    echo "nginx is not in this table: its \`proxy_cache\` keeps keys in a fixed shared-memory zone and the"
    echo "cached probe answers as files, so RSS growth does not measure its cost per entry."
    echo
}

flood_table() {
    echo "## (g) Random-token flood against another client's cached traffic"
    echo
    echo "The measured client: wrk, $VICTIM_CONNS connections, one cached token, ${VICTIM_THINK} ms pause"
    echo "between a connection's requests. The flood: wrk, $CONNS connections, a new random"
    echo "permanent-token-shaped token on every request, started 0.5 s before the measured run and"
    echo "stopped about 0.5 s after. Both come from 127.0.0.1, so for hubgate they share one per-client miss"
    echo "budget (default, 20 per second): the flood's misses beyond it get 429 at no Hub cost, the"
    echo "cached client is not limited."
    echo
    echo "| proxy | workers | p99 ms alone | p99 ms under flood | ratio | req/s alone → under flood | flood req/s | flood answers non-2xx | Hub calls per flood request |"
    echo "|---|---|---|---|---|---|---|---|---|"
    local t w
    for t in nginx-auth hubgate; do
        for w in "${WORKERS[@]}"; do
            local a f
            a=$(med g-alone "$t" "$w" p99)
            f=$(med g-flood "$t" "$w" p99)
            [[ $a == NA && $f == NA ]] && continue
            echo "| $(label "$t") | $w | $(ms "$a") | $(ms "$f") | $(x2 "$(calc 'f / a' f="$f" a="$a")") | $(int "$(med g-alone "$t" "$w" rps)") → $(int "$(med g-flood "$t" "$w" rps)") | $(int "$(med g-flood "$t" "$w" flood_rps)") | $(int "$(stat g-flood "$t" "$w" flood_non2xx | awk '{ print $4 }')") of $(int "$(stat g-flood "$t" "$w" flood_requests | awk '{ print $4 }')") | $(med g-flood "$t" "$w" flood_calls) |"
        done
    done
    echo
}

# target_row TEXT OK VALUE [REFERENCE]: "not measured" when VALUE has no number in it
target_row() {
    local result
    result=$(verdict "$2")
    [[ $3 =~ [0-9] && $3 != *NA* ]] || result="not measured"
    echo "| $1 | $result | $3 | ${4:-} |"
}

targets_table() {
    echo "## Targets"
    echo
    echo "Measured, not asserted. \"by how much\" is relative to the target."
    echo
    echo "| target | result | hubgate (per worker count) | for reference |"
    echo "|---|---|---|---|"
    local s w
    for s in a c; do
        local ok1=1 ok2=1 ok3=1 v1="" v2="" v3="" na_p99=""
        for w in "${WORKERS[@]}"; do
            local h na np hp np99 r
            h=$(med "$s" hubgate "$w" rps)
            na=$(med "$s" nginx-auth "$w" rps)
            np=$(med "$s" nginx-proxy "$w" rps)
            hp=$(med "$s" hubgate "$w" p99)
            np99=$(med "$s" nginx-auth "$w" p99)
            r=$(calc 'h / n' h="$h" n="$na")
            if ge "$r" 1.5; then v1+="${w}w: $(x2 "$r")×; "; else
                ok1=0
                v1+="${w}w: $(x2 "$r")× ($(int "$(calc '(1.5 - r) / 1.5 * 100' r="$r")") % short of 1.5×); "
            fi
            if le "$hp" "$np99"; then v2+="${w}w: $(ms "$hp") vs $(ms "$np99") ms; "; else
                ok2=0
                v2+="${w}w: $(ms "$hp") vs $(ms "$np99") ms ($(x2 "$(calc 'a / b' a="$hp" b="$np99")")× nginx auth's); "
            fi
            r=$(calc 'h / n' h="$h" n="$np")
            if ge "$r" 1.0; then v3+="${w}w: $(x2 "$r")×; "; else
                ok3=0
                v3+="${w}w: $(x2 "$r")× ($(int "$(calc '(1 - r) * 100' r="$r")") % short); "
            fi
        done
        target_row "($s) hubgate req/s ≥ 1.5 × nginx auth" "$ok1" "${v1%; }"
        target_row "($s) hubgate p99 ≤ nginx auth p99" "$ok2" "${v2%; }"
        target_row "($s) hubgate req/s ≥ 1.0 × nginx proxy" "$ok3" "${v3%; }"
    done
    local ok=1 v="" ref=""
    for w in "${WORKERS[@]}"; do
        local r
        r=$(calc 'b / a' b="$(med b hubgate "$w" rps)" a="$(med a hubgate "$w" rps)")
        if ge "$r" 0.9; then v+="${w}w: (b) = $(x2 "$r") × (a); "; else
            ok=0
            v+="${w}w: (b) = $(x2 "$r") × (a) ($(int "$(calc '(0.9 - r) * 100' r="$r")") points below 90 %); "
        fi
        ref+="nginx auth ${w}w: $(x2 "$(calc 'b / a' b="$(med b nginx-auth "$w" rps)" a="$(med a nginx-auth "$w" rps)")"); "
    done
    target_row "(b) req/s within 10 % of (a)" "$ok" "${v%; }" "${ref%; }"
    ok=1 v="" ref=""
    for w in "${WORKERS[@]}"; do
        local rep n2 calls
        rep=$(stat d hubgate "$w" repeated | awk '{ print $4 }')
        n2=$(stat d hubgate "$w" non2xx | awk '{ print $4 }')
        calls=$(med d hubgate "$w" calls)
        [[ $rep == 0 && $n2 == 0 ]] || ok=0
        v+="${w}w: $(int "$rep") repeated calls, $(int "$n2") non-2xx, $calls calls per request; "
        ref+="nginx auth ${w}w: $(int "$(stat d nginx-auth "$w" repeated | awk '{ print $4 }')") repeated, $(med d nginx-auth "$w" calls) per request; "
    done
    target_row "(d) exactly 1 Hub call per service per new token" "$ok" "${v%; }" "${ref%; }"
    ok=1 v="" ref=""
    for w in "${WORKERS[@]}"; do
        local calls
        calls=$(vals e hubgate "$w" hubcalls | paste -sd, -)
        [[ -n $calls ]] || ok=0
        for c in ${calls//,/ }; do [[ $c == 1 ]] || ok=0; done
        v+="${w}w: ${calls:-NA}; "
        ref+="nginx auth ${w}w: $(vals e nginx-auth "$w" hubcalls | paste -sd, -); "
    done
    target_row "(e) exactly 1 Hub call for $E_CLIENTS concurrent first requests" "$ok" "${v%; }" "${ref%; }"
    local bytes
    bytes=$(med f hubgate 2 bytes)
    ok=0
    le "$bytes" 256 && ok=1
    if ((ok)); then v="$bytes bytes per cached token"; else v="$bytes bytes per cached token ($(x2 "$(calc 'b / 256' b="$bytes")")× the target)"; fi
    target_row "(f) ≤ 256 bytes of RSS per cached token at $(int "$(med f hubgate 2 tokens)") tokens" "$ok" "$v"
    ok=1 v="" ref=""
    for w in "${WORKERS[@]}"; do
        local r
        r=$(calc 'f / a' f="$(med g-flood hubgate "$w" p99)" a="$(med g-alone hubgate "$w" p99)")
        if lt "$r" 2; then v+="${w}w: $(x2 "$r")×; "; else
            ok=0
            v+="${w}w: $(x2 "$r")× (target < 2×); "
        fi
        ref+="nginx auth ${w}w: $(x2 "$(calc 'f / a' f="$(med g-flood nginx-auth "$w" p99)" a="$(med g-alone nginx-auth "$w" p99)")")×; "
    done
    target_row "(g) the cached client's p99 rises < 2× under the flood" "$ok" "${v%; }" "${ref%; }"
    echo
    if ((QUICK)); then
        echo "This is a \`--quick\` run ($RUNS run of $DURATION s per cell, 1 worker only, $F_TOKENS tokens in f): indicative only."
        echo
    fi
}

details_section() {
    echo "## Exact commands"
    echo
    echo "\`\$TMP\` is the run's temporary directory, \`\$PROXY\` the proxy's listener, \`\$SIM\` the simulator;"
    echo "ports are chosen at run time. The first command of each scenario and proxy:"
    echo
    echo '```'
    if ((QUICK)); then echo "bench/run.sh --quick"; else echo "bench/run.sh"; fi
    echo "$BIN_REL sim --listen 127.0.0.1:0 --fast --workers $SIM_WORKERS --hub-latency $HUB_LATENCY --bench-tokens $POOL_SIZE --bench-token-file \$TMP/tokens.txt"
    echo "$BIN_REL sim --listen 127.0.0.1:0 --fast --workers $SIM_WORKERS --hub-latency $E_LATENCY --bench-tokens 64 --bench-token-file \$TMP/slow-tokens.txt"
    echo "taskset -c <cpus> nginx -p \$TMP/<cell> -c \$TMP/<cell>/nginx.conf -e \$TMP/<cell>/error.log"
    echo "taskset -c <cpus> $BIN_REL run --config \$TMP/<cell>/hubgate.toml"
    awk '/^## / { sub(/^## /, "# "); print; next } { print }' "$COMMANDS"
    echo '```'
    echo
    local f
    for f in nginx-auth-plain.conf nginx-proxy-plain.conf nginx-auth-tls.conf hubgate-plain.toml hubgate-tls.toml; do
        [[ -f $WORK/$f ]] || continue
        echo "<details><summary>$f (a 1-worker cell's)</summary>"
        echo
        echo '```'
        sed -e "s|$WORK|\$TMP|g" -e "s|$SIM_ADDR|\$SIM|g" -e '/^$/N;/^\n$/D' "$WORK/$f"
        echo '```'
        echo
        echo "</details>"
        echo
    done
    echo "<details><summary>Every run</summary>"
    echo
    echo '```'
    printf 'scenario\ttarget\tworkers\trun\tvalues (latencies in µs, hwm/rss in kB)\n'
    cat "$RESULTS"
    echo '```'
    echo
    echo "</details>"
}

write_report() {
    if [[ $BIN == "$ROOT"/* ]]; then BIN_REL=${BIN#"$ROOT"/}; else BIN_REL='$CARGO_TARGET_DIR/release/hubgate'; fi
    local flag=""
    if ((QUICK)); then flag=" --quick"; fi
    local built="after $((BUILD_SECONDS / 60)) min $((BUILD_SECONDS % 60)) s of \`cargo build --release\`"
    if ((BUILD_SECONDS < 10)); then built="with the release binary already built"; fi
    cat <<EOF
# Benchmarks

Written by \`bench/run.sh$flag\` on $(date -u '+%Y-%m-%d %H:%M UTC'): the measurements took
$((ELAPSED / 60)) min $((ELAPSED % 60)) s, $built. Re-run with
\`bench/run.sh\`; see [bench/README.md](bench/README.md).

EOF
    if awk -v l="${LOAD_BEFORE%% *}" -v s="$STEAL_RUN" 'BEGIN { exit !(l >= 0.5 || s >= 2) }'; then
        echo "**The machine was not idle**: load average $LOAD_BEFORE at the start, $STEAL_RUN % of"
        echo "all CPU time stolen by the hypervisor during the run. Runs with much stolen time are"
        echo "marked in the notes; compare proxies within one run, not across runs."
        echo
    fi
    targets_table
    main_table
    ratio_table
    burst_table
    memory_table
    flood_table
    machine_section
    setup_section
    details_section
}
