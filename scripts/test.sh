#!/usr/bin/env bash
# Runs every flowlab test on a fresh Debian/Ubuntu machine with Go: installs
# what the tests need when it is missing (as root, via apt), starts RabbitMQ
# when nothing answers on 127.0.0.1:5672, then runs go test -race ./...
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v kcat >/dev/null 2>&1 || need+=(kcat)
command -v amqp-publish >/dev/null 2>&1 || need+=(amqp-tools)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! rabbit_up; then
  echo "test.sh: starting RabbitMQ"
  # As the rabbitmq user with every file handle the hard limit allows: su
  # leaves it 1024 soft, and a broker that must recover thousands of
  # durable queues with fewer handles than queues never finishes booting.
  $sudo su rabbitmq -s /bin/sh -c 'ulimit -n "$(ulimit -Hn)"; exec /usr/lib/rabbitmq/bin/rabbitmq-server -detached'
  for _ in $(seq 300); do rabbit_up && break; sleep 1; done
  rabbit_up || { echo "test.sh: RabbitMQ did not start within 300 s; see /var/log/rabbitmq/" >&2; exit 1; }
  $sudo rabbitmqctl await_startup >/dev/null
fi

# The walkthroughs' solvability test (the one parallel test) plays four
# walks at once: they mostly wait on the brokers.
go test -race -count=1 -timeout 20m -parallel 4 "$@" ./...
