#!/usr/bin/env bash
# Shrinks fuzz/corpus/<target> to what a commit should carry: the fewest inputs that reach every
# coverage edge the corpus reaches and the seeds and regressions do not. libFuzzer's set-cover
# merge (`-set_cover_merge=1`) picks them; `-use_counters=0` counts an edge once, whatever its
# hit count, so loop-count variants (which a run regains in seconds) are not kept.
#
# Usage, from anywhere: fuzz/cmin.sh [target...]      (all targets when none is named)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); see docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"

for t in "${targets[@]}"; do
    work=$(mktemp -d)
    # What the replay covers anyway goes in first, so the merge keeps only what it adds.
    cp seeds/"$t"/* "$work"/
    if [ -d regressions/"$t" ]; then cp regressions/"$t"/* "$work"/; fi
    before=$(find corpus/"$t" -type f | wc -l)
    "$bin/$t" -use_counters=0 -set_cover_merge=1 -timeout=10 "$work" corpus/"$t" \
        >"$work.log" 2>&1 || { tail -20 "$work.log"; exit 1; }
    for f in seeds/"$t"/* regressions/"$t"/*; do
        if [ -e "$f" ]; then rm -f "$work/$(basename "$f")"; fi
    done
    find corpus/"$t" -type f -delete
    mv "$work"/* corpus/"$t"/ 2>/dev/null || true
    rmdir "$work"
    rm -f "$work.log"
    echo "$t: $before -> $(find corpus/"$t" -type f | wc -l) files"
done
