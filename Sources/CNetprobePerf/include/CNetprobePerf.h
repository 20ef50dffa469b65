// CNetprobePerf: the few calls Swift cannot make itself to record kernel tracepoints with
// perf_event_open(2): the syscall (glibc has no wrapper), its ioctls (variadic ioctl(2) is not
// imported) and the ring buffer's head/tail, which need acquire/release ordering.
// Every symbol is prefixed CNetprobe_. Keep this file tiny: logic belongs in Swift
// (Sources/NetprobeCapture/KernelEventRecorder.swift).
#ifndef CNETPROBE_PERF_H
#define CNETPROBE_PERF_H

#include <stdint.h>

/// The sample layout every event opened here writes (PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
/// PERF_SAMPLE_CPU | PERF_SAMPLE_RAW, in the kernel's fixed order), after the 8-byte
/// perf_event_header (u32 type, u16 misc, u16 size):
///   u32 pid, u32 tid, u64 time, u32 cpu, u32 reserved, u32 raw_size, raw_size bytes of the
///   tracepoint's record (its fields as the tracefs `format` file describes them).
enum {
    CNetprobe_PERF_RECORD_LOST = 2,    // PERF_RECORD_LOST: u64 id, u64 lost
    CNetprobe_PERF_RECORD_SAMPLE = 9,  // PERF_RECORD_SAMPLE: the layout above
};

/// perf_event_open(2) for tracepoint `id` (tracefs events/GROUP/NAME/id) on one CPU, every task
/// (pid -1), one sample per hit, disabled until enabled, timestamps on `clockid` (use_clockid),
/// close-on-exec. `wakeup_bytes` > 0: poll(2) wakes when that many bytes wait in the ring
/// (watermark). Returns the fd, or -errno.
int CNetprobe_perf_open_tracepoint(uint64_t id, int cpu, int clockid, uint32_t wakeup_bytes);

/// ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter): an ftrace filter (`name == "vnet0"`). 0 or -errno.
int CNetprobe_perf_set_filter(int fd, const char *filter);
/// ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, target): fd's samples go into target's ring (same CPU).
/// 0 or -errno.
int CNetprobe_perf_set_output(int fd, int target);
/// ioctl(fd, PERF_EVENT_IOC_ENABLE / PERF_EVENT_IOC_DISABLE, 0). 0 or -errno.
int CNetprobe_perf_enable(int fd);
int CNetprobe_perf_disable(int fd);

/// The ring's control page (the first page of the mapping, struct perf_event_mmap_page):
/// data_head read with acquire ordering (the kernel's writes before it are visible) ...
uint64_t CNetprobe_perf_ring_head(const void *control_page);
/// ... and data_tail written with release ordering (the bytes before it are free again).
void CNetprobe_perf_ring_set_tail(void *control_page, uint64_t tail);
/// Where the data area starts in the mapping and how long it is (data_offset, data_size).
uint64_t CNetprobe_perf_ring_data_offset(const void *control_page);
uint64_t CNetprobe_perf_ring_data_size(const void *control_page);

#endif
