/*
 * stream-intel-io: batched UDP I/O for the appliance's receive loop, as a Node-API addon (C, ABI-stable:
 * one build serves every Node >= 22).
 *
 * One handle is one UDP socket and a batch of receive slots. The slot memory, the lengths and the
 * verdicts belong to JavaScript (an ArrayBuffer, an Int32Array and a Uint8Array it passes to open()),
 * so JavaScript reads each datagram in place, without a copy, through Buffer views it made once:
 *
 *   data      [ slot 0: slot_bytes ][ slot 1 ] ... [ slot N-1 ]      datagram i starts at i * slot_bytes
 *   lengths   [ len 0 ][ len 1 ] ... [ len N-1 ]                      the datagram's real length (MSG_TRUNC):
 *                                                                     larger than slot_bytes = cut short
 *   verdicts  [ v 0 ][ v 1 ] ... [ v N-1 ]                            set by JavaScript: 1 = send it back
 *
 *   receive(io)    one recvmmsg(MSG_DONTWAIT) into the slots; returns how many arrived (0: none waiting)
 *   send(io, n)    one sendmmsg of the slots among the first n whose verdict is 1, each back to the
 *                  address it came from; returns how many could not be sent
 *   poll(io, fn)   calls fn from the event loop whenever the socket is readable (libuv, level-triggered)
 *
 * Two ways back (the "sender"):
 *   udp   through the receiving socket: outer source port = the port we listen on (6081)
 *   raw   through a raw IPv4 socket (IP_HDRINCL, needs CAP_NET_RAW): each datagram gets a new outer
 *         IPv4/UDP header whose source port is the port GWLB sent it from, as open GWLB appliances do:
 *
 *         0                   1                   2                   3
 *         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *        +-------+-------+---------------+-------------------------------+
 *        |Ver=4  |IHL=5  |     TOS 0     |     Total Length (kernel)     |
 *        +-------+-------+---------------+-----+-------------------------+
 *        |      Identification (kernel)  |0|DF|0|   Fragment Offset 0   |
 *        +---------------+---------------+-----+-------------------------+
 *        |    TTL 64     |  Protocol 17  |   Header Checksum (kernel)    |
 *        +---------------+---------------+-------------------------------+
 *        |  Source: the address the datagram was sent to (IP_PKTINFO)    |
 *        +---------------------------------------------------------------+
 *        |  Destination: the GWLB address it came from                   |
 *        +-------------------------------+-------------------------------+
 *        |  Source port: GWLB's own port |  Destination port: 6081       |
 *        +-------------------------------+-------------------------------+
 *        |  Length: 8 + datagram         |  Checksum (computed here)     |
 *        +-------------------------------+-------------------------------+
 *
 * Only old, stable glibc entry points are used (all GLIBC_2.17 on aarch64), so the arm64 build loads on
 * Amazon Linux 2023 (glibc 2.34).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#define IPV4_HEADER 20
#define UDP_HEADER 8
#define RAW_HEADER (IPV4_HEADER + UDP_HEADER)
#define CONTROL_BYTES 64
#define RAW_TTL 64
#define IP_FLAG_DF 0x4000
/* A full send buffer: wait this long for room before counting the rest of the batch as failed. */
#define SEND_WAIT_MS 5

/* IPv4 header fields (offsets in RAW_HEADER). */
#define IP_VERSION_IHL 0
#define IP_TOTAL_LENGTH 2
#define IP_FRAGMENT 6
#define IP_TTL_OFFSET 8
#define IP_PROTOCOL 9
#define IP_SOURCE 12
#define IP_DESTINATION 16
/* UDP header fields. */
#define UDP_SOURCE_PORT (IPV4_HEADER + 0)
#define UDP_DESTINATION_PORT (IPV4_HEADER + 2)
#define UDP_LENGTH (IPV4_HEADER + 4)
#define UDP_CHECKSUM (IPV4_HEADER + 6)

typedef struct {
  napi_env env;
  int fd;
  int raw_fd;
  int family;
  int connected;
  uint16_t return_port; /* network order */
  uint32_t slots;
  uint32_t slot_bytes;
  uint8_t *data;
  int32_t *lengths;
  uint8_t *verdicts;
  double *stats; /* [0] bytes of datagrams that could not be sent, [1] errno of the last failure */
  napi_ref refs[4];
  struct sockaddr_storage bound;
  struct mmsghdr *rx;
  struct iovec *rx_iov;
  struct sockaddr_storage *peer;
  uint8_t *control;
  struct in_addr *local; /* where each datagram was sent to (raw sender's source address) */
  struct mmsghdr *tx;
  struct iovec *tx_iov;
  struct sockaddr_storage *dest;
  uint8_t *raw_headers;
  uv_poll_t poll;
  int poll_initialised;
  napi_ref callback;
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
  int closing;
  int uv_closed;
  int finalized;
} io_t;

/* ---------- helpers ---------- */

static napi_value throw_errno(napi_env env, const char *what, int error) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(error));
  napi_throw_error(env, NULL, message);
  return NULL;
}

#define CHECK(call)                                          \
  do {                                                       \
    if ((call) != napi_ok) {                                 \
      const napi_extended_error_info *info_ = NULL;          \
      napi_get_last_error_info(env, &info_);                 \
      bool pending_ = false;                                 \
      napi_is_exception_pending(env, &pending_);             \
      if (!pending_)                                         \
        napi_throw_error(env, NULL,                          \
                         info_ && info_->error_message       \
                             ? info_->error_message          \
                             : "stream-intel-io: N-API call failed"); \
      return NULL;                                           \
    }                                                        \
  } while (0)

static int get_int(napi_env env, napi_value object, const char *name, int64_t fallback, int64_t *out) {
  bool has = false;
  if (napi_has_named_property(env, object, name, &has) != napi_ok) return -1;
  if (!has) {
    *out = fallback;
    return 0;
  }
  napi_value value;
  napi_valuetype type;
  if (napi_get_named_property(env, object, name, &value) != napi_ok) return -1;
  if (napi_typeof(env, value, &type) != napi_ok) return -1;
  if (type == napi_undefined) {
    *out = fallback;
    return 0;
  }
  if (type == napi_boolean) {
    bool b;
    if (napi_get_value_bool(env, value, &b) != napi_ok) return -1;
    *out = b ? 1 : 0;
    return 0;
  }
  return napi_get_value_int64(env, value, out) == napi_ok ? 0 : -1;
}

static int get_string(napi_env env, napi_value object, const char *name, char *out, size_t size) {
  napi_value value;
  size_t length;
  if (napi_get_named_property(env, object, name, &value) != napi_ok) return -1;
  return napi_get_value_string_utf8(env, value, out, size, &length) == napi_ok ? 0 : -1;
}

/* A typed array (or ArrayBuffer) property: its data pointer and byte length, kept alive by a reference. */
static void *get_memory(napi_env env, napi_value object, const char *name, size_t *bytes, napi_ref *ref) {
  napi_value value;
  bool is_typed = false;
  bool is_buffer = false;
  void *data = NULL;
  if (napi_get_named_property(env, object, name, &value) != napi_ok) return NULL;
  napi_is_typedarray(env, value, &is_typed);
  if (is_typed) {
    napi_typedarray_type type;
    size_t length;
    napi_value arraybuffer;
    size_t offset;
    if (napi_get_typedarray_info(env, value, &type, &length, &data, &arraybuffer, &offset) != napi_ok)
      return NULL;
    size_t element = (type == napi_int32_array || type == napi_uint32_array || type == napi_float32_array) ? 4
                     : (type == napi_float64_array || type == napi_bigint64_array || type == napi_biguint64_array)
                         ? 8
                     : (type == napi_int16_array || type == napi_uint16_array) ? 2
                                                                               : 1;
    *bytes = length * element;
  } else {
    napi_is_arraybuffer(env, value, &is_buffer);
    if (!is_buffer) return NULL;
    if (napi_get_arraybuffer_info(env, value, &data, bytes) != napi_ok) return NULL;
  }
  if (napi_create_reference(env, value, 1, ref) != napi_ok) return NULL;
  return data;
}

static int parse_address(int family, const char *host, int port, struct sockaddr_storage *out, socklen_t *length) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *length = sizeof *a;
    return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -1;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)out;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *length = sizeof *a;
  return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

/* Ones' complement sum (RFC 1071) in memory order; folded and inverted by the caller. */
static uint64_t checksum_add(const uint8_t *p, size_t n, uint64_t sum) {
  while (n >= 4) {
    uint32_t word;
    memcpy(&word, p, 4);
    sum += word;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t word;
    memcpy(&word, p, 2);
    sum += word;
    p += 2;
    n -= 2;
  }
  if (n) {
    uint16_t word = 0;
    memcpy(&word, p, 1);
    sum += word;
  }
  return sum;
}

static uint16_t checksum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* ---------- lifetime ---------- */

/* Runs once per handle: from on_uv_closed, or from open_fail before the handle ever existed. */
static void release(io_t *io) {
  if (io->fd >= 0) close(io->fd);
  if (io->raw_fd >= 0) close(io->raw_fd);
  io->fd = -1;
  io->raw_fd = -1;
  free(io->rx);
  free(io->rx_iov);
  free(io->peer);
  free(io->control);
  free(io->local);
  free(io->tx);
  free(io->tx_iov);
  free(io->dest);
  free(io->raw_headers);
}

static void drop_references(io_t *io) {
  for (int i = 0; i < 4; i++) {
    if (io->refs[i]) napi_delete_reference(io->env, io->refs[i]);
    io->refs[i] = NULL;
  }
  if (io->callback) napi_delete_reference(io->env, io->callback);
  io->callback = NULL;
  if (io->async) napi_async_destroy(io->env, io->async);
  io->async = NULL;
}

static void on_uv_closed(uv_handle_t *handle) {
  io_t *io = (io_t *)handle->data;
  release(io);
  io->uv_closed = 1;
  if (io->cleanup) {
    napi_async_cleanup_hook_handle cleanup = io->cleanup;
    io->cleanup = NULL;
    napi_remove_async_cleanup_hook(cleanup);
  }
  if (io->finalized) free(io);
}

/* Stops polling and closes the sockets; the memory of the handle itself goes with its JS object. */
static void shut(io_t *io, int env_alive) {
  if (io->closing) return;
  io->closing = 1;
  if (env_alive) drop_references(io);
  if (io->poll_initialised) {
    uv_poll_stop(&io->poll);
    uv_close((uv_handle_t *)&io->poll, on_uv_closed);
  } else {
    on_uv_closed((uv_handle_t *)&io->poll);
  }
}

static void on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  shut((io_t *)arg, 1);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  io_t *io = (io_t *)data;
  io->finalized = 1;
  if (!io->closing) shut(io, 1);
  if (io->uv_closed) free(io);
}

static io_t *unwrap(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "stream-intel-io: expected a handle");
    return NULL;
  }
  void *data = NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "stream-intel-io: not a handle");
    return NULL;
  }
  io_t *io = (io_t *)data;
  if (io->closing) {
    napi_throw_error(env, NULL, "stream-intel-io: handle is closed");
    return NULL;
  }
  return io;
}

/* ---------- open ---------- */

static napi_value open_fail(napi_env env, io_t *io, const char *what, int error) {
  drop_references(io);
  release(io);
  free(io);
  return error ? throw_errno(env, what, error) : (napi_throw_error(env, NULL, what), NULL);
}

/*
 * open({ host, port, ipv6, reusePort, receiveBuffer, sendBuffer, returnPort, raw, connectHost, connectPort,
 *        slotBytes, data: ArrayBuffer, lengths: Int32Array, verdicts: Uint8Array, stats: Float64Array })
 */
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value options;
  CHECK(napi_get_cb_info(env, info, &argc, &options, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "open: expected an options object");
    return NULL;
  }
  char host[64] = {0};
  int64_t port, ipv6, reuse, rcvbuf, sndbuf, return_port, raw, slot_bytes, connect_port;
  if (get_string(env, options, "host", host, sizeof host) != 0 || get_int(env, options, "port", 0, &port) != 0 ||
      get_int(env, options, "ipv6", 0, &ipv6) != 0 || get_int(env, options, "reusePort", 0, &reuse) != 0 ||
      get_int(env, options, "receiveBuffer", 0, &rcvbuf) != 0 ||
      get_int(env, options, "sendBuffer", 0, &sndbuf) != 0 ||
      get_int(env, options, "returnPort", 6081, &return_port) != 0 ||
      get_int(env, options, "raw", 0, &raw) != 0 || get_int(env, options, "slotBytes", 0, &slot_bytes) != 0 ||
      get_int(env, options, "connectPort", 0, &connect_port) != 0) {
    napi_throw_type_error(env, NULL, "open: bad options (host, port, slotBytes, ...)");
    return NULL;
  }
  if (port < 0 || port > 65535 || return_port < 1 || return_port > 65535 || slot_bytes < 1 ||
      slot_bytes > 65535 || (raw && ipv6)) {
    napi_throw_range_error(env, NULL, "open: port, returnPort or slotBytes out of range (or raw with IPv6)");
    return NULL;
  }

  io_t *io = calloc(1, sizeof *io);
  if (!io) return throw_errno(env, "open", ENOMEM);
  io->env = env;
  io->fd = -1;
  io->raw_fd = -1;
  io->family = ipv6 ? AF_INET6 : AF_INET;
  io->return_port = htons((uint16_t)return_port);
  io->slot_bytes = (uint32_t)slot_bytes;

  size_t data_bytes = 0, lengths_bytes = 0, verdicts_bytes = 0, stats_bytes = 0;
  io->data = get_memory(env, options, "data", &data_bytes, &io->refs[0]);
  io->lengths = get_memory(env, options, "lengths", &lengths_bytes, &io->refs[1]);
  io->verdicts = get_memory(env, options, "verdicts", &verdicts_bytes, &io->refs[2]);
  io->stats = get_memory(env, options, "stats", &stats_bytes, &io->refs[3]);
  if (!io->data || !io->lengths || !io->verdicts || !io->stats || stats_bytes < 2 * sizeof(double)) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      drop_references(io);
      free(io);
      return NULL;
    }
    return open_fail(env, io, "open: data (ArrayBuffer), lengths (Int32Array), verdicts (Uint8Array) and stats (Float64Array of 2) are required", 0);
  }
  io->slots = (uint32_t)(data_bytes / io->slot_bytes);
  if (io->slots == 0 || lengths_bytes < io->slots * sizeof(int32_t) || verdicts_bytes < io->slots)
    return open_fail(env, io, "open: data must hold at least one slot, lengths and verdicts one entry per slot", 0);

  uint32_t n = io->slots;
  io->rx = calloc(n, sizeof *io->rx);
  io->rx_iov = calloc(n, sizeof *io->rx_iov);
  io->peer = calloc(n, sizeof *io->peer);
  io->control = calloc(n, CONTROL_BYTES);
  io->local = calloc(n, sizeof *io->local);
  io->tx = calloc(n, sizeof *io->tx);
  io->tx_iov = calloc(2 * (size_t)n, sizeof *io->tx_iov);
  io->dest = calloc(n, sizeof *io->dest);
  io->raw_headers = calloc(n, RAW_HEADER);
  if (!io->rx || !io->rx_iov || !io->peer || !io->control || !io->local || !io->tx || !io->tx_iov || !io->dest ||
      !io->raw_headers)
    return open_fail(env, io, "open", ENOMEM);
  for (uint32_t i = 0; i < n; i++) {
    io->rx_iov[i].iov_base = io->data + (size_t)i * io->slot_bytes;
    io->rx_iov[i].iov_len = io->slot_bytes;
    io->rx[i].msg_hdr.msg_iov = &io->rx_iov[i];
    io->rx[i].msg_hdr.msg_iovlen = 1;
    io->rx[i].msg_hdr.msg_name = &io->peer[i];
  }

  socklen_t bound_length;
  if (parse_address(io->family, host, (int)port, &io->bound, &bound_length) != 0)
    return open_fail(env, io, "open: host is not an IP address literal", 0);
  io->fd = socket(io->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (io->fd < 0) return open_fail(env, io, "socket", errno);
  int one = 1;
  if (reuse && setsockopt(io->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return open_fail(env, io, "setsockopt(SO_REUSEPORT)", errno);
  if (rcvbuf > 0) {
    int value = (int)rcvbuf;
    setsockopt(io->fd, SOL_SOCKET, SO_RCVBUF, &value, sizeof value); /* capped by net.core.rmem_max */
  }
  if (sndbuf > 0) {
    int value = (int)sndbuf;
    setsockopt(io->fd, SOL_SOCKET, SO_SNDBUF, &value, sizeof value);
  }
  if (io->family == AF_INET && setsockopt(io->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0)
    return open_fail(env, io, "setsockopt(IP_PKTINFO)", errno);
  if (bind(io->fd, (struct sockaddr *)&io->bound, bound_length) != 0) {
    char what[128];
    snprintf(what, sizeof what, "bind %s:%d", host, (int)port);
    return open_fail(env, io, what, errno);
  }
  if (connect_port > 0) {
    char target[64] = {0};
    struct sockaddr_storage remote;
    socklen_t remote_length;
    if (get_string(env, options, "connectHost", target, sizeof target) != 0 ||
        parse_address(io->family, target, (int)connect_port, &remote, &remote_length) != 0)
      return open_fail(env, io, "open: connectHost is not an IP address literal", 0);
    if (connect(io->fd, (struct sockaddr *)&remote, remote_length) != 0) return open_fail(env, io, "connect", errno);
    io->connected = 1;
  }
  if (raw) {
    io->raw_fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW); /* IPPROTO_RAW implies IP_HDRINCL */
    if (io->raw_fd < 0) return open_fail(env, io, "raw IPv4 socket (needs CAP_NET_RAW)", errno);
    if (sndbuf > 0) {
      int value = (int)sndbuf;
      setsockopt(io->raw_fd, SOL_SOCKET, SO_SNDBUF, &value, sizeof value);
    }
  }
  socklen_t length = sizeof io->bound;
  getsockname(io->fd, (struct sockaddr *)&io->bound, &length);

  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &io->poll, io->fd) != 0)
    return open_fail(env, io, "open: cannot watch the socket in the event loop", 0);
  io->poll.data = io;
  io->poll_initialised = 1;
  /* From here on the handle is closed through uv_close. */
  napi_value external;
  if (napi_create_external(env, io, finalize, NULL, &external) != napi_ok) {
    shut(io, 1);
    io->finalized = 1;
    if (io->uv_closed) free(io);
    napi_throw_error(env, NULL, "open: cannot create the handle");
    return NULL;
  }
  napi_add_async_cleanup_hook(env, on_env_teardown, io, &io->cleanup);
  return external;
}

/* ---------- receive ---------- */

static napi_value Receive(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  io_t *io = unwrap(env, info, 1, argv);
  if (!io) return NULL;
  for (uint32_t i = 0; i < io->slots; i++) {
    struct msghdr *h = &io->rx[i].msg_hdr;
    h->msg_namelen = sizeof io->peer[i];
    h->msg_control = io->control + (size_t)i * CONTROL_BYTES;
    h->msg_controllen = CONTROL_BYTES;
    h->msg_flags = 0;
  }
  int n = recvmmsg(io->fd, io->rx, io->slots, MSG_DONTWAIT | MSG_TRUNC, NULL);
  if (n < 0) {
    int error = errno;
    n = (error == EAGAIN || error == EWOULDBLOCK || error == EINTR) ? 0 : -error;
  }
  for (int i = 0; i < n; i++) {
    /* With MSG_TRUNC, msg_len is the datagram's real length even when the slot cut it short. */
    io->lengths[i] = (int32_t)io->rx[i].msg_len;
    io->local[i].s_addr = 0;
    if (io->family != AF_INET) continue;
    struct msghdr *h = &io->rx[i].msg_hdr;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        struct in_pktinfo pktinfo;
        memcpy(&pktinfo, CMSG_DATA(c), sizeof pktinfo);
        io->local[i] = pktinfo.ipi_addr;
      }
    }
  }
  napi_value result;
  CHECK(napi_create_int32(env, n, &result));
  return result;
}

/* ---------- send ---------- */

/* Builds slot i's outer IPv4/UDP header for the raw sender (see the drawing at the top). */
static void raw_header(io_t *io, uint32_t i, uint32_t length, struct sockaddr_in *gwlb) {
  uint8_t *h = io->raw_headers + (size_t)i * RAW_HEADER;
  struct in_addr source = io->local[i];
  if (source.s_addr == 0) source = ((struct sockaddr_in *)&io->bound)->sin_addr;
  uint16_t total = htons((uint16_t)(RAW_HEADER + length));
  uint16_t udp_length = htons((uint16_t)(UDP_HEADER + length));
  uint16_t fragment = htons(IP_FLAG_DF);
  memset(h, 0, RAW_HEADER);
  h[IP_VERSION_IHL] = 0x45;
  memcpy(h + IP_TOTAL_LENGTH, &total, 2);
  memcpy(h + IP_FRAGMENT, &fragment, 2);
  h[IP_TTL_OFFSET] = RAW_TTL;
  h[IP_PROTOCOL] = IPPROTO_UDP;
  memcpy(h + IP_SOURCE, &source, 4);
  memcpy(h + IP_DESTINATION, &gwlb->sin_addr, 4);
  memcpy(h + UDP_SOURCE_PORT, &gwlb->sin_port, 2);
  memcpy(h + UDP_DESTINATION_PORT, &io->return_port, 2);
  memcpy(h + UDP_LENGTH, &udp_length, 2);
  if (source.s_addr == 0) return; /* source left to the kernel: no pseudo-header to sum, checksum 0 */
  /* Pseudo-header: source, destination, zero, protocol, UDP length; then the UDP header and payload. */
  uint8_t pseudo[4] = {0, IPPROTO_UDP, 0, 0};
  memcpy(pseudo + 2, &udp_length, 2);
  uint64_t sum = checksum_add(h + IP_SOURCE, 8, 0);
  sum = checksum_add(pseudo, 4, sum);
  sum = checksum_add(h + IPV4_HEADER, UDP_HEADER, sum);
  sum = checksum_add(io->data + (size_t)i * io->slot_bytes, length, sum);
  uint16_t checksum = checksum_fold(sum);
  if (checksum == 0) checksum = 0xffff; /* 0 means "no checksum" in UDP over IPv4 */
  memcpy(h + UDP_CHECKSUM, &checksum, 2);
}

static napi_value Send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  io_t *io = unwrap(env, info, 2, argv);
  if (!io) return NULL;
  uint32_t n = 0;
  CHECK(napi_get_value_uint32(env, argv[1], &n));
  if (n > io->slots) n = io->slots;
  uint32_t count = 0;
  int fd = io->raw_fd >= 0 ? io->raw_fd : io->fd;
  for (uint32_t i = 0; i < n; i++) {
    if (!io->verdicts[i]) continue;
    int32_t length = io->lengths[i];
    if (length < 0 || (uint32_t)length > io->slot_bytes) continue;
    struct mmsghdr *m = &io->tx[count];
    memset(&m->msg_hdr, 0, sizeof m->msg_hdr);
    struct iovec *iov = &io->tx_iov[2 * count];
    uint8_t *payload = io->data + (size_t)i * io->slot_bytes;
    if (io->connected) {
      iov[0].iov_base = payload;
      iov[0].iov_len = (size_t)length;
      m->msg_hdr.msg_iovlen = 1;
    } else if (io->raw_fd >= 0) {
      struct sockaddr_in *gwlb = (struct sockaddr_in *)&io->peer[i];
      struct sockaddr_in *dest = (struct sockaddr_in *)&io->dest[count];
      memset(dest, 0, sizeof *dest);
      dest->sin_family = AF_INET;
      dest->sin_addr = gwlb->sin_addr;
      raw_header(io, i, (uint32_t)length, gwlb);
      iov[0].iov_base = io->raw_headers + (size_t)i * RAW_HEADER;
      iov[0].iov_len = RAW_HEADER;
      iov[1].iov_base = payload;
      iov[1].iov_len = (size_t)length;
      m->msg_hdr.msg_iovlen = 2;
      m->msg_hdr.msg_name = dest;
      m->msg_hdr.msg_namelen = sizeof *dest;
    } else {
      memcpy(&io->dest[count], &io->peer[i], sizeof io->peer[i]);
      if (io->family == AF_INET6) ((struct sockaddr_in6 *)&io->dest[count])->sin6_port = io->return_port;
      else ((struct sockaddr_in *)&io->dest[count])->sin_port = io->return_port;
      iov[0].iov_base = payload;
      iov[0].iov_len = (size_t)length;
      m->msg_hdr.msg_iovlen = 1;
      m->msg_hdr.msg_name = &io->dest[count];
      m->msg_hdr.msg_namelen = io->rx[i].msg_hdr.msg_namelen;
    }
    m->msg_hdr.msg_iov = iov;
    count++;
  }
  uint32_t failed = 0;
  uint32_t offset = 0;
  int waited = 0;
  while (offset < count) {
    int sent = sendmmsg(fd, io->tx + offset, count - offset, MSG_DONTWAIT);
    if (sent > 0) {
      offset += (uint32_t)sent;
      continue;
    }
    int error = errno;
    if (error == EINTR) continue;
    if ((error == EAGAIN || error == EWOULDBLOCK) && !waited) {
      /* The send buffer is full: give the kernel a moment, as a blocking send would, then give up. */
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      poll(&p, 1, SEND_WAIT_MS);
      waited = 1;
      continue;
    }
    /* This datagram cannot go (buffer still full, no route, too big...): count it and go on. */
    io->stats[0] += (double)io->tx[offset].msg_hdr.msg_iov[io->tx[offset].msg_hdr.msg_iovlen - 1].iov_len;
    io->stats[1] = error;
    failed++;
    offset++;
  }
  napi_value result;
  CHECK(napi_create_uint32(env, failed, &result));
  return result;
}

/* ---------- poll ---------- */

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)status;
  (void)events;
  io_t *io = (io_t *)handle->data;
  if (io->closing || !io->callback) return;
  napi_env env = io->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, receiver, result;
  if (napi_get_reference_value(env, io->callback, &callback) == napi_ok && callback &&
      napi_get_global(env, &receiver) == napi_ok) {
    if (napi_make_callback(env, io->async, receiver, callback, 0, NULL, &result) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value error;
        napi_get_and_clear_last_exception(env, &error);
        napi_fatal_exception(env, error);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

/* poll(io, fn): fn() whenever the socket is readable; poll(io, null) stops. */
static napi_value Poll(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  io_t *io = unwrap(env, info, 2, argv);
  if (!io) return NULL;
  napi_valuetype type;
  CHECK(napi_typeof(env, argv[1], &type));
  if (io->callback) {
    napi_delete_reference(env, io->callback);
    io->callback = NULL;
  }
  if (type != napi_function) {
    uv_poll_stop(&io->poll);
    return NULL;
  }
  CHECK(napi_create_reference(env, argv[1], 1, &io->callback));
  if (!io->async) {
    napi_value name;
    CHECK(napi_create_string_utf8(env, "stream-intel-io", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_async_init(env, NULL, name, &io->async));
  }
  int r = uv_poll_start(&io->poll, UV_READABLE, on_readable);
  if (r != 0) {
    napi_throw_error(env, NULL, uv_strerror(r));
    return NULL;
  }
  return NULL;
}

/* ---------- info, close, probe ---------- */

static napi_value Info(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  io_t *io = unwrap(env, info, 1, argv);
  if (!io) return NULL;
  char address[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  if (io->family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&io->bound;
    inet_ntop(AF_INET6, &a->sin6_addr, address, sizeof address);
    port = ntohs(a->sin6_port);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&io->bound;
    inet_ntop(AF_INET, &a->sin_addr, address, sizeof address);
    port = ntohs(a->sin_port);
  }
  int rcv = 0, snd = 0;
  socklen_t length = sizeof rcv;
  getsockopt(io->fd, SOL_SOCKET, SO_RCVBUF, &rcv, &length);
  length = sizeof snd;
  getsockopt(io->fd, SOL_SOCKET, SO_SNDBUF, &snd, &length);
  napi_value result, value;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &value));
  CHECK(napi_set_named_property(env, result, "address", value));
  CHECK(napi_create_int32(env, port, &value));
  CHECK(napi_set_named_property(env, result, "port", value));
  CHECK(napi_create_int32(env, rcv, &value));
  CHECK(napi_set_named_property(env, result, "receiveBuffer", value));
  CHECK(napi_create_int32(env, snd, &value));
  CHECK(napi_set_named_property(env, result, "sendBuffer", value));
  CHECK(napi_create_uint32(env, io->slots, &value));
  CHECK(napi_set_named_property(env, result, "slots", value));
  CHECK(napi_get_boolean(env, io->raw_fd >= 0, &value));
  CHECK(napi_set_named_property(env, result, "raw", value));
  return result;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "close: expected a handle");
    return NULL;
  }
  shut((io_t *)data, 1);
  return NULL;
}

/* probeRaw(): undefined when a raw IPv4 socket can be opened here, else the reason. */
static napi_value ProbeRaw(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd >= 0) {
    close(fd);
    return NULL;
  }
  napi_value reason;
  CHECK(napi_create_string_utf8(env, strerror(errno), NAPI_AUTO_LENGTH, &reason));
  return reason;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor functions[] = {
      {"open", NULL, Open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"receive", NULL, Receive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, Send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"poll", NULL, Poll, NULL, NULL, NULL, napi_enumerable, NULL},
      {"info", NULL, Info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"probeRaw", NULL, ProbeRaw, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) != napi_ok)
    return NULL;
  return exports;
}
