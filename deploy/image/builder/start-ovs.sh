#!/bin/sh
# start-ovs: Open vSwitch in the t1route agent pod's "ovs" container.
# ovsdb-server runs in the background, ovs-vswitchd in the foreground as the
# container's main process (logging to the container's output), so that the
# container ends when the switch does. The database survives restarts in
# OVS_DBDIR (a hostPath); it is created on first start and converted when a
# newer image brings a newer schema. Paths are OVS's defaults, which the
# agent and t1route-cni use: /var/run/openvswitch, /etc/openvswitch,
# /var/log/openvswitch.
set -eu
run=${OVS_RUNDIR:-/var/run/openvswitch}
dbdir=${OVS_DBDIR:-/etc/openvswitch}
logdir=${OVS_LOGDIR:-/var/log/openvswitch}
schema=/usr/share/openvswitch/vswitch.ovsschema
db=$dbdir/conf.db

if [ ! -s "$db" ]; then
  ovsdb-tool create "$db" "$schema"
elif [ "$(ovsdb-tool needs-conversion "$db" "$schema")" = yes ]; then
  ovsdb-tool convert "$db" "$schema"
fi
# A previous container's ovsdb-server may still hold the database when this
# one starts (a restart of the ovs container alone); ask it to go.
if [ -e "$run/ovsdb-server.pid" ]; then
  ovs-appctl -t ovsdb-server exit 2>/dev/null || true
fi
ovsdb-server "$db" --remote=punix:"$run/db.sock" --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
  --pidfile="$run/ovsdb-server.pid" --log-file="$logdir/ovsdb-server.log" --detach
ovs-vsctl --no-wait init
# system-id identifies this node to OVS tooling; the node name is stable.
if [ -n "${NODE_NAME:-}" ]; then
  ovs-vsctl --no-wait set Open_vSwitch . external_ids:system-id="$NODE_NAME" external_ids:hostname="$NODE_NAME"
fi
# Extra settings before the switch starts, e.g. other_config:userspace-tso-enable=true.
if [ -n "${OVS_OTHER_CONFIG:-}" ]; then
  for kv in $OVS_OTHER_CONFIG; do ovs-vsctl --no-wait set Open_vSwitch . other_config:"$kv"; done
fi
exec ovs-vswitchd unix:"$run/db.sock" --pidfile="$run/ovs-vswitchd.pid" -vconsole:info -vsyslog:off "$@"
