#!/bin/sh
# upgrade-from.sh COMMIT OUT: build the release an upgrade starts from (N):
# t1route and its images from COMMIT of this repository, in a git worktree of
# its own, into OUT (OUT/bin/t1route renders N's manifests; OUT/image/oci holds
# N's images; OUT/version names it). Built once per commit: OUT/done marks it.
# The Debian packages make image already fetched are reused (no download).
set -eu
commit=$1
out=$2
[ -f "$out/done" ] && exit 0
root=$(git rev-parse --show-toplevel)
full=$(git -C "$root" rev-parse --verify "$commit^{commit}")
version="0.1.0-dev.$(echo "$full" | cut -c1-12)"
tmp=$(mktemp -d)
src="$tmp/src"
git -C "$root" worktree add --detach "$src" "$full" >/dev/null 2>&1
trap 'git -C "$root" worktree remove --force "$src"; rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out/image/work/debs" "$out/bin"
if ls "$root"/.cache/image/work/debs/*.deb >/dev/null 2>&1; then
  cp "$root"/.cache/image/work/debs/*.deb "$out/image/work/debs/"
fi
start=$(date +%s)
(cd "$src" && go run ./deploy/image --out "$out/image" --version "$version" >/dev/null)
(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$version" -o "$out/bin/" ./cmd/t1route)
echo "$version" > "$out/version"
echo "$full" > "$out/commit"
touch "$out/done"
echo "built release $version (commit $full) into $out in $(( $(date +%s) - start )) s"
