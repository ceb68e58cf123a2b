#!/bin/sh
# Renders Kong's declarative configuration from the environment, then hands over to Kong's own
# entrypoint. The image is the same in every environment; what differs arrives at start:
#   KONG_UPSTREAM_URL     the internal API, e.g. http://<internal-api app>.flycast (fly.toml [env])
#   KONG_PARTNER_API_KEY  the partner's API key (a secret), taken whole
#   KONG_PARTNER_KEYS     optional further keys, comma-separated (a secret)
# `docker-entrypoint.sh render` prints the configuration and exits: for tests and operators.
# POSIX sh only: Kong's image has no Node, and this must not depend on more than it ships.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
template=${KONG_TEMPLATE:-$here/kong.yml.template}

fail() {
  printf 'docker-entrypoint.sh: %s\n' "$1" >&2
  exit 1
}

# A single-quoted YAML scalar holds anything printable literally (\ # : " and spaces included);
# only ' needs escaping, as ''. Control characters (a newline above all) cannot be carried.
quote() {
  case $2 in *[[:cntrl:]]*) fail "$1 holds a control character" ;; esac
  rest=$2 head=
  while :; do
    case $rest in
      *"'"*) head=$head${rest%%"'"*}"''" rest=${rest#*"'"} ;;
      *) break ;;
    esac
  done
  printf "'%s%s'" "$head" "$rest"
}

check() {
  missing=
  [ -n "${KONG_UPSTREAM_URL:-}" ] || missing='KONG_UPSTREAM_URL (fly.toml [env])'
  [ -n "${KONG_PARTNER_API_KEY:-}" ] || missing=${missing:+$missing and }'KONG_PARTNER_API_KEY (a secret)'
  [ -z "$missing" ] || fail "not set: $missing; refusing to configure the gateway without it"
  case $KONG_UPSTREAM_URL in
    http://?* | https://?*) ;;
    *) fail 'KONG_UPSTREAM_URL must be an http:// or https:// URL' ;;
  esac
  [ -r "$template" ] || fail "template not found: $template"
}

# One consumer per key. A repeated key is refused: Kong rejects the whole configuration (keys are
# unique), and a clear line here beats a gateway that will not start.
consumer() {
  case $seen in *"
$1
"*) fail 'a partner key is listed twice (KONG_PARTNER_API_KEY, KONG_PARTNER_KEYS)' ;; esac
  seen="$seen$1
"
  n=$((n + 1))
  value=$(quote 'a partner key' "$1") || exit 1
  printf '%s- username: partner-%s\n' "$pad" "$n"
  printf '%s  keyauth_credentials:\n' "$pad"
  printf '%s    - key: %s\n' "$pad" "$value"
}

# Prints the consumers list, each line indented by $1.
consumers() {
  pad=$1 n=0 seen='
'
  consumer "$KONG_PARTNER_API_KEY"
  rest=${KONG_PARTNER_KEYS:-}
  while [ -n "$rest" ]; do
    case $rest in
      *,*) key=${rest%%,*} rest=${rest#*,} ;;
      *) key=$rest rest= ;;
    esac
    # Blanks around a key cannot travel in an HTTP header anyway ("a, b" is two keys).
    while :; do
      case $key in
        ' '*) key=${key# } ;;
        *' ') key=${key% } ;;
        *) break ;;
      esac
    done
    [ -z "$key" ] || consumer "$key"
  done
}

# The whole configuration is built before any of it is printed: a refusal leaves stdout empty.
render() {
  check
  upstream=$(quote KONG_UPSTREAM_URL "$KONG_UPSTREAM_URL") || exit 1
  health=$(quote KONG_UPSTREAM_URL "${KONG_UPSTREAM_URL%/}/health") || exit 1
  out=
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      *'{{CONSUMERS}}'*)
        line=$(consumers "${line%%'{{CONSUMERS}}'*}") || exit 1 ;;
      *'{{KONG_UPSTREAM_HEALTH_URL}}'*)
        line=${line%%'{{KONG_UPSTREAM_HEALTH_URL}}'*}$health${line#*'{{KONG_UPSTREAM_HEALTH_URL}}'} ;;
      *'{{KONG_UPSTREAM_URL}}'*)
        line=${line%%'{{KONG_UPSTREAM_URL}}'*}$upstream${line#*'{{KONG_UPSTREAM_URL}}'} ;;
    esac
    out="$out$line
"
  done <"$template"
  printf '%s' "$out"
}

if [ "${1:-}" = render ]; then
  render
  exit 0
fi

# Written beside the target and renamed, so Kong never reads half a file.
config=${KONG_DECLARATIVE_CONFIG:-/kong/kong.yml}
rendered=$(render) || exit 1
printf '%s\n' "$rendered" >"$config.tmp"
mv "$config.tmp" "$config"
exec /docker-entrypoint.sh "$@"
