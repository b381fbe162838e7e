#!/bin/sh
# Starts Debian's RabbitMQ in the foreground as the image's user (uid 10002), as the operator's
# StatefulSet runs it: config and enabled_plugins from /etc/rabbitmq (a ConfigMap), data and the
# Erlang cookie in /var/lib/rabbitmq, a read-only root filesystem.
set -eu

# Every stream keeps files open: use all the descriptors the runtime allows, and refuse to start
# with fewer than the floor the operator's room cap counts on (DESCRIPTOR_FLOOR in
# chatoperator/builders/broker_capacity.py, set in this image's environment): out of descriptors,
# RabbitMQ 3.10 fails every stream read of every room until it restarts.
ulimit -n "$(ulimit -Hn)"
descriptors=$(ulimit -n)
if [ "$descriptors" != unlimited ] && [ "$descriptors" -lt "${CHATCLUSTER_DESCRIPTOR_FLOOR:?}" ]; then
  echo "chatcluster-rabbitmq: only $descriptors file descriptors, below the floor of" \
    "$CHATCLUSTER_DESCRIPTOR_FLOOR: raise the container runtime's nofile limit" >&2
  exit 78
fi

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
