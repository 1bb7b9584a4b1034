# shellcheck shell=sh
# creneau_bench_env.sh - the environment of the benchmarks, sourced by
# tests/bench/*.sh after they set `here` (their own directory, absolute):
# CRENEAU_SOURCE_DIR and CRENEAU_BUILD_DIR (defaults: this checkout and its
# build/), PYTHONPATH with tests/lib first (creneau_stack, creneau_bench,
# creneau_users), and source_dir, the checkout.
# shellcheck disable=SC2154 # here is set by the sourcing script
source_dir=$(cd "$here/../.." && pwd)
export CRENEAU_SOURCE_DIR="${CRENEAU_SOURCE_DIR:-$source_dir}"
export CRENEAU_BUILD_DIR="${CRENEAU_BUILD_DIR:-$source_dir/build}"
export PYTHONPATH="$source_dir/tests/lib${PYTHONPATH:+:$PYTHONPATH}"

# bench_need_tool <bench> <tool> [<hint>]: exits 2, saying so, unless <tool>
# is on PATH.
bench_need_tool() {
	command -v "$2" >/dev/null 2>&1 ||
		{ echo "$1: $2 is not installed${3:+ ($3)}" >&2; exit 2; }
}

# bench_need_build <bench> <daemon>: exits 2, saying so, unless the build
# tree has bin/<daemon>.
bench_need_build() {
	[ -x "$CRENEAU_BUILD_DIR/bin/$2" ] ||
		{ echo "$1: no $CRENEAU_BUILD_DIR/bin/$2: build first" >&2; exit 2; }
}
