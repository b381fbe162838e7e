#!/usr/bin/env bash
# Installs the Debian packages the tests use, once. RabbitMQ is only installed here: the test
# fixtures start their own private broker nodes (own port, own data dir) so that a test can stop
# and restart its broker without touching anything else on the machine. redis-server is for the
# bench's Centrifugo Redis engine, which likewise starts its own private redis-server process.
set -euo pipefail
need=()
command -v rabbitmq-server >/dev/null || [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
command -v redis-server >/dev/null || need+=(redis-server)
# The UI's reactions are emoji: without a font for them the browser tests' screenshots show boxes.
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # policy-rc.d-less machines would start the system rabbitmq and redis services; nothing uses them.
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
