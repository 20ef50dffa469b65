#define _GNU_SOURCE
#include "CNetprobeSystem.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int redirect(posix_spawn_file_actions_t *actions, int fd, int target, int flags) {
    if (fd == CNETPROBE_SYSTEM_DEV_NULL) return posix_spawn_file_actions_addopen(actions, target, "/dev/null", flags, 0);
    if (fd >= 0) return posix_spawn_file_actions_adddup2(actions, fd, target);
    return 0;
}

int CNetprobeSystem_spawn(const char *path, char *const argv[], char *const envp[], int stdin_fd, int stdout_fd,
                          int stderr_fd, const char *directory, int *pid) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_init(&actions);
    int rc = redirect(&actions, stdin_fd, 0, O_RDONLY);
    if (rc == 0) rc = redirect(&actions, stdout_fd, 1, O_WRONLY);
    if (rc == 0) rc = redirect(&actions, stderr_fd, 2, O_WRONLY);
    if (rc == 0 && directory) rc = posix_spawn_file_actions_addchdir_np(&actions, directory);
    pid_t child = -1;
    if (rc == 0) rc = posix_spawn(&child, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc == 0) *pid = (int)child;
    return rc;
}

int CNetprobeSystem_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int CNetprobeSystem_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

void CNetprobeSystem_name_thread(const char *name) {
    char short_name[16];
    strncpy(short_name, name, sizeof short_name - 1);
    short_name[sizeof short_name - 1] = 0;
    pthread_setname_np(pthread_self(), short_name);
}

int CNetprobeSystem_exited(int status) { return WIFEXITED(status); }
int CNetprobeSystem_exit_code(int status) { return WEXITSTATUS(status); }
int CNetprobeSystem_signalled(int status) { return WIFSIGNALED(status); }
int CNetprobeSystem_term_signal(int status) { return WTERMSIG(status); }

int CNetprobeSystem_malloc_trim(void) {
    return malloc_trim(0);
}
