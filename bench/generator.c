/*
 * The benchmark's load generator: GWLB-shaped GENEVE datagrams carrying RTP/MPEG-TS, sent at a paced
 * rate from one UDP socket and received back on the same socket (GWLB's side of the tunnel: returns
 * come to port 6081 of the address that sent them). Built and run by bench/generator.ts, which writes
 * the packet templates (one datagram per flow, made by appliance/wire's builders) and passes every
 * offset this program writes at, so nothing here knows a header layout:
 *
 *   generator --bind ADDR --target ADDR --port 6081 --templates FILE --flows N --size BYTES
 *             --seq-offset O --timestamp-offset O --ts-offset O --ts-packets K --ts-size 188
 *             --cc-offset 3 --stamp-offset O --psi FILE --psi-every 100 --timestamp-step 900
 *             --state FILE --rate PPS --seconds S [--warmup S] [--drain S]
 *
 * Every flow's packet n is a pure function of its template and n (RTP sequence and timestamp, TS
 * continuity counters, PAT/PMT every psi-every packets), so a returned datagram is checked byte for
 * byte by rebuilding it. The packets each flow has sent are kept in the state file, so that a flow
 * continues its sequence numbers and continuity counters across steps. Each datagram carries its send
 * time (CLOCK_MONOTONIC), its flow and its n at stamp-offset, for one-way latency.
 *
 * Prints one JSON line: sent, errors, seconds, received, mismatched, late (returns of an earlier step),
 * firstAt/lastAt (ns from the start) and latency percentiles in µs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
/* Datagrams sent before the receive queue is drained again, when the rate asks for more. */
#define MAX_BURST 1024
#define SLOT 9216
#define BUFFER_BYTES (32 << 20)
/* 1 µs buckets up to 100 ms, and one overflow bucket. */
#define BUCKETS 100001
/* The stamp: send time (ns), flow, packet number of the flow. */
#define STAMP_BYTES 16

struct config {
  const char *bind, *target, *templates, *psi, *state;
  int port, flows, size, seq_offset, timestamp_offset, ts_offset, ts_packets, ts_size, cc_offset;
  int stamp_offset, psi_every, timestamp_step;
  double rate, seconds, warmup, drain;
};

static struct config cfg = {.port = 6081, .ts_size = 188, .cc_offset = 3, .psi_every = 100,
                            .timestamp_step = 900, .warmup = 0.5, .drain = 0.5};
static uint8_t *templates;
static uint8_t *psi;
static int psi_count;
static uint32_t *sent_by_flow;
static int state_flows;

static uint64_t ns(const struct timespec *t) { return (uint64_t)t->tv_sec * 1000000000u + (uint64_t)t->tv_nsec; }

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return ns(&t);
}

/* The clock of the kernel's receive timestamps (SO_TIMESTAMPNS), which the stamps are taken on. */
static uint64_t wall_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return ns(&t);
}

static void sleep_until(uint64_t monotonic) {
  struct timespec t = {.tv_sec = (time_t)(monotonic / 1000000000u), .tv_nsec = (long)(monotonic % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
  }
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static uint8_t *read_file(const char *file, long *length) {
  FILE *f = fopen(file, "rb");
  if (!f) die(file);
  fseek(f, 0, SEEK_END);
  *length = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *data = malloc(*length > 0 ? (size_t)*length : 1);
  if (!data || fread(data, 1, (size_t)*length, f) != (size_t)*length) die(file);
  fclose(f);
  return data;
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i] + 2, *v = argv[i + 1];
#define STR(name, field) if (!strcmp(k, name)) { cfg.field = v; continue; }
#define INT(name, field) if (!strcmp(k, name)) { cfg.field = atoi(v); continue; }
#define NUM(name, field) if (!strcmp(k, name)) { cfg.field = atof(v); continue; }
    STR("bind", bind) STR("target", target) STR("templates", templates) STR("psi", psi)
    STR("state", state)
    INT("port", port) INT("flows", flows) INT("size", size) INT("seq-offset", seq_offset)
    INT("timestamp-offset", timestamp_offset) INT("ts-offset", ts_offset) INT("ts-packets", ts_packets)
    INT("ts-size", ts_size) INT("cc-offset", cc_offset) INT("stamp-offset", stamp_offset)
    INT("psi-every", psi_every) INT("timestamp-step", timestamp_step)
    NUM("rate", rate) NUM("seconds", seconds) NUM("warmup", warmup) NUM("drain", drain)
    fprintf(stderr, "unknown option %s\n", argv[i]);
    exit(2);
  }
  if (!cfg.templates || !cfg.psi || cfg.flows <= 0 || cfg.size <= 0 || cfg.size > SLOT ||
      cfg.stamp_offset + STAMP_BYTES > cfg.size || !cfg.bind || !cfg.target) {
    fprintf(stderr, "usage: see the comment at the top of generator.c\n");
    exit(2);
  }
}

static void load(void) {
  long length;
  templates = read_file(cfg.templates, &length);
  if (length < (long)cfg.flows * cfg.size) {
    fprintf(stderr, "%s holds %ld bytes, less than %d flows of %d\n", cfg.templates, length, cfg.flows, cfg.size);
    exit(2);
  }
  psi = read_file(cfg.psi, &length);
  psi_count = (int)(length / cfg.ts_size);
  state_flows = cfg.flows;
  long stored = 0;
  uint8_t *state = NULL;
  if (cfg.state && access(cfg.state, F_OK) == 0) {
    state = read_file(cfg.state, &stored);
    if ((int)(stored / 4) > state_flows) state_flows = (int)(stored / 4);
  }
  sent_by_flow = calloc((size_t)state_flows, sizeof *sent_by_flow);
  if (state) memcpy(sent_by_flow, state, (size_t)stored / 4 * 4);
  free(state);
}

static void save(void) {
  if (!cfg.state) return;
  FILE *f = fopen(cfg.state, "wb");
  if (!f || fwrite(sent_by_flow, sizeof *sent_by_flow, (size_t)state_flows, f) != (size_t)state_flows) die(cfg.state);
  fclose(f);
}

static void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v);
}

static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t get32(const uint8_t *p) { return get16(p) << 16 | get16(p + 2); }

/* Packet n of `flow`, without its stamp. */
static void build(uint8_t *out, uint32_t flow, uint32_t n) {
  const uint8_t *t = templates + (size_t)flow * (size_t)cfg.size;
  memcpy(out, t, (size_t)cfg.size);
  put16(out + cfg.seq_offset, get16(t + cfg.seq_offset) + n);
  put32(out + cfg.timestamp_offset, get32(t + cfg.timestamp_offset) + n * (uint32_t)cfg.timestamp_step);
  /* PAT and PMT lead the first TS packets of every psi_every-th datagram; the rest are video. */
  int psi_here = psi_count < cfg.ts_packets ? psi_count : cfg.ts_packets;
  uint32_t psi_before = (n + (uint32_t)cfg.psi_every - 1) / (uint32_t)cfg.psi_every;
  uint32_t video_before = n * (uint32_t)cfg.ts_packets - (uint32_t)psi_here * psi_before;
  int with_psi = n % (uint32_t)cfg.psi_every == 0;
  for (int i = 0; i < cfg.ts_packets; i++) {
    uint8_t *ts = out + cfg.ts_offset + i * cfg.ts_size;
    uint32_t cc;
    if (with_psi && i < psi_here) {
      memcpy(ts, psi + i * cfg.ts_size, (size_t)cfg.ts_size);
      cc = psi_before;
    } else {
      cc = video_before++;
    }
    ts[cfg.cc_offset] = (uint8_t)((ts[cfg.cc_offset] & 0xf0) | (cc & 0x0f));
  }
}

static void stamp(uint8_t *out, uint64_t at, uint32_t flow, uint32_t n) {
  memcpy(out + cfg.stamp_offset, &at, 8);
  memcpy(out + cfg.stamp_offset + 8, &flow, 4);
  memcpy(out + cfg.stamp_offset + 12, &n, 4);
}

/* Round-robin over the flows; the flow and packet number of the next datagram. */
static uint32_t next_flow;
static void next_packet(uint32_t *flow, uint32_t *n) {
  *flow = next_flow;
  *n = sent_by_flow[next_flow]++;
  next_flow = next_flow + 1 == (uint32_t)cfg.flows ? 0 : next_flow + 1;
}

static int open_socket(struct sockaddr_in *target) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  int size = BUFFER_BYTES;
  /* FORCE passes net.core.rmem_max when run as root; otherwise the plain option's ceiling. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
  if (inet_pton(AF_INET, cfg.bind, &local.sin_addr) != 1 || bind(fd, (struct sockaddr *)&local, sizeof local) != 0)
    die("bind");
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  *target = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
  if (inet_pton(AF_INET, cfg.target, &target->sin_addr) != 1) die("target");
  return fd;
}

static struct {
  uint64_t sent, errors, received, mismatched, late, samples, first_at, last_at;
  double max_micros;
  uint32_t histogram[BUCKETS];
} report;

static uint8_t tx_data[BATCH][SLOT], rx_data[BATCH][SLOT], expected[SLOT];
static uint8_t rx_control[BATCH][CMSG_SPACE(sizeof(struct timespec))];
static struct iovec tx_iov[BATCH], rx_iov[BATCH];
static struct mmsghdr tx[BATCH], rx[BATCH];

static void send_batch(int fd, struct sockaddr_in *target, int count) {
  for (int i = 0; i < count; i++) {
    uint32_t flow, n;
    next_packet(&flow, &n);
    build(tx_data[i], flow, n);
    memcpy(tx_data[i] + cfg.stamp_offset + 8, &flow, 4);
    memcpy(tx_data[i] + cfg.stamp_offset + 12, &n, 4);
    tx_iov[i] = (struct iovec){.iov_base = tx_data[i], .iov_len = (size_t)cfg.size};
    tx[i].msg_hdr = (struct msghdr){.msg_name = target, .msg_namelen = sizeof *target, .msg_iov = &tx_iov[i], .msg_iovlen = 1};
  }
  /* One stamp per batch, taken as late as it can be. */
  uint64_t at = wall_ns();
  for (int i = 0; i < count; i++) memcpy(tx_data[i] + cfg.stamp_offset, &at, 8);
  for (int done = 0; done < count;) {
    int r = sendmmsg(fd, tx + done, (unsigned)(count - done), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      report.errors++;
      done++; /* this one cannot go: skip it, as a datagram socket would lose it */
    } else {
      done += r;
    }
  }
  report.sent += (uint64_t)count;
}

/* When the kernel received the datagram (as it arrived at this side's device, not when this process
   got round to reading it), or now when it did not say. */
static uint64_t received_at(struct msghdr *m) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec t;
      memcpy(&t, CMSG_DATA(c), sizeof t);
      return ns(&t);
    }
  return wall_ns();
}

enum verdict { MATCHED, MISMATCHED, LATE };

/* Whether a return is, byte for byte, a datagram this generator sent, and sent in this step (`start`,
   on the wall clock like the stamps); its send time in *sent_at. */
static enum verdict check(const uint8_t *packet, int length, uint64_t at, uint64_t start, uint64_t *sent_at) {
  uint32_t flow, n;
  if (length != cfg.size) return MISMATCHED;
  memcpy(sent_at, packet + cfg.stamp_offset, 8);
  memcpy(&flow, packet + cfg.stamp_offset + 8, 4);
  memcpy(&n, packet + cfg.stamp_offset + 12, 4);
  if (flow >= (uint32_t)cfg.flows || n >= sent_by_flow[flow] || *sent_at > at + 1000000u) return MISMATCHED;
  build(expected, flow, n);
  stamp(expected, *sent_at, flow, n);
  if (memcmp(expected, packet, (size_t)length) != 0) return MISMATCHED;
  /* Sent by an earlier step and held up in the system under test: that step's, not this one's. */
  return *sent_at < start ? LATE : MATCHED;
}

/* One return: counted, checked, and its latency recorded when it was sent after the warm-up. */
static void account(const uint8_t *packet, int length, uint64_t at, uint64_t start, uint64_t warm) {
  uint64_t sent_at = 0;
  enum verdict verdict = check(packet, length, at, start, &sent_at);
  if (verdict == LATE) {
    report.late++;
    return;
  }
  uint64_t since = at > start ? at - start : 0;
  if (report.received++ == 0) report.first_at = since;
  if (since > report.last_at) report.last_at = since;
  if (verdict == MISMATCHED) {
    report.mismatched++;
    return;
  }
  if (sent_at < warm) return;
  double micros = (double)(at - sent_at) / 1000.0;
  if (micros > report.max_micros) report.max_micros = micros;
  report.histogram[micros >= BUCKETS - 1 ? BUCKETS - 1 : (int)micros]++;
  report.samples++;
}

/* Reads whatever has come back; returns the datagrams read. */
static int drain_returns(int fd, uint64_t start, uint64_t warm) {
  int total = 0;
  for (;;) {
    for (int i = 0; i < BATCH; i++) rx[i].msg_hdr.msg_controllen = sizeof rx_control[i];
    int n = recvmmsg(fd, rx, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return total;
    for (int i = 0; i < n; i++)
      account(rx_data[i], (int)rx[i].msg_len, received_at(&rx[i].msg_hdr), start, warm);
    total += n;
  }
}

static double percentile(double p) {
  uint64_t target = (uint64_t)(p * (double)report.samples + 0.999999), seen = 0;
  for (int i = 0; i < BUCKETS; i++) {
    seen += report.histogram[i];
    if (seen >= target) return i + 1;
  }
  return report.max_micros;
}

static int run(void) {
  struct sockaddr_in target;
  int fd = open_socket(&target);
  for (int i = 0; i < BATCH; i++) {
    rx_iov[i] = (struct iovec){.iov_base = rx_data[i], .iov_len = SLOT};
    rx[i].msg_hdr = (struct msghdr){.msg_iov = &rx_iov[i], .msg_iovlen = 1, .msg_control = rx_control[i]};
  }
  uint64_t start = now_ns();
  uint64_t wall_start = wall_ns();
  uint64_t warm = wall_start + (uint64_t)(cfg.warmup * 1e9);
  uint64_t end = start + (uint64_t)(cfg.seconds * 1e9);
  for (uint64_t t = start; t < end; t = now_ns()) {
    /* What is due by the start of this millisecond: sent as one burst per millisecond, like a packet
       train from an encoder, never trickled out one datagram per wake-up. */
    uint64_t ms = (t - start) / 1000000u;
    double owed = (double)ms * cfg.rate / 1000.0 - (double)report.sent;
    uint64_t due = cfg.rate > 0 ? (owed > 0 ? (uint64_t)owed : 0) : MAX_BURST;
    uint64_t todo = due < MAX_BURST ? due : MAX_BURST;
    while (todo > 0) {
      int count = todo < BATCH ? (int)todo : BATCH;
      send_batch(fd, &target, count);
      todo -= (uint64_t)count;
    }
    drain_returns(fd, wall_start, warm);
    /* Caught up: nothing more is due before the next millisecond. Returns wait in the socket meanwhile;
       their latency is the kernel's receive time, so the wait does not count, and sleeping rather than
       waking for each return keeps the generator's wake-ups (and inter-core interrupts) per millisecond. */
    if (cfg.rate > 0 && due < MAX_BURST) {
      uint64_t next_ms = t - (t - start) % 1000000u + 1000000u;
      sleep_until(next_ms < end ? next_ms : end);
    }
  }
  double seconds = (double)(now_ns() - start) / 1e9;
  uint64_t drain_end = now_ns() + (uint64_t)(cfg.drain * 1e9);
  for (uint64_t t = now_ns(); t < drain_end; t = now_ns()) {
    drain_returns(fd, wall_start, warm);
    sleep_until(t + 1000000u < drain_end ? t + 1000000u : drain_end);
  }
  close(fd);
  save();
  printf("{\"sent\":%lu,\"errors\":%lu,\"seconds\":%.6f,\"received\":%lu,\"mismatched\":%lu,\"late\":%lu,"
         "\"firstAt\":%lu,\"lastAt\":%lu,\"latencyMicros\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f,"
         "\"max\":%.1f,\"samples\":%lu}}\n",
         report.sent, report.errors, seconds, report.received, report.mismatched, report.late, report.first_at,
         report.last_at, report.samples ? percentile(0.5) : 0, report.samples ? percentile(0.99) : 0,
         report.samples ? percentile(0.999) : 0, report.max_micros, report.samples);
  return 0;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  load();
  return run();
}
