#!/bin/sh
# Registers the namespace bulk-reset runs in, once the server answers. An existing namespace is left
# exactly as it is (its retention included), so this is safe to run on every start.
set -eu

namespace="${BULK_RESET_NAMESPACE:-default}"
retention="${BULK_RESET_NAMESPACE_RETENTION:-720h}"
address="${TEMPORAL_ADDRESS:-temporal:7233}"

# The CLI is given the server's IPv4 address: some resolvers hand gRPC an address it cannot reach
# for a Compose service name.
host="${address%:*}"
port="${address##*:}"
ipv4="$(getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }')"
if [ -n "$ipv4" ]; then
  address="$ipv4:$port"
fi

attempt=1
until temporal operator cluster health --address "$address" 2>/dev/null | grep -q SERVING; do
  if [ "$attempt" -ge 30 ]; then
    echo "Temporal at $address is still not serving after $attempt checks; see \`docker compose logs temporal\`" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done

if temporal operator namespace describe --namespace "$namespace" --address "$address" >/dev/null 2>&1; then
  echo "namespace $namespace already exists; left as it is"
else
  temporal operator namespace create --namespace "$namespace" --retention "$retention" \
    --description "bulk-reset: durable bulk password resets" --address "$address"
  echo "namespace $namespace created, closed jobs kept for $retention"
fi

# The search attributes jobs and user workflows carry (BulkResetJobId, BulkResetPhase): a job cannot
# start without them. Creating one that exists already is refused, so check first.
for attribute in BulkResetJobId BulkResetPhase; do
  if temporal operator search-attribute list --namespace "$namespace" --address "$address" 2>/dev/null | grep -qw "$attribute"; then
    echo "search attribute $attribute already exists"
  else
    temporal operator search-attribute create --namespace "$namespace" --address "$address" \
      --name "$attribute" --type Keyword
    echo "search attribute $attribute created"
  fi
done
