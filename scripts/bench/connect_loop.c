/*
 * connect_loop: a minimal, fast, non-blocking TCP connect() sweep using epoll.
 *
 * It is the speed reference ("the machine's limit") for scripts/bench-sweep.sh:
 * no host discovery, no retries, no output formatting beyond ip:port lines.
 *
 * Usage: connect_loop -t THREADS -w WINDOW -T TIMEOUT_MS -p PORTS CIDR_V4
 *   PORTS    comma list, ranges allowed: 3000,8000-8002,8080
 *   CIDR_V4  a.b.c.d/n (every address of the block is probed, like nmap)
 *
 * Each thread takes a contiguous, disjoint share of the (address x port)
 * index space and keeps up to WINDOW connects in flight.  Open ports are
 * printed to stdout as "ip:port"; a summary goes to stderr.
 *
 * Build: gcc -O2 -pthread -o connect_loop connect_loop.c
 *
 * SAFETY: this program sends TCP SYNs to every address of CIDR_V4.  Only point
 * it at loopback (127.0.0.0/8) or at hosts of a network namespace you created.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 65536
#define MAX_EVENTS 1024

static uint32_t g_base;      /* first address, host order */
static uint64_t g_nhosts;    /* addresses in the CIDR */
static uint16_t *g_ports;
static uint64_t g_nports;
static int g_window = 1000;
static int g_timeout_ms = 1000;
static pthread_mutex_t g_out_lock = PTHREAD_MUTEX_INITIALIZER;

struct slot {
    int fd;           /* -1 when free */
    uint64_t idx;     /* probe index */
    int64_t deadline; /* monotonic ms */
};

struct worker {
    pthread_t tid;
    uint64_t begin, end; /* [begin, end) of the index space */
    /* results */
    uint64_t probes, open, refused, timeouts, unreach, other_err, fd_retries, immediate;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void idx_to_addr(uint64_t idx, struct sockaddr_in *sa) {
    /* host-major: all ports of one address, then the next address */
    uint64_t h = idx / g_nports, p = idx % g_nports;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(g_base + (uint32_t)h);
    sa->sin_port = htons(g_ports[p]);
}

static void report_open(uint64_t idx) {
    struct sockaddr_in sa;
    char ip[INET_ADDRSTRLEN];
    idx_to_addr(idx, &sa);
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
    pthread_mutex_lock(&g_out_lock);
    printf("%s:%u\n", ip, (unsigned)ntohs(sa.sin_port));
    pthread_mutex_unlock(&g_out_lock);
}

/* Close an fd whose connect succeeded with an RST instead of a FIN, so that no
 * TIME_WAIT state piles up on either side (nmap -sT does the same). */
static void close_open(int fd) {
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void classify_error(struct worker *w, int err) {
    switch (err) {
    case ECONNREFUSED:
        w->refused++;
        break;
    case ETIMEDOUT:
        w->timeouts++;
        break;
    case ENETUNREACH:
    case EHOSTUNREACH:
        w->unreach++;
        break;
    default:
        w->other_err++;
        break;
    }
}

static void *run_worker(void *arg) {
    struct worker *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        exit(2);
    }
    struct slot *slots = calloc((size_t)g_window, sizeof(*slots));
    int *free_stack = calloc((size_t)g_window, sizeof(int));
    struct epoll_event *events = calloc(MAX_EVENTS, sizeof(*events));
    if (!slots || !free_stack || !events) {
        perror("calloc");
        exit(2);
    }
    int nfree = 0;
    for (int i = g_window - 1; i >= 0; i--) {
        slots[i].fd = -1;
        free_stack[nfree++] = i;
    }
    int inflight = 0;
    uint64_t next = w->begin;
    int64_t check_every = g_timeout_ms / 4;
    if (check_every < 1) check_every = 1;
    if (check_every > 10) check_every = 10;
    int64_t next_check = now_ms() + check_every;

    while (next < w->end || inflight > 0) {
        /* 1. refill the window */
        int fd_starved = 0;
        while (nfree > 0 && next < w->end) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    w->fd_retries++;
                    fd_starved = 1;
                    break; /* retry after some in-flight probes finish */
                }
                perror("socket");
                exit(2);
            }
            struct sockaddr_in sa;
            idx_to_addr(next, &sa);
            int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
            if (rc == 0) { /* immediate success (loopback does this) */
                w->probes++;
                w->immediate++;
                w->open++;
                report_open(next);
                close_open(fd);
                next++;
                continue;
            }
            int err = errno;
            if (err == EINPROGRESS) {
                int s = free_stack[--nfree];
                slots[s].fd = fd;
                slots[s].idx = next;
                slots[s].deadline = now_ms() + g_timeout_ms;
                struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)s};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                    perror("epoll_ctl");
                    exit(2);
                }
                inflight++;
                next++;
                continue;
            }
            close(fd);
            if (err == EADDRNOTAVAIL || err == EAGAIN) {
                /* ephemeral ports exhausted for now: retry this index later */
                w->fd_retries++;
                fd_starved = 1;
                break;
            }
            w->probes++;
            w->immediate++;
            classify_error(w, err); /* ECONNREFUSED at once, ENETUNREACH, ... */
            next++;
        }
        if (inflight == 0) {
            if (fd_starved) {
                /* nothing in flight to wait for: back off briefly (bounded by
                 * the index space; each pass makes progress or waits 1 ms) */
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
            }
            continue;
        }

        /* 2. wait for completions */
        int64_t t = now_ms();
        int wait_ms = (int)(next_check > t ? next_check - t : 0);
        int n = epoll_wait(ep, events, MAX_EVENTS, wait_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            exit(2);
        }
        for (int i = 0; i < n; i++) {
            int s = (int)events[i].data.u32;
            int fd = slots[s].fd;
            if (fd < 0) continue;
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
            w->probes++;
            if (err == 0) {
                w->open++;
                report_open(slots[s].idx);
                close_open(fd);
            } else {
                classify_error(w, err);
                close(fd); /* also removes it from the epoll set */
            }
            slots[s].fd = -1;
            free_stack[nfree++] = s;
            inflight--;
        }

        /* 3. time-ordered scan for expired probes */
        t = now_ms();
        if (t >= next_check) {
            for (int s = 0; s < g_window; s++) {
                if (slots[s].fd >= 0 && slots[s].deadline <= t) {
                    close(slots[s].fd);
                    slots[s].fd = -1;
                    free_stack[nfree++] = s;
                    inflight--;
                    w->probes++;
                    w->timeouts++;
                }
            }
            next_check = t + check_every;
        }
    }
    close(ep);
    free(slots);
    free(free_stack);
    free(events);
    return NULL;
}

static int parse_ports(const char *spec) {
    g_ports = calloc(MAX_PORTS, sizeof(uint16_t));
    if (!g_ports) return -1;
    char *dup = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        long lo = strtol(tok, NULL, 10), hi = dash ? strtol(dash + 1, NULL, 10) : lo;
        if (lo < 1 || hi > 65535 || lo > hi) {
            free(dup);
            return -1;
        }
        for (long p = lo; p <= hi; p++) {
            if (g_nports >= MAX_PORTS) {
                free(dup);
                return -1;
            }
            g_ports[g_nports++] = (uint16_t)p;
        }
    }
    free(dup);
    return g_nports > 0 ? 0 : -1;
}

static int parse_cidr(const char *spec) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *slash = strchr(buf, '/');
    int bits = 32;
    if (slash) {
        *slash = 0;
        bits = atoi(slash + 1);
    }
    struct in_addr a;
    if (bits < 0 || bits > 32 || inet_pton(AF_INET, buf, &a) != 1) return -1;
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    g_base = ntohl(a.s_addr) & mask;
    g_nhosts = (uint64_t)1 << (32 - bits);
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: connect_loop -t THREADS -w WINDOW -T TIMEOUT_MS -p PORTS CIDR_V4\n");
    exit(1);
}

int main(int argc, char **argv) {
    int threads = 1, opt;
    const char *ports = NULL;
    while ((opt = getopt(argc, argv, "t:w:T:p:h")) != -1) {
        switch (opt) {
        case 't': threads = atoi(optarg); break;
        case 'w': g_window = atoi(optarg); break;
        case 'T': g_timeout_ms = atoi(optarg); break;
        case 'p': ports = optarg; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || !ports || threads < 1 || threads > 256 || g_window < 1 ||
        g_timeout_ms < 1)
        usage();
    if (parse_ports(ports) < 0) {
        fprintf(stderr, "bad port list: %s\n", ports);
        return 1;
    }
    if (parse_cidr(argv[optind]) < 0) {
        fprintf(stderr, "bad CIDR: %s\n", argv[optind]);
        return 1;
    }

    /* raise the fd limit to the hard limit; shrink the window if it won't fit */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) perror("setrlimit");
        getrlimit(RLIMIT_NOFILE, &rl);
        long budget = ((long)rl.rlim_cur - 64) / threads;
        if (budget < 1) budget = 1;
        if ((long)g_window > budget) {
            fprintf(stderr, "connect_loop: window %d > fd budget, using %ld\n", g_window,
                    budget);
            g_window = (int)budget;
        }
    }

    uint64_t total = g_nhosts * g_nports;
    if ((uint64_t)threads > total) threads = (int)total;
    struct worker *ws = calloc((size_t)threads, sizeof(*ws));
    uint64_t share = total / (uint64_t)threads, rem = total % (uint64_t)threads, at = 0;
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        ws[i].begin = at;
        at += share + ((uint64_t)i < rem ? 1 : 0);
        ws[i].end = at;
        if (pthread_create(&ws[i].tid, NULL, run_worker, &ws[i]) != 0) {
            perror("pthread_create");
            return 2;
        }
    }
    struct worker sum = {0};
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].tid, NULL);
        sum.probes += ws[i].probes;
        sum.open += ws[i].open;
        sum.refused += ws[i].refused;
        sum.timeouts += ws[i].timeouts;
        sum.unreach += ws[i].unreach;
        sum.other_err += ws[i].other_err;
        sum.fd_retries += ws[i].fd_retries;
        sum.immediate += ws[i].immediate;
    }
    double secs = now_s() - t0;
    fflush(stdout);
    fprintf(stderr,
            "probes=%llu open=%llu refused=%llu timeout=%llu unreach=%llu other=%llu "
            "retries=%llu immediate=%llu threads=%d window=%d timeout_ms=%d seconds=%.3f probes_per_s=%.0f\n",
            (unsigned long long)sum.probes, (unsigned long long)sum.open,
            (unsigned long long)sum.refused, (unsigned long long)sum.timeouts,
            (unsigned long long)sum.unreach, (unsigned long long)sum.other_err,
            (unsigned long long)sum.fd_retries, (unsigned long long)sum.immediate, threads, g_window, g_timeout_ms, secs,
            secs > 0 ? (double)sum.probes / secs : 0.0);
    free(ws);
    free(g_ports);
    return sum.probes == total ? 0 : 3;
}
