#!/bin/sh
# The compose file's zk-register job: writes the demo service into ZooKeeper
# the way Spring Cloud Zookeeper (Curator's service discovery) does, at
# /services/demo/<id> with a JSON ServiceInstance, so the gateway sees it as
# demo.zookeeper. zkCli.sh comes with the zookeeper image (ZK_CLI to use
# another); it retries until ZooKeeper answers.
set -u
ZK="${ZK_SERVER:-zookeeper:2181}"
CLI="${ZK_CLI:-zkCli.sh}"
HOST="${ADVERTISE:-demo}"
PORT="${DEMO_PORT:-9000}"
ID="demo-zk-${HOST}-${PORT}"
NODE="{\"name\":\"demo\",\"id\":\"${ID}\",\"address\":\"${HOST}\",\"port\":${PORT},\"sslPort\":null,\"payload\":null,\"registrationTimeUTC\":0,\"serviceType\":\"DYNAMIC\"}"
until "$CLI" -server "$ZK" ls / >/dev/null 2>&1; do
  echo "zookeeper at $ZK not ready"
  sleep 2
done
# Parents first (an existing node is fine); the JSON has no spaces, so it stays one argument.
"$CLI" -server "$ZK" create /services "" >/dev/null 2>&1 || true
"$CLI" -server "$ZK" create /services/demo "" >/dev/null 2>&1 || true
"$CLI" -server "$ZK" create "/services/demo/${ID}" "${NODE}"
echo "registered ${ID} in zookeeper at $ZK"
