#!/usr/bin/env bash
# Builds the go-plugin host adapter offline, from Debian's packages only, and prints the path
# of the binary. Usage: adapters/goplugin/build.sh [OUT_DIR]  (default: adapters/goplugin/.build)
#
# Needs: golang-go, golang-github-hashicorp-go-plugin-dev (go-plugin 1.0.1),
# golang-google-grpc-dev, golang-golang-x-net-dev, protobuf-compiler and golang-goprotobuf-dev
# (protoc-gen-go 1.3.5). GOPATH mode: no module download, no network.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$(mkdir -p "${1:-$here/.build}" && cd "${1:-$here/.build}" && pwd)"
gopath_system="${PLUGINCONF_GOPATH:-/usr/share/gocode}"

missing=()
command -v go >/dev/null || missing+=("go (golang-go)")
command -v protoc >/dev/null || missing+=("protoc (protobuf-compiler)")
command -v protoc-gen-go >/dev/null || missing+=("protoc-gen-go (golang-goprotobuf-dev)")
for dep in github.com/hashicorp/go-plugin:golang-github-hashicorp-go-plugin-dev \
  github.com/hashicorp/go-hclog:golang-github-hashicorp-go-hclog-dev \
  google.golang.org/grpc:golang-google-grpc-dev \
  github.com/golang/protobuf:golang-github-golang-protobuf-1-3-dev \
  golang.org/x/net/http/httpguts:golang-golang-x-net-dev; do
  [ -d "$gopath_system/src/${dep%%:*}" ] || missing+=("${dep%%:*} (${dep##*:})")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build.sh: cannot build the go-plugin adapter; missing:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  echo "install them with: apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev golang-golang-x-net-dev protobuf-compiler golang-goprotobuf-dev" >&2
  exit 2
fi

# A GOPATH of our own beside Debian's: the adapter's sources and the stubs generated from
# protos/ (the generated code is not committed: the build makes it from the protos).
pkg=pluginconf.dev/goplugin-adapter
gopath="$out/gopath"
rm -rf "$gopath"
mkdir -p "$gopath/src/$pkg/pb/pluginconfv1" "$gopath/src/$pkg/pb/controlv1" "$out/gen"
cp "$here"/*.go "$gopath/src/$pkg/"
maps="Mpluginconf/v1/common.proto=$pkg/pb/pluginconfv1,Mpluginconf/v1/hooks.proto=$pkg/pb/pluginconfv1"
maps="$maps,Mpluginconf/v1/hostapi.proto=$pkg/pb/pluginconfv1"
maps="$maps,Mpluginconf/conformance/v1/control.proto=$pkg/pb/controlv1"
# protoc-gen-go 1.3.5 predates proto3 `optional`: each such field becomes the one-field oneof
# that protoc itself makes of it (the same wire format, the same presence).
protos="$out/protos"
rm -rf "$protos" && cp -R "$root/protos" "$protos"
sed -E -i 's/^([[:space:]]*)optional[[:space:]]+([A-Za-z0-9_.]+)[[:space:]]+([A-Za-z0-9_]+)[[:space:]]*=[[:space:]]*([0-9]+)[[:space:]]*;/\1oneof _\3 { \2 \3 = \4; }/' \
  "$protos"/pluginconf/v1/*.proto "$protos"/pluginconf/conformance/v1/*.proto
protoc -I "$protos" --go_out="plugins=grpc,$maps:$out/gen" "$protos"/pluginconf/v1/*.proto
protoc -I "$protos" --go_out="plugins=grpc,$maps:$out/gen" "$protos/pluginconf/conformance/v1/control.proto"
rm -rf "$protos"
mv "$out"/gen/pluginconf/v1/*.pb.go "$gopath/src/$pkg/pb/pluginconfv1/"
mv "$out"/gen/pluginconf/conformance/v1/*.pb.go "$gopath/src/$pkg/pb/controlv1/"
rm -rf "$out/gen"

export GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local
export GOPATH="$gopath:$gopath_system"
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
  export GOCACHE="$out/gocache"
fi
go build -o "$out/goplugin-adapter" "$pkg" >&2
echo "$out/goplugin-adapter"
