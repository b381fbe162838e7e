#!/bin/sh
# Starts Debian's RabbitMQ in the foreground as the image's user (uid 10002), as the operator's
# StatefulSet runs it: config and enabled_plugins from /etc/rabbitmq (a ConfigMap), data and the
# Erlang cookie in /var/lib/rabbitmq, a read-only root filesystem.
set -eu

# Every stream keeps files open: use all the descriptors the runtime allows.
ulimit -n "$(ulimit -Hn)"

# RABBITMQ_DEFAULT_USER/PASS are not read by the server itself: hand them over as a config file
# of their own (the ConfigMap's directory is read-only), readable by this user only.
if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
  confd=/tmp/rabbitmq-conf.d
  mkdir -p "$confd"
  umask 077
  printf 'default_user = %s\ndefault_pass = %s\n' \
    "$RABBITMQ_DEFAULT_USER" "${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS is required with RABBITMQ_DEFAULT_USER}" \
    > "$confd/10-default-user.conf"
  export RABBITMQ_CONFIG_FILES="$confd"
fi
exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
