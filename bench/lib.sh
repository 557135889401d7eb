# Shared by the bench scripts (sourced, not run).

# Polls `url` until it answers 2xx (30 s at most).
wait_for_url() { # url
    for _ in $(seq 1 300); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "nothing answered $1" >&2
    return 1
}

# Loads `url` with wrk (a 2 s warm-up first) and prints
# "<req/s> <p99 in ms> <non-2xx responses>".
wrk_stats() { # threads connections duration url
    wrk -t"$1" -c"$2" -d2s "$4" >/dev/null
    wrk -t"$1" -c"$2" -d"$3" --latency "$4" | awk '
        /Requests\/sec/ { rps = $2 }
        /^ +99%/ {
            v = $2; unit = v; gsub(/[0-9.]/, "", unit); gsub(/[a-z]/, "", v)
            if (unit == "us") v = v / 1000; else if (unit == "s") v = v * 1000
            p99 = v
        }
        /Non-2xx/ { bad = $4 }
        END { printf "%s %.2f %d\n", rps, p99, bad }'
}
