/*
 * The pod sandbox process of chatcluster's node (image chatcluster/pause, built by hack/images.sh).
 *
 * The runtime starts one of these per pod to hold the pod's namespaces; it does nothing else.
 * As PID 1 of its namespace it gets no default signal actions, so it installs its own:
 * SIGINT and SIGTERM end it with status 0 (the runtime stops a sandbox with SIGTERM), and
 * SIGCHLD reaps every exited child, so orphans adopted in a shared PID namespace never linger
 * as zombies. Between signals it sleeps in pause().
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signal_number) {
    (void)signal_number;
    _exit(0);
}

static void reap(int signal_number) {
    (void)signal_number;
    /* Signals coalesce: one SIGCHLD may stand for several exits, so reap until none is left.
     * The handler may interrupt code that reads errno; keep it as it was. */
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int handle(int signal_number, void (*handler)(int), int flags) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = SA_RESTART | flags;
    sigemptyset(&action.sa_mask);
    return sigaction(signal_number, &action, NULL);
}

static void complain(const char *message) {
    /* write(2), not stdio: nothing here needs a buffer, and the binary stays small. */
    ssize_t ignored = write(STDERR_FILENO, message, strlen(message));
    (void)ignored;
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc > 1) {
        complain("usage: pause (takes no arguments)\n");
        return 2;
    }
    if (handle(SIGINT, stop, 0) != 0 || handle(SIGTERM, stop, 0) != 0
        || handle(SIGCHLD, reap, SA_NOCLDSTOP) != 0) {
        complain("pause: cannot install signal handlers\n");
        return 1;
    }
    for (;;) {
        pause();
    }
}
