#define _GNU_SOURCE
#include "CNetprobeShims.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <pcap/pcap.h>
#include <netlink/version.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>

const char *CNetprobe_pcap_version(void) { return pcap_lib_version(); }

const char *CNetprobe_libnl_version(void) { return LIBNL_STRING; } /* "libnl 3.7.0" */

/* libvirt through dlopen: one table of the functions netprobe calls, filled once. */
#define LIBVIRT_CALLS(X) \
    X(virGetVersion) X(virSetErrorFunc) X(virConnectOpenReadOnly) X(virConnectClose) \
    X(virGetLastError) X(virConnectListAllDomains) X(virDomainLookupByName) X(virDomainFree) \
    X(virDomainGetName) X(virDomainIsActive) X(virDomainGetXMLDesc) \
    X(virDomainInterfaceAddresses) X(virDomainInterfaceFree)

static struct {
#define FIELD(name) __typeof__(&name) name;
    LIBVIRT_CALLS(FIELD)
#undef FIELD
} libvirt;
static pthread_once_t libvirt_once = PTHREAD_ONCE_INIT;
static int libvirt_loaded;          /* 1 once every function was found */
static char libvirt_error[512];     /* why not, otherwise */

static void libvirt_open(void) {
    void *handle = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(libvirt_error, sizeof libvirt_error, "%s", dlerror());
        return;
    }
#define RESOLVE(name) \
    if (!(libvirt.name = (__typeof__(&name))dlsym(handle, #name))) { \
        snprintf(libvirt_error, sizeof libvirt_error, "libvirt.so.0 has no %s", #name); \
        return; \
    }
    LIBVIRT_CALLS(RESOLVE)
#undef RESOLVE
    libvirt_loaded = 1;
}

int CNetprobe_libvirt_load(char *error, size_t size) {
    pthread_once(&libvirt_once, libvirt_open);
    if (libvirt_loaded) return 0;
    if (error && size) snprintf(error, size, "%s", libvirt_error);
    return -1;
}

/* A call before a successful load is a bug in netprobe, not a user's error. */
#define LOADED(name) (libvirt_loaded ? libvirt.name : (abort(), libvirt.name))

long CNetprobe_libvirt_version(void) {
    unsigned long version = 0;
    if (CNetprobe_libvirt_load(NULL, 0) < 0 || LOADED(virGetVersion)(&version, NULL, NULL) < 0) return -1;
    return (long)version;
}

void CNetprobe_virSetErrorFunc(void *userData, virErrorFunc handler) { LOADED(virSetErrorFunc)(userData, handler); }
virConnectPtr CNetprobe_virConnectOpenReadOnly(const char *name) { return LOADED(virConnectOpenReadOnly)(name); }
int CNetprobe_virConnectClose(virConnectPtr conn) { return LOADED(virConnectClose)(conn); }
virErrorPtr CNetprobe_virGetLastError(void) { return LOADED(virGetLastError)(); }
int CNetprobe_virConnectListAllDomains(virConnectPtr conn, virDomainPtr **domains, unsigned int flags) {
    return LOADED(virConnectListAllDomains)(conn, domains, flags);
}
virDomainPtr CNetprobe_virDomainLookupByName(virConnectPtr conn, const char *name) {
    return LOADED(virDomainLookupByName)(conn, name);
}
int CNetprobe_virDomainFree(virDomainPtr domain) { return LOADED(virDomainFree)(domain); }
const char *CNetprobe_virDomainGetName(virDomainPtr domain) { return LOADED(virDomainGetName)(domain); }
int CNetprobe_virDomainIsActive(virDomainPtr domain) { return LOADED(virDomainIsActive)(domain); }
char *CNetprobe_virDomainGetXMLDesc(virDomainPtr domain, unsigned int flags) {
    return LOADED(virDomainGetXMLDesc)(domain, flags);
}
int CNetprobe_virDomainInterfaceAddresses(virDomainPtr domain, virDomainInterfacePtr **ifaces,
                                          unsigned int source, unsigned int flags) {
    return LOADED(virDomainInterfaceAddresses)(domain, ifaces, source, flags);
}
void CNetprobe_virDomainInterfaceFree(virDomainInterfacePtr iface) { LOADED(virDomainInterfaceFree)(iface); }

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
