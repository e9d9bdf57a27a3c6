#!/usr/bin/env bash
# Runs fuzz targets one after another for SECONDS each (default 600), from
# their corpus in corpus/<target>/ plus the committed seeds/<target>/; a
# crash leaves its input in artifacts/<target>/. Build first:
#   RUSTC_BOOTSTRAP=1 cargo fuzz build
#
#   fuzz/run.sh                      # every target, 10 minutes each
#   fuzz/run.sh 60 request intent    # those targets, 1 minute each
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request bundle intent log_verify anomaly_model)
bin=target/x86_64-unknown-linux-gnu/release
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "==> $t: ${seconds}s, corpus $(ls "corpus/$t" | wc -l) inputs"
    "$bin/$t" "corpus/$t" "seeds/$t" -max_total_time="$seconds" -rss_limit_mb=4096 \
        -timeout=30 -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 \
        | grep -E "^(#[0-9]+.*(DONE|INITED)|stat::|==|SUMMARY|ERROR|Done|Test unit)" || true
    echo "==> $t: corpus now $(ls "corpus/$t" | wc -l) inputs, $(du -sk "corpus/$t" | cut -f1) KB; artifacts: $(ls "artifacts/$t" | wc -l)"
done
