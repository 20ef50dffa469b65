// CNetprobeSystem: the GNU and Linux calls Swift's Glibc module does not import, for
// NetprobeSystem's spawner. No library dependencies. Every symbol is prefixed CNetprobeSystem_.
#ifndef CNETPROBE_SYSTEM_H
#define CNETPROBE_SYSTEM_H

/// `fd` argument of CNetprobeSystem_spawn: keep the parent's descriptor.
#define CNETPROBE_SYSTEM_INHERIT (-1)
/// `fd` argument of CNetprobeSystem_spawn: open /dev/null in the child.
#define CNETPROBE_SYSTEM_DEV_NULL (-2)

/// posix_spawn(path, argv, envp) with every signal unblocked and at its default disposition in the
/// child (threads of a Swift program often block signals, and a child inherits the mask: a child
/// spawned that way would ignore SIGTERM). `stdin_fd`, `stdout_fd`, `stderr_fd`: a descriptor to
/// dup2 onto 0, 1, 2, or CNETPROBE_SYSTEM_INHERIT / CNETPROBE_SYSTEM_DEV_NULL. `directory`: the
/// child's working directory (posix_spawn_file_actions_addchdir_np), or NULL.
/// Returns 0 and the pid in `*pid`, or an errno value.
int CNetprobeSystem_spawn(const char *path, char *const argv[], char *const envp[], int stdin_fd, int stdout_fd,
                          int stderr_fd, const char *directory, int *pid);

/// pipe2(fds, O_CLOEXEC): both ends close on exec, so no other child inherits them. 0 or -1 (errno).
int CNetprobeSystem_pipe_cloexec(int fds[2]);

/// pidfd_open(pid, 0): a descriptor that polls readable when the child exits. -1 (errno) where
/// the kernel has none.
int CNetprobeSystem_pidfd_open(int pid);

/// pthread_setname_np(pthread_self(), name): names the calling thread (15 bytes are kept).
void CNetprobeSystem_name_thread(const char *name);

/// The wait status macros (WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG) as functions.
int CNetprobeSystem_exited(int status);
int CNetprobeSystem_exit_code(int status);
int CNetprobeSystem_signalled(int status);
int CNetprobeSystem_term_signal(int status);

/// malloc_trim(0): hands the free memory of every malloc arena back to the system. 1 when some
/// was released.
int CNetprobeSystem_malloc_trim(void);

#endif
