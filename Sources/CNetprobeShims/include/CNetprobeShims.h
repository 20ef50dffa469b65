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

#endif
