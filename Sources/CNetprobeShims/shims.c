#define _GNU_SOURCE
#include "CNetprobeShims.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <pcap/pcap.h>
#include <netlink/version.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>
#include <libvirt/libvirt.h>

const char *CNetprobe_pcap_version(void) { return pcap_lib_version(); }

const char *CNetprobe_libnl_version(void) { return LIBNL_STRING; } /* "libnl 3.7.0" */

long CNetprobe_libvirt_version(void) {
    unsigned long version = 0;
    if (virGetVersion(&version, NULL, NULL) < 0) return -1;
    return (long)version;
}

uint64_t CNetprobe_qdisc_stat(struct rtnl_qdisc *qdisc, int stat_id) {
    return rtnl_tc_get_stat(TC_CAST(qdisc), (enum rtnl_tc_stat)stat_id);
}

int CNetprobe_enter_netns(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = setns(fd, CLONE_NEWNET);
    int saved = errno;
    close(fd);
    return rc < 0 ? -saved : 0;
}

int CNetprobe_setns_fd(int fd) {
    return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

/* Set by the handler on whichever thread takes the signal (the main thread, parked in Dispatch),
 * read by the capture loop on another thread: volatile sig_atomic_t only covers a handler on the
 * same thread, so this is a lock-free atomic (async-signal-safe). ThreadSanitizer found the race. */
static atomic_int stop_signal = 0;

static void on_stop_signal(int sig) { atomic_store(&stop_signal, sig); }

void CNetprobe_install_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking poll returns EINTR at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int CNetprobe_stop_signal(void) { return atomic_load(&stop_signal); }

void CNetprobe_reset_stop_signal(void) { atomic_store(&stop_signal, 0); }

const char *CNetprobe_qdisc_kind(struct rtnl_qdisc *qdisc) {
    const char *kind = rtnl_tc_get_kind(TC_CAST(qdisc));
    return kind ? kind : "";
}
