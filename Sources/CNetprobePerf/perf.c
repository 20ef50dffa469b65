#include "CNetprobePerf.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int CNetprobe_perf_open_tracepoint(uint64_t id, int cpu, int clockid, uint32_t wakeup_bytes) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.config = id;
    attr.sample_period = 1;
    attr.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU | PERF_SAMPLE_RAW;
    attr.disabled = 1;
    attr.use_clockid = 1;
    attr.clockid = clockid;
    if (wakeup_bytes > 0) {
        attr.watermark = 1;
        attr.wakeup_watermark = wakeup_bytes;
    }
    long fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

int CNetprobe_perf_set_filter(int fd, const char *filter) {
    return ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter) < 0 ? -errno : 0;
}

int CNetprobe_perf_set_output(int fd, int target) {
    return ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, target) < 0 ? -errno : 0;
}

int CNetprobe_perf_enable(int fd) { return ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) < 0 ? -errno : 0; }
int CNetprobe_perf_disable(int fd) { return ioctl(fd, PERF_EVENT_IOC_DISABLE, 0) < 0 ? -errno : 0; }

uint64_t CNetprobe_perf_ring_head(const void *control_page) {
    const struct perf_event_mmap_page *page = control_page;
    return __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
}

void CNetprobe_perf_ring_set_tail(void *control_page, uint64_t tail) {
    struct perf_event_mmap_page *page = control_page;
    __atomic_store_n(&page->data_tail, tail, __ATOMIC_RELEASE);
}

uint64_t CNetprobe_perf_ring_data_offset(const void *control_page) {
    return ((const struct perf_event_mmap_page *)control_page)->data_offset;
}

uint64_t CNetprobe_perf_ring_data_size(const void *control_page) {
    return ((const struct perf_event_mmap_page *)control_page)->data_size;
}
