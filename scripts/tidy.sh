#!/usr/bin/env bash
# The lint: clang-tidy with the repo's .clang-tidy over the project's own sources
# (framework/src, apps/, examples/; their headers through HeaderFilterRegex), compiled as the
# build's compile_commands.json says. Every finding is an error. Prints each finding once
# (a header's finding is reported by every file that includes it), then counts per check
# and per file; exits 1 if there is any finding or clang-tidy fails.
#   scripts/tidy.sh [-j JOBS] [-p BUILD_DIR] [FILE...]     (default: all sources, $(nproc) jobs)
# The test suite runs it as the ctest lint.clang_tidy (label lint) with -j 2. tests/ and bench/
# are left out by default (docs/framework.md, Lint): 85 s more for style findings in test code.
set -euo pipefail
source "$(dirname "$0")/env.sh"

jobs=$NPROC
build=$BINFLOW_BUILD
while getopts "j:p:" opt; do
  case $opt in
    j) jobs=$OPTARG ;;
    p) build=$OPTARG ;;
    *) echo "usage: $0 [-j JOBS] [-p BUILD_DIR] [FILE...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

# 19 is the newest clang-tidy of Debian 12 (scripts/setup.sh installs it); 14, the default,
# cannot parse libstdc++ 12's <source_location>.
tidy=${CLANG_TIDY:-clang-tidy-19}
if ! command -v "$tidy" >/dev/null; then
  echo "tidy.sh: $tidy not found; scripts/setup.sh installs it (or set CLANG_TIDY)" >&2
  exit 2
fi
build=$(realpath "$build")
if [[ ! -f $build/compile_commands.json ]]; then
  echo "tidy.sh: no $build/compile_commands.json; configure first (cmake -S . -B $build)" >&2
  exit 2
fi

files=()
if (($# > 0)); then
  mapfile -t files < <(realpath "$@")  # before the cd: relative to the caller
fi
cd "$BINFLOW_ROOT"
if ((${#files[@]} == 0)); then
  # examples/ is not in the build's database (it builds out of tree against the installed
  # package); clang-tidy borrows the flags of the nearest entry, which carry the same includes.
  mapfile -t files < <(find framework/src apps examples -name '*.cpp' | sort)
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$SECONDS
# One log and one exit status per file (named by its index), so parallel runs never interleave.
printf '%s\n' "${files[@]}" | nl -w1 -s' ' |
  xargs -P "$jobs" -L 1 sh -c \
    '"$0" -p "$1" --quiet "$4" >"$2/$3.log" 2>&1; echo $? >"$2/$3.rc"' "$tidy" "$build" "$out"
seconds=$((SECONDS - start))

# A finding is a "path:line:col: warning|error: message [check]" line and the notes and
# source excerpts under it; print each once, paths relative to the repository.
findings=$out/findings
for ((i = 1; i <= ${#files[@]}; i++)); do cat "$out/$i.log"; done |
  sed -e "s|$BINFLOW_ROOT/||g" -e 's/,-warnings-as-errors\]$/]/' |
  awk '
    /^([^ ]+:[0-9]+:[0-9]+: )?(warning|error): / { keep = !($0 in seen); seen[$0] = 1 }
    /^[0-9]+ (warnings?|errors?)( and [0-9]+ errors?)? generated\.$/ || /^Error while processing/ { keep = 0; next }
    keep' >"$findings"
summary=$(grep -E '^([^ ]+:[0-9]+:[0-9]+: )?(warning|error): ' "$findings" || true)

# A non-zero exit without any finding is clang-tidy itself failing (a crash, a bad option).
failed=()
for ((i = 1; i <= ${#files[@]}; i++)); do
  if [[ $(cat "$out/$i.rc") != 0 ]] &&
    ! grep -qE '^([^ ]+:[0-9]+:[0-9]+: )?(warning|error): ' "$out/$i.log"; then
    failed+=("${files[i - 1]#"$BINFLOW_ROOT"/}")
  fi
done

if [[ -z $summary && ${#failed[@]} -eq 0 ]]; then
  echo "clang-tidy: ${#files[@]} files clean ($($tidy --version | grep -o 'version [0-9.]*'), ${seconds} s, -j $jobs)"
  exit 0
fi
cat "$findings"
if [[ -n $summary ]]; then
  echo
  echo "== clang-tidy findings: $(wc -l <<<"$summary") =="
  sed -E 's/^([^ ]+:[0-9]+):[0-9]+: (warning|error): (.*) \[([^]]+)\]$/\1: \4: \3/' <<<"$summary"
  echo "-- per check --"
  sed -E 's/.*\[([^]]+)\]$/\1/' <<<"$summary" | sort | uniq -c | sort -rn
  echo "-- per file --"
  sed -E 's/^([^:]+):.*/\1/' <<<"$summary" | sort | uniq -c | sort -rn
fi
if ((${#failed[@]} > 0)); then
  echo "-- clang-tidy failed without a finding on: ${failed[*]}"
  for f in "${failed[@]}"; do
    for ((i = 1; i <= ${#files[@]}; i++)); do
      [[ ${files[i - 1]#"$BINFLOW_ROOT"/} == "$f" ]] && sed "s/^/$(basename "$f"): /" "$out/$i.log"
    done
  done
fi
echo "clang-tidy: FAILED (${seconds} s, -j $jobs)"
exit 1
