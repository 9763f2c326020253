#!/usr/bin/env bash
# Packed-package smoke test: packs effect-etcd as it would be published (run `pnpm build` first),
# installs the tarball with npm into two throwaway apps under /tmp, one ESM (.mts) and one CommonJS
# (.cts), compiles both with `tsc --module node16` (library declarations checked too), bundles the ESM
# app with esbuild the way the README says, and runs all three against a throwaway etcd on a free
# loopback port with its data under /dev/shm. Any failure ends the script with a non-zero status
# and a line saying what broke; etcd and the temporary directories are removed in every case.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tsc="$root/node_modules/typescript/bin/tsc"
esbuild="$root/node_modules/.bin/esbuild"
[ -x "$esbuild" ] || esbuild=$(ls "$root"/node_modules/.pnpm/esbuild@*/node_modules/esbuild/bin/esbuild | tail -1)

die() { printf '\npack-smoke: FAILED: %s\n' "$*" >&2; exit 1; }
[ -f "$root/packages/etcd/dist/esm/index.js" ] || die "packages/etcd/dist is missing: run pnpm build first"
command -v etcd >/dev/null || die "etcd not found (apt-get install -y etcd-server)"

work=$(mktemp -d /tmp/effect-etcd-pack-smoke.XXXXXX)
data=$(mktemp -d /dev/shm/effect-etcd-pack-smoke.XXXXXX)
etcd_pid=""
cleanup() {
  status=$?
  if [ -n "$etcd_pid" ]; then
    kill "$etcd_pid" 2>/dev/null || true
    wait "$etcd_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$work/etcd.log" ]; then
    echo "-- last lines of the etcd log:" >&2
    tail -5 "$work/etcd.log" >&2
  fi
  rm -rf "$work" "$data"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "-- pack"
(cd "$root/packages/etcd" && pnpm pack --pack-destination "$work" >/dev/null) || die "pnpm pack failed"
tarball=$(ls "$work"/effect-etcd-*.tgz)
echo "$(basename "$tarball")"

echo "-- npm install the tarball, effect@^3, @effect/platform@^0.97 (and @types/node for the compiler)"
mkdir -p "$work/apps"
cat >"$work/apps/package.json" <<'JSON'
{ "name": "effect-etcd-pack-smoke", "private": true, "version": "0.0.0" }
JSON
(cd "$work/apps" && npm install --no-audit --no-fund --loglevel=error \
  "$tarball" "effect@^3" "@effect/platform@^0.97" "@types/node@^20") || die "npm install failed"

# one program, written once, imported the way each kind of app imports it
program() {
  cat <<TS
import { Config, Console, Effect } from "effect"
import { Etcd } from "effect-etcd"
import * as Kv from "effect-etcd/Kv"

const key = "pack-smoke/$1"
const program = Effect.gen(function*() {
  yield* Kv.put(key, "hello from $1")
  const value = yield* Kv.get(key)
  yield* Kv.delete(key)
  yield* Console.log(\`$1: \${value._tag === "Some" ? value.value : "missing"}\`)
})

const endpoint = Config.string("SMOKE_ETCD_ENDPOINT")
Effect.flatMap(endpoint, (url) => program.pipe(Effect.provide(Etcd.layer({ endpoints: [url] })))).pipe(
  Effect.runPromise
).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
TS
}

echo "-- source maps carry their sources (src/ is not shipped)"
node -e '
  const fs = require("fs"), path = require("path")
  const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)])
  const maps = walk(process.argv[1]).filter((file) => file.endsWith(".map"))
  const bare = maps.filter((file) => {
    const map = JSON.parse(fs.readFileSync(file, "utf8"))
    return !Array.isArray(map.sourcesContent) || map.sourcesContent.length !== map.sources.length ||
      map.sourcesContent.some((content) => typeof content !== "string" || content.length === 0)
  })
  if (maps.length === 0 || bare.length > 0) {
    console.error(`${maps.length} source maps, without sourcesContent: ${bare.join(", ")}`)
    process.exit(1)
  }
  console.log(`${maps.length} source maps, each with its sources`)
' "$work/apps/node_modules/effect-etcd/dist" || die "the packed source maps point at sources that are not shipped"

echo "-- the client's modules, imported by path, load neither Schema nor @effect/platform (only Keyspace needs Schema)"
(cd "$work/apps" && node -e '
  const modules = ["Auth", "Cluster", "Election", "Etcd", "EtcdMemory", "Kv", "Lease", "Lock", "Maintenance", "Mirror",
    "RwLock", "Session", "Stm", "Txn", "Watch"]
  for (const name of modules) require(`effect-etcd/${name}`)
  const loaded = Object.keys(require.cache)
  const heavy = loaded.filter((file) => /[\\/](@effect[\\/]platform|fast-check)[\\/]|[\\/]effect[\\/]dist[\\/]cjs[\\/]Schema\.js$/.test(file))
  if (heavy.length > 0) {
    console.error(`loaded with the client: ${heavy.slice(0, 5).join(", ")} (${heavy.length} in all)`)
    process.exit(1)
  }
  console.log(`${loaded.length} modules loaded, none of Schema, fast-check or @effect/platform`)
') || die "importing the client loads Schema or @effect/platform, which only file-reading operations and Keyspace need"

for kind in esm cjs; do
  app="$work/apps/$kind"
  mkdir -p "$app"
  if [ "$kind" = esm ]; then ext=mts; type=module; else ext=cts; type=commonjs; fi
  echo "{ \"private\": true, \"type\": \"$type\" }" >"$app/package.json"
  program "$kind" >"$app/main.$ext"
  cat >"$app/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "module": "node16",
    "moduleResolution": "node16",
    "target": "es2022",
    "strict": true,
    "skipLibCheck": false,
    "types": ["node"],
    "outDir": "out"
  },
  "files": ["main.$ext"]
}
JSON
  echo "-- tsc --module node16 ($kind app, main.$ext)"
  (cd "$app" && node "$tsc" -p tsconfig.json) || die "the $kind app does not compile against the packed types"
done

echo "-- esbuild --bundle --format=esm with the createRequire banner (the README's recipe)"
"$esbuild" "$work/apps/esm/main.mts" --bundle --platform=node --format=esm --log-level=warning \
  --banner:js="import { createRequire } from 'module'; const require = createRequire(import.meta.url);" \
  --outfile="$work/apps/bundle.mjs" || die "esbuild could not bundle the ESM app"

echo "-- etcd on a free loopback port"
read -r client_port peer_port < <(node -e '
  const net = require("net")
  const free = () => new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const port = server.address().port
      server.close(() => resolve(port))
    })
  })
  Promise.all([free(), free()]).then((ports) => console.log(ports.join(" ")))
')
endpoint="http://127.0.0.1:$client_port"
etcd --name pack-smoke --data-dir "$data" \
  --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "pack-smoke=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
ready=""
for _ in $(seq 1 100); do
  if ETCDCTL_API=3 etcdctl --endpoints "$endpoint" --command-timeout=1s endpoint health >/dev/null 2>&1; then
    ready=yes
    break
  fi
  kill -0 "$etcd_pid" 2>/dev/null || die "etcd exited at start"
  sleep 0.2
done
[ -n "$ready" ] || die "etcd did not become healthy on $endpoint within 20 s"
echo "$endpoint"

run() {
  local name=$1 expected=$2
  shift 2
  local output
  output=$(cd "$work/apps" && SMOKE_ETCD_ENDPOINT="$endpoint" timeout 60 "$@" 2>&1) || die "$name: exited with $?: $output"
  [ "$output" = "$expected" ] || die "$name: printed '$output', expected '$expected'"
  echo "$name: $output"
}
echo "-- run"
run "ESM app" "esm: hello from esm" node esm/out/main.mjs
run "CommonJS app" "cjs: hello from cjs" node cjs/out/main.cjs
run "esbuild ESM bundle" "esm: hello from esm" node bundle.mjs
echo
echo "pack-smoke: the packed effect-etcd works for ESM, CommonJS (--module node16) and an esbuild ESM bundle"
