// udp-batch: a connected, non-blocking IPv4 UDP socket for `wallscope scan dns`
// (src/probe/scan-dns-io.ts) that sends many datagrams per system call (sendmmsg) and reads many per
// wake-up (recvmmsg on a uv_poll_t of the caller's event loop). Why: Node's dgram makes one system
// call and one libuv request per datagram, which was a quarter of the scan's CPU.
//
//   const s = new UdpBatch(host, port, onReplies, recvBufferSize, sendBufferSize, wantTtl);
//   s.send(buf, lens, count)  -> datagrams sent: buf holds `count` datagrams back to back, lens (a
//                                Uint32Array) their lengths; fewer than count when the socket's send
//                                buffer is full (the caller sends the rest later)
//   onReplies(data, meta, n)  -> n datagrams back to back in data (a Buffer); meta (an Int32Array)
//                                holds 4 numbers per datagram: length, IP TTL (-1 without wantTtl),
//                                source address (IPv4 as a 32-bit number), source port
//   s.address()               -> { address, port } of the local end
//   s.close()                 -> idempotent; also done at garbage collection and at the end of the
//                                thread (an async cleanup hook, so a worker never exits with the
//                                handle open)
// Every misuse (bad arguments, a closed socket) and system error throws a JS Error.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define RECV_VLEN 64      // datagrams per recvmmsg
#define RECV_SLOT 65536   // bytes per datagram slot: any UDP payload fits, none is truncated
#define RECV_ROUNDS 16    // recvmmsg calls per wake-up at most (then other work gets its turn)
#define SEND_VLEN 1024    // datagrams per sendmmsg (UIO_MAXIOV)
#define MAX_DATAGRAM 65507
#define CTRL_BYTES 64

typedef struct {
  napi_env env;
  int fd;
  int closing;
  int refs;  // the uv handle and the JS wrapper: freed when both are gone
  int want_ttl;
  uv_poll_t poll;
  napi_ref on_replies;
  napi_async_context actx;
  napi_async_cleanup_hook_handle hook;
  unsigned char* arena;  // RECV_VLEN slots; only the pages the kernel writes become resident
  struct mmsghdr rmsg[RECV_VLEN];
  struct iovec riov[RECV_VLEN];
  struct sockaddr_in rfrom[RECV_VLEN];
  unsigned char rctrl[RECV_VLEN][CTRL_BYTES];
  struct mmsghdr smsg[SEND_VLEN];
  struct iovec siov[SEND_VLEN];
} sock_t;

#define CHECK_NAPI(env, call)                                     \
  do {                                                            \
    if ((call) != napi_ok) {                                      \
      throw_last(env, #call);                                     \
      return NULL;                                                \
    }                                                             \
  } while (0)

static void throw_last(napi_env env, const char* what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "udp-batch: %s failed: %s", what, info && info->error_message ? info->error_message : "unknown");
  napi_throw_error(env, "ERR_UDP_BATCH", msg);
}

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "udp-batch: %s: %s", what, strerror(err));
  napi_throw_error(env, "ERR_UDP_BATCH", msg);
  return NULL;
}

static napi_value throw_type(napi_env env, const char* msg) {
  char full[256];
  snprintf(full, sizeof full, "udp-batch: %s", msg);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", full);
  return NULL;
}

static void release(sock_t* s) {
  if (--s->refs > 0) return;
  free(s->arena);
  free(s);
}

static void on_closed(uv_handle_t* h) {
  sock_t* s = (sock_t*)h->data;
  close(s->fd);
  s->fd = -1;
  if (s->on_replies) napi_delete_reference(s->env, s->on_replies);
  s->on_replies = NULL;
  if (s->actx) napi_async_destroy(s->env, s->actx);
  if (s->hook) napi_remove_async_cleanup_hook(s->hook);
  release(s);
}

/** Stops reading and closes the handle; the fd is closed once libuv is done with it. */
static void begin_close(sock_t* s) {
  if (s->closing) return;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t*)&s->poll, on_closed);
}

static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  begin_close((sock_t*)arg);
}

static void on_finalize(napi_env env, void* data, void* hint) {
  sock_t* s = (sock_t*)data;
  begin_close(s);
  release(s);
}

static int ttl_of(struct msghdr* m) {
  for (struct cmsghdr* c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
      int ttl;
      memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      return ttl;
    }
  return -1;
}

/** Hands one recvmmsg batch to JS; false when JS threw (reported as an uncaught exception). */
static int deliver(sock_t* s, int n) {
  napi_env env = s->env;
  size_t total = 0;
  for (int i = 0; i < n; i++) total += s->rmsg[i].msg_len;
  void* bytes = NULL;
  void* metab = NULL;
  napi_value data, ab, meta, count, fn, global, argv[3];
  if (napi_create_buffer(env, total, &bytes, &data) != napi_ok ||
      napi_create_arraybuffer(env, (size_t)n * 4 * sizeof(int32_t), &metab, &ab) != napi_ok ||
      napi_create_typedarray(env, napi_int32_array, (size_t)n * 4, ab, 0, &meta) != napi_ok ||
      napi_create_uint32(env, (uint32_t)n, &count) != napi_ok || napi_get_reference_value(env, s->on_replies, &fn) != napi_ok ||
      napi_get_global(env, &global) != napi_ok)
    return 0;
  int32_t* m = (int32_t*)metab;
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    unsigned len = s->rmsg[i].msg_len;
    memcpy((unsigned char*)bytes + at, s->arena + (size_t)i * RECV_SLOT, len);
    at += len;
    m[4 * i] = (int32_t)len;
    m[4 * i + 1] = s->want_ttl ? ttl_of(&s->rmsg[i].msg_hdr) : -1;
    m[4 * i + 2] = (int32_t)ntohl(s->rfrom[i].sin_addr.s_addr);
    m[4 * i + 3] = ntohs(s->rfrom[i].sin_port);
  }
  argv[0] = data;
  argv[1] = meta;
  argv[2] = count;
  if (napi_make_callback(env, s->actx, global, fn, 3, argv, NULL) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
    return 0;
  }
  return 1;
}

static void on_readable(uv_poll_t* h, int status, int events) {
  sock_t* s = (sock_t*)h->data;
  if (status < 0 || s->closing) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  for (int round = 0; round < RECV_ROUNDS && !s->closing; round++) {
    for (int i = 0; i < RECV_VLEN; i++) {
      struct msghdr* m = &s->rmsg[i].msg_hdr;
      s->riov[i].iov_base = s->arena + (size_t)i * RECV_SLOT;
      s->riov[i].iov_len = RECV_SLOT;
      m->msg_iov = &s->riov[i];
      m->msg_iovlen = 1;
      m->msg_name = &s->rfrom[i];
      m->msg_namelen = sizeof s->rfrom[i];
      m->msg_control = s->want_ttl ? s->rctrl[i] : NULL;
      m->msg_controllen = s->want_ttl ? CTRL_BYTES : 0;
      m->msg_flags = 0;
    }
    int n = recvmmsg(s->fd, s->rmsg, RECV_VLEN, MSG_DONTWAIT, NULL);
    if (n < 0) {
      // A connected socket reports an ICMP error (port unreachable) on its next call: read on.
      if (errno == EINTR || errno == ECONNREFUSED) continue;
      break;  // EAGAIN: drained
    }
    if (n == 0 || !deliver(s, n) || n < RECV_VLEN) break;
  }
  napi_close_handle_scope(s->env, scope);
}

static sock_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  void* data = NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    throw_type(env, "not a UdpBatch");
    return NULL;
  }
  sock_t* s = (sock_t*)data;
  if (s->closing) {
    napi_throw_error(env, "ERR_SOCKET_DGRAM_NOT_RUNNING", "udp-batch: the socket is closed");
    return NULL;
  }
  return s;
}

static int get_uint(napi_env env, napi_value v, uint32_t min, uint32_t max, uint32_t* out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= min && d <= max) || d != (double)(uint32_t)d) return 0;
  *out = (uint32_t)d;
  return 1;
}

/** new UdpBatch(host, port, onReplies, recvBufferSize, sendBufferSize, wantTtl) */
static napi_value construct(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], self;
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 6) return throw_type(env, "expected (host, port, onReplies, recvBufferSize, sendBufferSize, wantTtl)");
  char host[64];
  size_t hlen = 0;
  napi_valuetype t;
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hlen) != napi_ok || inet_pton(AF_INET, host, &to.sin_addr) != 1)
    return throw_type(env, "host must be an IPv4 address string");
  uint32_t port, rcv, snd;
  if (!get_uint(env, argv[1], 1, 65535, &port)) return throw_type(env, "port must be an integer 1..65535");
  to.sin_port = htons((uint16_t)port);
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function) return throw_type(env, "onReplies must be a function");
  if (!get_uint(env, argv[3], 0, 1u << 30, &rcv) || !get_uint(env, argv[4], 0, 1u << 30, &snd))
    return throw_type(env, "buffer sizes must be integers 0..2^30 (0: the system's default)");
  bool want_ttl;
  if (napi_typeof(env, argv[5], &t) != napi_ok || t != napi_boolean || napi_get_value_bool(env, argv[5], &want_ttl) != napi_ok)
    return throw_type(env, "wantTtl must be a boolean");

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
  const char* step = NULL;
  if (rcv && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) < 0) step = "SO_RCVBUF";
  else if (snd && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) < 0) step = "SO_SNDBUF";
  else if (want_ttl && setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof one) < 0) step = "IP_RECVTTL";
  // Connected: the kernel drops datagrams from anyone but the target, and sends need no address.
  else if (connect(fd, (struct sockaddr*)&to, sizeof to) < 0) step = "connect";
  if (step) {
    int err = errno;
    close(fd);
    return throw_errno(env, step, err);
  }

  sock_t* s = (sock_t*)calloc(1, sizeof(sock_t));
  unsigned char* arena = (unsigned char*)malloc((size_t)RECV_VLEN * RECV_SLOT);
  uv_loop_t* loop = NULL;
  if (!s || !arena || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &s->poll, fd) != 0) {
    free(arena);
    free(s);
    close(fd);
    return throw_errno(env, "setting up the socket", ENOMEM);
  }
  s->env = env;
  s->fd = fd;
  s->arena = arena;
  s->want_ttl = want_ttl;
  s->poll.data = s;
  s->refs = 1;  // the uv handle; the JS wrapper holds the second share once wrapped
  napi_value name;
  int ok = napi_create_reference(env, argv[2], 1, &s->on_replies) == napi_ok &&
           napi_create_string_utf8(env, "UdpBatch", NAPI_AUTO_LENGTH, &name) == napi_ok &&
           napi_async_init(env, self, name, &s->actx) == napi_ok &&
           napi_add_async_cleanup_hook(env, on_env_cleanup, s, &s->hook) == napi_ok;
  if (ok && napi_wrap(env, self, s, on_finalize, NULL, NULL) == napi_ok) s->refs = 2;
  else ok = 0;
  int uverr = ok ? uv_poll_start(&s->poll, UV_READABLE, on_readable) : 0;
  if (!ok || uverr) {
    begin_close(s);  // on_closed undoes whatever was set up
    if (uverr) return throw_errno(env, "uv_poll_start", -uverr);
    throw_last(env, "setting up the socket");
    return NULL;
  }
  return self;
}

/** send(buf, lens, count) -> datagrams sent */
static napi_value send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  sock_t* s = unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  if (argc < 3) return throw_type(env, "send expects (buf, lens, count)");
  bool is_buf = false;
  void* data = NULL;
  size_t len = 0;
  if (napi_is_buffer(env, argv[0], &is_buf) != napi_ok || !is_buf || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok)
    return throw_type(env, "send: buf must be a Buffer");
  bool is_ta = false;
  napi_typedarray_type tt;
  size_t nlens = 0;
  void* lensp = NULL;
  if (napi_is_typedarray(env, argv[1], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[1], &tt, &nlens, &lensp, NULL, NULL) != napi_ok || tt != napi_uint32_array)
    return throw_type(env, "send: lens must be a Uint32Array");
  uint32_t count;
  if (!get_uint(env, argv[2], 0, (uint32_t)nlens, &count)) return throw_type(env, "send: count must be an integer 0..lens.length");
  const uint32_t* lens = (const uint32_t*)lensp;
  size_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (lens[i] > MAX_DATAGRAM) return throw_type(env, "send: a datagram is longer than 65507 bytes");
    total += lens[i];
  }
  if (total > len) return throw_type(env, "send: the lengths add up to more than buf holds");

  uint32_t sent = 0;
  size_t at = 0;  // offset of datagram `sent` in buf
  int refused = 0;
  while (sent < count) {
    uint32_t k = count - sent < SEND_VLEN ? count - sent : SEND_VLEN;
    size_t o = at;
    for (uint32_t i = 0; i < k; i++) {
      s->siov[i].iov_base = (unsigned char*)data + o;
      s->siov[i].iov_len = lens[sent + i];
      o += lens[sent + i];
      memset(&s->smsg[i].msg_hdr, 0, sizeof(struct msghdr));
      s->smsg[i].msg_hdr.msg_iov = &s->siov[i];
      s->smsg[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(s->fd, s->smsg, k, MSG_DONTWAIT);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      // An ICMP error of an earlier datagram surfaces here once; the datagram itself was not sent.
      if (err == ECONNREFUSED && ++refused < 16) continue;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;  // the rest later
      return throw_errno(env, "sendmmsg", err);
    }
    for (int i = 0; i < r; i++) at += lens[sent + i];
    sent += (uint32_t)r;
  }
  napi_value out;
  CHECK_NAPI(env, napi_create_uint32(env, sent, &out));
  return out;
}

static napi_value close_sock(napi_env env, napi_callback_info info) {
  napi_value self, undef;
  void* data = NULL;
  CHECK_NAPI(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  if (napi_unwrap(env, self, &data) != napi_ok || !data) return throw_type(env, "not a UdpBatch");
  begin_close((sock_t*)data);
  napi_get_undefined(env, &undef);
  return undef;
}

static napi_value address(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t* s = unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  if (getsockname(s->fd, (struct sockaddr*)&a, &alen) < 0) return throw_errno(env, "getsockname", errno);
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
  napi_value out, host, port;
  CHECK_NAPI(env, napi_create_object(env, &out));
  CHECK_NAPI(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &host));
  CHECK_NAPI(env, napi_create_uint32(env, ntohs(a.sin_port), &port));
  CHECK_NAPI(env, napi_set_named_property(env, out, "address", host));
  CHECK_NAPI(env, napi_set_named_property(env, out, "port", port));
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"send", NULL, send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_sock, NULL, NULL, NULL, napi_default, NULL},
      {"address", NULL, address, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  CHECK_NAPI(env, napi_define_class(env, "UdpBatch", NAPI_AUTO_LENGTH, construct, NULL, 3, methods, &cls));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "UdpBatch", cls));
  return exports;
}
