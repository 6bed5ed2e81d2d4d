#!/bin/sh
# start-ovs: Open vSwitch in the t1route agent pod's "ovs" container.
# `t1route ovs` runs ovsdb-server and ovs-vswitchd (logging to the container's
# output) and keeps the node forwarding across their restarts: a daemon that
# exits is started again at once, ovs-vswitchd with flow-restore-wait and the
# flow table the agent last installed, restored before it forwards a packet;
# during a surge upgrade it waits for the old pod's switch to stop, copying its
# flows meanwhile. The database survives restarts in OVS_DBDIR (a hostPath);
# it is created on first start and converted when a newer image brings a newer
# schema. Paths are OVS's defaults, which the agent and t1route-cni use:
# /var/run/openvswitch, /etc/openvswitch, /var/log/openvswitch.
# OVS_OTHER_CONFIG: extra other_config settings before the switch starts,
# space-separated (e.g. userspace-tso-enable=true).
set -eu
exec /usr/local/bin/t1route ovs --run-dir "${OVS_RUNDIR:-/var/run/openvswitch}" --db-dir "${OVS_DBDIR:-/etc/openvswitch}" \
  --log-dir "${OVS_LOGDIR:-/var/log/openvswitch}" -- -vconsole:info -vsyslog:off "$@"
