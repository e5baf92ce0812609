#!/usr/bin/env bash
# Fails, naming the files, when a C++ source differs from what clang-format (.clang-format) makes
# of it. Fix with: clang-format -i FILE...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v clang-format >/dev/null || { echo "check-format: clang-format is not installed" >&2; exit 1; }
cd "$root"
bad=()
while IFS= read -r -d '' f; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(find include src tests -type f \( -name '*.cpp' -o -name '*.h' \) -print0 | sort -z)
if ((${#bad[@]})); then
  echo "check-format: not clang-formatted: ${bad[*]}" >&2
  exit 1
fi
echo "check-format: all sources formatted"
