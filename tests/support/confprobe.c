/* A tiny static probe run inside containers by the confinement tests.
 *
 * busybox has no keyctl applet and its unshare applet hides which call
 * failed, so the tests ask this probe instead. Each check prints one line,
 * `name=ok` or `name=ERRNO-NAME`, so a RUN step and `portique run` can be
 * compared line by line.
 *
 *   confprobe addkey DESC PAYLOAD [session]   add a "user" key to the caller's user
 *                                             keyring (or session keyring)
 *   confprobe delkey DESC           unlink it again
 *   confprobe readkey DESC [session]  search that keyring for DESC, print its payload
 *   confprobe session               print the serial of the caller's session keyring
 *   confprobe newsession DESC PAYLOAD CMD...  join a new session keyring, add the key
 *                                   to it, print its serial (caller=N), exec CMD
 *   confprobe syscalls              try what the default confinement must deny
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_SPEC_SESSION_KEYRING -3
#define KEY_SPEC_USER_KEYRING -4
#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_UNLINK 9
#define KEYCTL_SEARCH 10
#define KEYCTL_READ 11

static const char *errname(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case ENOKEY: return "ENOKEY";
    case ENOENT: return "ENOENT";
    case EBUSY: return "EBUSY";
    case ENODEV: return "ENODEV";
    default: return "EOTHER";
    }
}

static void report(const char *name, long rc) {
    if (rc < 0)
        printf("%s=%s\n", name, errname(errno));
    else
        printf("%s=ok\n", name);
}

static long search_key(const char *desc, long ring) {
    return syscall(SYS_keyctl, KEYCTL_SEARCH, ring, "user", desc, 0);
}

static long ring_of(int argc, char **argv, int at) {
    return argc > at && strcmp(argv[at], "session") == 0 ? KEY_SPEC_SESSION_KEYRING
                                                         : KEY_SPEC_USER_KEYRING;
}

static int read_key(const char *desc, long ring) {
    long id = search_key(desc, ring);
    if (id < 0) {
        printf("readkey=%s\n", errname(errno));
        return 1;
    }
    char buf[256];
    long n = syscall(SYS_keyctl, KEYCTL_READ, id, buf, sizeof buf - 1);
    if (n < 0) {
        printf("readkey=%s\n", errname(errno));
        return 1;
    }
    buf[n < (long)sizeof buf - 1 ? n : (long)sizeof buf - 1] = 0;
    printf("readkey=ok secret=%s\n", buf);
    return 0;
}

/* In a child: a new user namespace (root inside, full capabilities there),
 * then a tmpfs mount in a mount namespace it owns. */
static void userns_child(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
        printf("userns=%s\n", errname(errno));
        _exit(0);
    }
    printf("userns=ok\n");
    fflush(stdout);
    report("userns_mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    fflush(stdout);
    _exit(0);
}

static void try_syscalls(void) {
    report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
    /* A key type that does not exist: ENODEV when the call is allowed, and
     * nothing is added to the keyring either way. */
    report("add_key", syscall(SYS_add_key, "confprobe", "x", "x", 1, KEY_SPEC_USER_KEYRING));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        userns_child();
    waitpid(pid, NULL, 0);
    report("unshare_mnt", unshare(CLONE_NEWNS));
    report("mount_tmpfs", mount("none", "/tmp", "tmpfs", 0, NULL));
    report("bpf", syscall(SYS_bpf, 0, NULL, 0));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
    report("syslog", syscall(SYS_syslog, 10, NULL, 0));
    fflush(stdout);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "addkey") == 0) {
        long id = syscall(SYS_add_key, "user", argv[2], argv[3], strlen(argv[3]),
                          ring_of(argc, argv, 4));
        report("addkey", id);
        return id < 0;
    }
    if (argc == 3 && strcmp(argv[1], "delkey") == 0) {
        long id = search_key(argv[2], KEY_SPEC_USER_KEYRING);
        if (id >= 0)
            id = syscall(SYS_keyctl, KEYCTL_UNLINK, id, KEY_SPEC_USER_KEYRING);
        report("delkey", id);
        return id < 0;
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "readkey") == 0)
        return read_key(argv[2], ring_of(argc, argv, 3));
    if (argc >= 5 && strcmp(argv[1], "newsession") == 0) {
        long ring = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL);
        long id = ring < 0 ? ring
                           : syscall(SYS_add_key, "user", argv[2], argv[3], strlen(argv[3]),
                                     KEY_SPEC_SESSION_KEYRING);
        if (id < 0) {
            printf("newsession=%s\n", errname(errno));
            return 1;
        }
        printf("caller=%ld\n", ring);
        execvp(argv[4], argv + 4);
        printf("exec=%s\n", errname(errno));
        return 127;
    }
    if (argc == 2 && strcmp(argv[1], "session") == 0) {
        /* Without creating one: ENOKEY when the process has none. */
        long id = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
        if (id < 0)
            printf("session=%s\n", errname(errno));
        else
            printf("session=%ld\n", id);
        return id < 0;
    }
    if (argc == 2 && strcmp(argv[1], "syscalls") == 0) {
        try_syscalls();
        return 0;
    }
    fprintf(stderr, "usage: confprobe addkey|delkey|readkey|session|syscalls ...\n");
    return 2;
}
