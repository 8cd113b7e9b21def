/* fault.c -- the line a rank writes when the launcher stops it (see ffmpi.h).
 * Everything the signal handler touches is prepared beforehand; it calls only
 * async-signal-safe functions (kill, unlink, write, _exit). */
#define _GNU_SOURCE
#include "ffmpi.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define MAX_PEERS 256
#define NOTE 1024
#define PATH 1024

static int my_rank = -1;
static int npeers;
static int peer_rank[MAX_PEERS], peer_pid[MAX_PEERS];
/* Double-buffered so the handler never reads a note while it is being replaced. */
static char notes[2][NOTE];
static atomic_int note_index;
static char temps[2][PATH];
static atomic_int temps_set;

static void append(char *out, int len, int *pos, const char *s) {
    while (*s && *pos < len - 1) out[(*pos)++] = *s++;
    out[*pos] = 0;
}

static void append_int(char *out, int len, int *pos, long v) {
    char digits[24];
    int n = 0;
    int neg = v < 0;
    unsigned long u = neg ? (unsigned long)(-v) : (unsigned long)v;
    do { digits[n++] = (char)('0' + u % 10); u /= 10; } while (u && n < 23);
    if (neg && *pos < len - 1) out[(*pos)++] = '-';
    while (n > 0 && *pos < len - 1) out[(*pos)++] = digits[--n];
    out[*pos] = 0;
}

static const char *signal_name(int s) {
    switch (s) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
    }
}

void ffmpi_fault_message(int sig, char *out, int len) {
    int pos = 0;
    if (len <= 0) return;
    out[0] = 0;
    append(out, len, &pos, "repro: rank ");
    append_int(out, len, &pos, my_rank);
    append(out, len, &pos, " stopped by ");
    append(out, len, &pos, signal_name(sig));
    append(out, len, &pos, " from the launcher. ");
    int gone = 0;
    for (int i = 0; i < npeers; i++) {
        if (kill(peer_pid[i], 0) == 0 || errno != ESRCH) continue;
        append(out, len, &pos, gone ? ", rank " : "Rank ");
        append_int(out, len, &pos, peer_rank[i]);
        append(out, len, &pos, " (pid ");
        append_int(out, len, &pos, peer_pid[i]);
        append(out, len, &pos, ")");
        gone++;
    }
    if (gone) {
        append(out, len, &pos, gone > 1 ? " on this node have died" : " on this node has died");
        append(out, len, &pos, ", so the job was stopped. ");
    } else {
        append(out, len, &pos, "No other rank on this node has died: a rank elsewhere failed, a rank stopped "
                               "the job after an error it printed, or the job was cancelled (the launcher's "
                               "message says which). ");
    }
    append(out, len, &pos, notes[atomic_load(&note_index)]);
    append(out, len, &pos, "\n");
}

static void on_signal(int sig) {
    char line[4096];
    if (atomic_load(&temps_set)) {
        if (temps[0][0]) unlink(temps[0]);
        if (temps[1][0]) unlink(temps[1]);
    }
    ffmpi_fault_message(sig, line, sizeof line);
    ssize_t n = write(STDERR_FILENO, line, strlen(line));
    (void)n;
    _exit(128 + sig);
}

void ffmpi_fault_arm(int rank, int peers, const int *ranks, const int *pids) {
    my_rank = rank;
    npeers = peers < MAX_PEERS ? peers : MAX_PEERS;
    for (int i = 0; i < npeers; i++) {
        peer_rank[i] = ranks[i];
        peer_pid[i] = pids[i];
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void ffmpi_fault_note(const char *text) {
    int next = 1 - atomic_load(&note_index);
    strncpy(notes[next], text ? text : "", NOTE - 1);
    notes[next][NOTE - 1] = 0;
    atomic_store(&note_index, next);
}

void ffmpi_fault_temp_files(const char *a, const char *b) {
    atomic_store(&temps_set, 0);
    strncpy(temps[0], a ? a : "", PATH - 1);
    temps[0][PATH - 1] = 0;
    strncpy(temps[1], b ? b : "", PATH - 1);
    temps[1][PATH - 1] = 0;
    atomic_store(&temps_set, 1);
}
