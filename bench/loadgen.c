// Echo load generator for bench/echo_bench.ts.
//
// One thread, epoll (level-triggered), non-blocking sockets, TCP_NODELAY.
// Echoed bytes are checked against what was sent (every byte with
// --verify all, as the driver does in warm-up runs; both ends of every read
// with --verify ends, the default, which is cheap enough not to load the
// generator), and at a clean end the byte counts must match: a server that
// corrupts, drops or reorders data shows up as errors, not as speed.
//
// Modes:
//   pingpong  each connection sends --size bytes, waits until all of them
//             came back, and repeats, for --seconds.
//   bulk      each connection writes as fast as the socket accepts while
//             reading the echo back, for --seconds; counts bytes echoed.
//   idle      opens --conns connections (at most --window in progress at a
//             time), sends 1 byte on each and waits for its echo, prints a
//             "ready" JSON line, then holds the connections until a line or
//             EOF arrives on stdin (or --hold seconds pass).
//
// Before the clock starts, pingpong makes one unmeasured round trip on
// every connection (the priming round), so that with thousands of
// connections the server's accepting them is not part of the measurement.
//
// After the measured period pingpong and bulk stop sending, wait for the
// bytes in flight, half-close and read until the server closes (bounded by
// --drain seconds): a clean end checks that every byte sent came back.
//
// Output: "START" and "STOP" lines on stdout when the measured period
// starts and ends, then one JSON line with the counts, the measured wall time
// and this process's own CPU time (getrusage) during it ("cpu") and in all
// ("cpuTotal"), so the reader can see the generator was not saturated.
//
// Build: gcc -O2 -o loadgen loadgen.c

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// The byte pattern has a prime period so that chunk boundaries drift
// against it; it is stored with enough tail to serve any read or write
// contiguously.
#define PERIOD 65521
#define CHUNK (256 * 1024)
#define MAX_EVENTS 512

enum mode { PINGPONG, BULK, IDLE };
enum state { CONNECTING, PRIMING, PRIMED, RUNNING, DRAINING, SHUT, DONE };

struct conn {
  int fd;
  enum state state;
  int want_out;          // EPOLLOUT is registered
  uint64_t sent;         // bytes written, whole connection
  uint64_t received;     // bytes read back, whole connection
  uint64_t msg_sent;     // pingpong: bytes of the current message written
  uint64_t msg_received; // pingpong: bytes of the current message read back
};

static struct {
  const char *host;
  int port;
  enum mode mode;
  int conns;
  size_t size;
  double seconds;
  double drain;
  double hold;
  int window;
  int verify_all;
} opt = {"127.0.0.1", 0, PINGPONG, 10, 1024, 4.0, 3.0, 300.0, 64, 0};

static uint8_t *pattern;  // PERIOD + CHUNK bytes
static uint8_t *readbuf;  // CHUNK bytes
static int epfd;
static uint64_t errors;   // connection errors (reset, refused, early EOF)
static uint64_t corrupt;  // echoed bytes that differ from what was sent
static char first_error[200];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void note_error(const char *what, int err) {
  errors++;
  if (first_error[0] == '\0') {
    snprintf(first_error, sizeof first_error, "%s: %s", what,
             err ? strerror(err) : "unexpected EOF");
  }
}

static void set_events(struct conn *c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl MOD");
}

static void want_out(struct conn *c, int on) {
  if (c->want_out == on) return;
  c->want_out = on;
  set_events(c, EPOLLIN | (on ? EPOLLOUT : 0));
}

static void close_conn(struct conn *c) {
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
  c->state = DONE;
}

static struct sockaddr_in server_addr(void) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)opt.port);
  if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
    fprintf(stderr, "loadgen: bad IPv4 address %s\n", opt.host);
    exit(2);
  }
  return sa;
}

// Starts a non-blocking connect; returns the socket.
static int start_connect(const struct sockaddr_in *sa) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0 &&
      errno != EINPROGRESS) {
    die("connect");
  }
  return fd;
}

// Connects all of conns[0..n) before the clock starts; returns 0 on success.
static int connect_all(struct conn *conns, int n, double deadline) {
  struct sockaddr_in sa = server_addr();
  for (int i = 0; i < n; i++) {
    struct conn *c = &conns[i];
    memset(c, 0, sizeof *c);
    c->fd = start_connect(&sa);
    c->state = CONNECTING;
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    int remaining = (int)((deadline - now()) * 1000);
    if (remaining <= 0 || poll(&p, 1, remaining) != 1) {
      fprintf(stderr, "loadgen: connect timed out\n");
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
      return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl ADD");
  }
  return 0;
}

// Reads once from c and checks the bytes; returns bytes read, 0 at EOF,
// -1 if nothing was available, -2 on error (connection closed).
static ssize_t read_echo(struct conn *c, size_t max) {
  if (max > CHUNK) max = CHUNK;
  ssize_t n = read(c->fd, readbuf, max);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return -1;
    note_error("read", errno);
    close_conn(c);
    return -2;
  }
  if (n > 0) {
    const uint8_t *expected = pattern + c->received % PERIOD;
    if (opt.verify_all) {
      if (memcmp(readbuf, expected, (size_t)n) != 0) corrupt++;
    } else {
      // Both ends of every read: catches lost, duplicated or shifted bytes
      // at a fraction of the cost of comparing everything.
      size_t k = n < 16 ? (size_t)n : 16;
      if (memcmp(readbuf, expected, k) != 0 ||
          memcmp(readbuf + n - k, expected + n - k, k) != 0) {
        corrupt++;
      }
    }
    c->received += (uint64_t)n;
  }
  return n;
}

// Writes up to len bytes of the stream at c->sent; returns bytes written,
// 0 if the socket is full, -1 on error (connection closed).
static ssize_t write_stream(struct conn *c, size_t len) {
  if (len > CHUNK) len = CHUNK;
  size_t offset = (size_t)(c->sent % PERIOD);
  ssize_t n = write(c->fd, pattern + offset, len);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return 0;
    note_error("write", errno);
    close_conn(c);
    return -1;
  }
  c->sent += (uint64_t)n;
  return n;
}

// pingpong: writes what is left of the current message.
static void pingpong_send(struct conn *c) {
  while (c->msg_sent < opt.size) {
    ssize_t n = write_stream(c, opt.size - c->msg_sent);
    if (n < 0) return;
    if (n == 0) {
      want_out(c, 1);
      return;
    }
    c->msg_sent += (uint64_t)n;
  }
  want_out(c, 0);
}

static void half_close(struct conn *c) {
  shutdown(c->fd, SHUT_WR);
  want_out(c, 0);
  c->state = SHUT;
}

static uint64_t roundtrips;
static int primed;  // connections whose priming round trip is done

static void pingpong_event(struct conn *c, uint32_t events, int running) {
  if (events & EPOLLOUT) pingpong_send(c);
  if (c->state == DONE || !(events & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
  // Ask for no more than the rest of the message: the server only echoes
  // what was sent, so anything beyond would be a protocol error anyway.
  size_t want = c->state == SHUT ? CHUNK : opt.size - c->msg_received;
  ssize_t n = read_echo(c, want);
  if (n < 0) return;
  if (n == 0) {
    if (c->state != SHUT || c->received != c->sent) note_error("read", 0);
    close_conn(c);
    return;
  }
  if (c->state == SHUT) return;
  c->msg_received += (uint64_t)n;
  if (c->msg_received < opt.size) return;
  c->msg_sent = 0;
  c->msg_received = 0;
  if (c->state == PRIMING) {
    // Wait (sending nothing) until every connection is primed.
    c->state = PRIMED;
    primed++;
    return;
  }
  if (running) roundtrips++;
  if (c->state == RUNNING && running) {
    pingpong_send(c);
  } else {
    half_close(c);
  }
}

static void bulk_event(struct conn *c, uint32_t events, int running) {
  if ((events & EPOLLOUT) && c->state == RUNNING) {
    if (!running) {
      half_close(c);
    } else if (write_stream(c, CHUNK) < 0) {
      return;
    }
  }
  if (c->state == DONE || !(events & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
  ssize_t n = read_echo(c, CHUNK);
  if (n == 0) {
    if (c->state != SHUT || c->received != c->sent) note_error("read", 0);
    close_conn(c);
  }
}

static void print_result(double elapsed, double cpu, uint64_t bytes,
                         uint64_t trips, int clean) {
  printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%zu,\"elapsed\":%.6f,"
         "\"roundtrips\":%llu,\"bytes\":%llu,\"cpu\":%.6f,"
         "\"cpuTotal\":%.6f,\"errors\":%llu,\"corrupt\":%llu,"
         "\"clean\":%d,\"firstError\":\"%s\"}\n",
         opt.mode == PINGPONG ? "pingpong" : opt.mode == BULK ? "bulk" : "idle",
         opt.conns, opt.size, elapsed, (unsigned long long)trips,
         (unsigned long long)bytes, cpu, cpu_seconds(),
         (unsigned long long)errors,
         (unsigned long long)corrupt, clean, first_error);
  fflush(stdout);
}

static int run_load(void) {
  struct conn *conns = calloc((size_t)opt.conns, sizeof *conns);
  if (!conns) die("calloc");
  // A server accepts a burst of thousands of connections slowly (its
  // backlog overflows and SYNs are retried), hence the scaled deadline.
  double set_up = 10.0 + opt.conns * 0.005;
  if (connect_all(conns, opt.conns, now() + set_up) < 0) return 2;

  struct epoll_event events[MAX_EVENTS];
  uint64_t bytes_at_end = 0, trips_at_end = 0;
  if (opt.mode == PINGPONG) {
    for (int i = 0; i < opt.conns; i++) {
      conns[i].state = PRIMING;
      pingpong_send(&conns[i]);
    }
    double deadline = now() + set_up;
    while (primed < opt.conns) {
      int timeout = (int)((deadline - now()) * 1000);
      if (timeout <= 0) {
        fprintf(stderr, "loadgen: priming timed out (%d of %d)\n", primed,
                opt.conns);
        return 2;
      }
      int n = epoll_wait(epfd, events, MAX_EVENTS, timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("epoll_wait");
      }
      for (int i = 0; i < n; i++) {
        struct conn *c = events[i].data.ptr;
        if (c->state == DONE) {
          fprintf(stderr, "loadgen: a connection failed while priming: %s\n",
                  first_error);
          return 2;
        }
        pingpong_event(c, events[i].events, 0);
        if (c->state == DONE) {
          fprintf(stderr, "loadgen: a connection failed while priming: %s\n",
                  first_error);
          return 2;
        }
      }
    }
  }
  for (int i = 0; i < opt.conns; i++) {
    conns[i].state = RUNNING;
    if (opt.mode == PINGPONG) {
      pingpong_send(&conns[i]);
    } else {
      want_out(&conns[i], 1);
    }
  }
  // Markers for the driver, which samples the server's CPU time on them.
  printf("START\n");
  fflush(stdout);
  double start = now(), cpu_start = cpu_seconds();
  double end = start + opt.seconds, elapsed = 0, cpu = 0;
  int running = 1;
  double drain_deadline = end + opt.drain;
  for (;;) {
    double t = now();
    if (running && t >= end) {
      // The measured period is over: snapshot, then drain.
      running = 0;
      elapsed = t - start;
      cpu = cpu_seconds() - cpu_start;
      trips_at_end = roundtrips;
      printf("STOP\n");
      fflush(stdout);
      for (int i = 0; i < opt.conns; i++) bytes_at_end += conns[i].received;
      for (int i = 0; i < opt.conns; i++) {
        struct conn *c = &conns[i];
        if (c->state != RUNNING) continue;
        if (opt.mode == BULK) {
          half_close(c);
        } else {
          c->state = DRAINING;
          // Nothing in flight: the last message came back exactly now.
          if (c->msg_sent == 0) half_close(c);
        }
      }
    }
    if (!running) {
      int open = 0;
      for (int i = 0; i < opt.conns; i++) open += conns[i].state != DONE;
      if (open == 0 || t >= drain_deadline) break;
    }
    double limit = running ? end : drain_deadline;
    int timeout = (int)((limit - t) * 1000) + 1;
    if (timeout > 100) timeout = 100;
    int n = epoll_wait(epfd, events, MAX_EVENTS, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c->state == DONE) continue;
      if (opt.mode == PINGPONG) {
        pingpong_event(c, events[i].events, running);
      } else {
        bulk_event(c, events[i].events, running);
      }
    }
  }
  int clean = 0;
  for (int i = 0; i < opt.conns; i++) {
    clean += conns[i].state == DONE && conns[i].fd < 0 &&
             conns[i].received == conns[i].sent;
    if (conns[i].fd >= 0) close(conns[i].fd);
  }
  print_result(elapsed, cpu, bytes_at_end, trips_at_end, clean);
  free(conns);
  return errors || corrupt ? 1 : 0;
}

// idle: open the connections with at most opt.window in progress, one byte
// each way, then hold them.
static int run_idle(void) {
  struct conn *conns = calloc((size_t)opt.conns, sizeof *conns);
  if (!conns) die("calloc");
  struct sockaddr_in sa = server_addr();
  struct epoll_event events[MAX_EVENTS];
  int started = 0, ready = 0, in_progress = 0;
  double start = now(), cpu_start = cpu_seconds();
  double deadline = start + 120.0;
  while (ready < opt.conns) {
    while (started < opt.conns && in_progress < opt.window) {
      struct conn *c = &conns[started++];
      c->fd = start_connect(&sa);
      c->state = CONNECTING;
      struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl ADD");
      in_progress++;
    }
    if (now() >= deadline) {
      fprintf(stderr, "loadgen: idle set-up timed out (%d of %d ready)\n",
              ready, opt.conns);
      return 2;
    }
    int n = epoll_wait(epfd, events, MAX_EVENTS, 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
          return 2;
        }
        c->state = RUNNING;
        if (write_stream(c, 1) != 1) {
          fprintf(stderr, "loadgen: first write failed\n");
          return 2;
        }
        set_events(c, EPOLLIN);
      } else if (c->state == RUNNING) {
        ssize_t r = read_echo(c, 1);
        if (r == -1) continue;
        if (r != 1) {
          fprintf(stderr, "loadgen: no echo on an idle connection\n");
          return 2;
        }
        // Done: keep the socket, stop watching it.
        c->state = SHUT;
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        in_progress--;
        ready++;
      }
    }
  }
  double elapsed = now() - start;
  printf("{\"mode\":\"idle\",\"ready\":%d,\"elapsed\":%.6f,\"cpu\":%.6f,"
         "\"corrupt\":%llu}\n",
         ready, elapsed, cpu_seconds() - cpu_start,
         (unsigned long long)corrupt);
  fflush(stdout);
  // Hold until told (a line or EOF on stdin) or until --hold runs out.
  struct pollfd p = {.fd = 0, .events = POLLIN};
  poll(&p, 1, (int)(opt.hold * 1000));
  for (int i = 0; i < opt.conns; i++) close(conns[i].fd);
  free(conns);
  return corrupt ? 1 : 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --port P [--host 127.0.0.1] "
          "[--mode pingpong|bulk|idle] [--conns N] [--size BYTES] "
          "[--seconds S] [--drain S] [--hold S] [--window N] "
          "[--verify all|ends]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(a, "--host")) opt.host = v;
    else if (!strcmp(a, "--port")) opt.port = atoi(v);
    else if (!strcmp(a, "--conns")) opt.conns = atoi(v);
    else if (!strcmp(a, "--size")) opt.size = (size_t)atol(v);
    else if (!strcmp(a, "--seconds")) opt.seconds = atof(v);
    else if (!strcmp(a, "--drain")) opt.drain = atof(v);
    else if (!strcmp(a, "--hold")) opt.hold = atof(v);
    else if (!strcmp(a, "--window")) opt.window = atoi(v);
    else if (!strcmp(a, "--verify")) {
      if (!strcmp(v, "all")) opt.verify_all = 1;
      else if (!strcmp(v, "ends")) opt.verify_all = 0;
      else usage();
    }
    else if (!strcmp(a, "--mode")) {
      if (!strcmp(v, "pingpong")) opt.mode = PINGPONG;
      else if (!strcmp(v, "bulk")) opt.mode = BULK;
      else if (!strcmp(v, "idle")) opt.mode = IDLE;
      else usage();
    } else usage();
  }
  if (opt.port <= 0 || opt.port > 65535 || opt.conns <= 0 || opt.size == 0 ||
      opt.size > CHUNK || opt.seconds <= 0 || opt.window <= 0) {
    usage();
  }
  pattern = malloc(PERIOD + CHUNK);
  readbuf = malloc(CHUNK);
  if (!pattern || !readbuf) die("malloc");
  uint32_t x = 2463534242u;  // xorshift32: any fixed non-trivial bytes
  for (size_t i = 0; i < PERIOD; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    pattern[i] = (uint8_t)x;
  }
  for (size_t i = PERIOD; i < PERIOD + CHUNK; i++) {
    pattern[i] = pattern[i - PERIOD];
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  return opt.mode == IDLE ? run_idle() : run_load();
}
