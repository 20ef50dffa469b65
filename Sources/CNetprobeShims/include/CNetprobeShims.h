// CNetprobeShims: the few things Swift cannot import from libpcap, libnl-route-3 and libvirt.
// Every symbol is prefixed CNetprobe_. Keep this file tiny: logic belongs in Swift.
#ifndef CNETPROBE_SHIMS_H
#define CNETPROBE_SHIMS_H

#include <stdint.h>
#include <stddef.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

struct rtnl_qdisc;

/// The library versions this binary uses, as one line each.
/// Calls pcap_lib_version(), reads libnl's LIBNL_STRING and calls virGetVersion().
const char *CNetprobe_pcap_version(void);
const char *CNetprobe_libnl_version(void);
/// libvirt's version as major*1000000 + minor*1000 + release, or -1 when it cannot be loaded.
long CNetprobe_libvirt_version(void);

/// libvirt is loaded when first needed (dlopen of libvirt.so.0), not linked: only `capture --vm`,
/// `lab --libvirt` and `version` talk to it, and loading it (with GnuTLS, GLib, Kerberos, SSH ...)
/// costs every other command about 13 MB of resident memory before it has read a byte.
/// Loads it once (thread-safe). 0, or -1 with dlopen's message copied into `error`.
int CNetprobe_libvirt_load(char *error, size_t size);

/// The libvirt calls netprobe makes, each forwarded to the loaded library; call
/// CNetprobe_libvirt_load first (they abort when libvirt is not loaded). Same arguments and
/// results as the functions without the prefix.
void CNetprobe_virSetErrorFunc(void *userData, virErrorFunc handler);
virConnectPtr CNetprobe_virConnectOpenReadOnly(const char *name);
int CNetprobe_virConnectClose(virConnectPtr conn);
virErrorPtr CNetprobe_virGetLastError(void);
int CNetprobe_virConnectListAllDomains(virConnectPtr conn, virDomainPtr **domains, unsigned int flags);
virDomainPtr CNetprobe_virDomainLookupByName(virConnectPtr conn, const char *name);
int CNetprobe_virDomainFree(virDomainPtr domain);
const char *CNetprobe_virDomainGetName(virDomainPtr domain);
int CNetprobe_virDomainIsActive(virDomainPtr domain);
char *CNetprobe_virDomainGetXMLDesc(virDomainPtr domain, unsigned int flags);
int CNetprobe_virDomainInterfaceAddresses(virDomainPtr domain, virDomainInterfacePtr **ifaces,
                                          unsigned int source, unsigned int flags);
void CNetprobe_virDomainInterfaceFree(virDomainInterfacePtr iface);

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
