// CNetprobeShims: the few things Swift cannot import from libpcap, libnl-route-3 and libvirt.
// Every symbol is prefixed CNetprobe_. Keep this file tiny: logic belongs in Swift.
#ifndef CNETPROBE_SHIMS_H
#define CNETPROBE_SHIMS_H

#include <stdint.h>
#include <stddef.h>

struct rtnl_qdisc;

/// The library versions this binary was linked against, as one line each.
/// Calls pcap_lib_version(), reads libnl's LIBNL_STRING and calls virGetVersion().
const char *CNetprobe_pcap_version(void);
const char *CNetprobe_libnl_version(void);
/// libvirt's version as major*1000000 + minor*1000 + release, or -1 on failure.
long CNetprobe_libvirt_version(void);

/// rtnl_tc_get_stat(TC_CAST(qdisc), id): TC_CAST is a macro Swift cannot call.
uint64_t CNetprobe_qdisc_stat(struct rtnl_qdisc *qdisc, int stat_id);

/// Moves the calling thread into the network namespace at `path` (e.g. /run/netns/NAME or
/// /proc/self/ns/net): open(2) + setns(2, CLONE_NEWNET). Returns 0, or -errno.
int CNetprobe_enter_netns(const char *path);

/// setns(fd, CLONE_NEWNET) for an already open namespace file. Returns 0, or -errno.
int CNetprobe_setns_fd(int fd);

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that only set a flag (async-signal-safe).
void CNetprobe_install_stop_signals(void);
/// The signal that asked netprobe to stop, or 0.
int CNetprobe_stop_signal(void);
/// Clears the flag (tests).
void CNetprobe_reset_stop_signal(void);

/// libnl: the qdisc type name ("tbf", "fq_codel" ...) of a qdisc, or "" (rtnl_tc_get_kind via TC_CAST).
const char *CNetprobe_qdisc_kind(struct rtnl_qdisc *qdisc);

#endif
