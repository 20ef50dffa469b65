#include "CNetprobeShims.h"

#include <pcap/pcap.h>
#include <netlink/version.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>
#include <libvirt/libvirt.h>

const char *CNetprobe_pcap_version(void) { return pcap_lib_version(); }

const char *CNetprobe_libnl_version(void) { return "libnl " LIBNL_STRING; }

long CNetprobe_libvirt_version(void) {
    unsigned long version = 0;
    if (virGetVersion(&version, NULL, NULL) < 0) return -1;
    return (long)version;
}

uint64_t CNetprobe_qdisc_stat(struct rtnl_qdisc *qdisc, int stat_id) {
    return rtnl_tc_get_stat(TC_CAST(qdisc), (enum rtnl_tc_stat)stat_id);
}
